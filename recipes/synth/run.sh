#!/usr/bin/env bash
# Synthetic multi-speaker corpus (eSpeak NG voices from PyPI, offline): the embedded default recipe. Held-out
# speakers have accents no training voice has; dev_speakers of them tune the adaptation methods, the rest are
# scored. --quick true is `make demo`: a small configuration that runs every stage in minutes on 2 CPU cores
# in data_quick/ and exp_quick/ (presets: `--quick true --tune-steps "2 5 10"` changes one). Stages: ../TEMPLATE/run.sh.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd); TEMPLATE=$REPO/recipes/TEMPLATE  # upper case: not options
corpus=synth
quick=false
speakers=60          # held-out speakers included
heldout=12           # speakers unseen in training
dev_speakers=4       # of the held-out ones, to tune the adaptation methods on
utts_per_speaker=50
valid_utts=5         # new sentences of the training voices, for validation during training
unseen=accent        # what held-out speakers have that training voices lack: none, accent, variant, both

if [[ " $* " == *" --quick true "* || " $* " == *" --quick=true "* ]]; then  # presets: options given still win
  speakers=32; heldout=8; dev_speakers=3; utts_per_speaker=30; data=data_quick; exp=exp_quick
  train_conf=conf/quick.yaml; meta_conf=conf/quick_meta.yaml; shots=5
  tune_steps="2 5 10"  # with "2 5" every method chose 5; with 10 on offer all chose 10 (20: little more, 2x time)
  finetune_lrs=0.03; lhuc_lrs=10; adapter_lrs=0.3; lm_weights=0.3; word_bonuses=1.0
  meta_beam=base  # one point on the grid: the meta models keep it when tuned (measured), for 2 more decodings each
  meta_algorithms="fomaml metasgd"  # second-order MAML over all weights takes 4 of the 15 minutes
fi
configure() {
  [ -n "$lexicon" ] || lexicon=$data/lang_char/words.txt  # beam search: the training text's words (closed vocabulary)
}

prepare_data() {
  python "$REPO/data_prep/synth.py" --out "$data/corpus" --speakers "$speakers" --test-speakers "$heldout" \
    --utts-per-speaker "$utts_per_speaker" --dev-utts-per-speaker "$valid_utts" --seed "$seed" --unseen "$unseen" \
    --nj "$nj" --no-progress
  ln -sfn corpus/train "$data/train"; ln -sfn corpus/dev "$data/valid"
  python "$REPO/data_prep/splits.py" speakers --data "$data/corpus/test" --heldout "$dev_speakers" --seed "$seed" \
    --out-train "$data/test" --out-heldout "$data/dev"
}

. "$TEMPLATE/run.sh"
