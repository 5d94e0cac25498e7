#!/usr/bin/env bash
# speechocean762: English read by Mandarin-L1 children and adults. --corpus-dir is the original release (WAV,
# train/ and test/: the 125 published test speakers are the held-out speakers) or the FLAC train-only copy (then
# --heldout speakers of train are held out, balanced between children and adults). 5 training speakers validate
# training and tune the adaptation methods (dev). Base training pretrains on synthetic voices reading the training
# transcripts (a from-scratch CTC stays on the blank plateau on CPU budgets), then fine-tunes on the real speakers.
# Stages: see ../TEMPLATE/run.sh.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd); TEMPLATE=$REPO/recipes/TEMPLATE  # upper case: not options
corpus=speechocean762
corpus_dir=${SPEECHOCEAN762_DIR:-$REPO/../shared/data/speechocean762}
heldout=25
pretrain_conf=conf/pretrain.yaml
train_conf=conf/finetune.yaml
meta_conf=conf/meta.yaml
lexicon=             # pronunciations (phone units) and the beam's words (default: the corpus's resource/lexicon.txt)
units=phone lm_smoothing=kneser_ney beam_size=100  # each lower dev WER than char / Witten-Bell / 10 (RESULTS.md)
lm_weights="0.3 0.5 0.7 1.0 1.5"  # a wider beam and Kneser-Ney take a heavier LM (1.0 chosen on validation)
balance_by=spk2age:18  # speaker splits keep the share of children (ages below 18) and adults
tune_metric=cer      # the targets are CER; the dev speakers' ~590 test words barely tell schedules apart

configure() { [ -n "$lexicon" ] || lexicon=$corpus_dir/resource/lexicon.txt; }

prepare_data() {
  python "$REPO/data_prep/speechocean762.py" --corpus-dir "$corpus_dir" --out "$data/release"
  if [ -d "$data/release/test" ]; then
    rm -rf "${data:?}/train_all" "$data/test"
    cp -r "$data/release/train" "$data/train_all"; cp -r "$data/release/test" "$data/test"
  else
    python "$REPO/data_prep/splits.py" speakers --data "$data/release/train" --heldout "$heldout" --seed "$seed" \
      --balance-by "$balance_by" --out-train "$data/train_all" --out-heldout "$data/test"
  fi
  python "$REPO/data_prep/splits.py" speakers --data "$data/train_all" --heldout 5 --seed "$seed" \
    --balance-by "$balance_by" --out-train "$data/train" --out-heldout "$data/valid"
  ln -sfn valid "$data/dev"
}

. "$TEMPLATE/run.sh"
