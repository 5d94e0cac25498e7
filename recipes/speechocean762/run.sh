#!/usr/bin/env bash
# speechocean762 recipe: read English by Mandarin-L1 children and adults.
# --corpus-dir is the original release (WAV, train/ and test/: the 125 published test speakers are held out) or the
# FLAC train-only copy (then --heldout speakers of train are held out, balanced between children and adults).
# Stages so far: 0 data prep + speaker split, 1 features and units, 2 few-shot splits, 3 synthetic speech reading the
# training transcripts (pretraining data), 4 base training: synthetic pretraining, then fine-tuning on real speech,
# 5 decoding of the held-out speakers (greedy; beam + LM + the corpus lexicon, tuned on validation speakers), scoring.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)  # upper case: not an option

stage=0
stop_stage=5
corpus_dir=${SPEECHOCEAN762_DIR:-$REPO/../shared/data/speechocean762}
heldout=25
seed=0
nj=2
synth_speakers=70       # voices reading the training transcripts for pretraining
synth_utts=100          # utterances per voice
pretrain_conf=conf/pretrain.yaml
finetune_conf=conf/finetune.yaml
. ../TEMPLATE/parse_options.sh

mkdir -p data exp
if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ ! -f data/.prep.done ]; then
  echo "stage 0: data prep"
  python "$REPO/data_prep/speechocean762.py" --corpus-dir "$corpus_dir" --out data/release
  if [ -d data/release/test ]; then
    cp -r data/release/train data/train; cp -r data/release/test data/test
  else
    python "$REPO/data_prep/splits.py" speakers --data data/release/train --heldout "$heldout" --seed "$seed" \
      --balance-by spk2age:18 --out-train data/train --out-heldout data/test
  fi
  # a few training speakers' utterances serve as validation data during training
  python "$REPO/data_prep/splits.py" speakers --data data/train --heldout 5 --seed "$seed" \
    --balance-by spk2age:18 --out-train data/train_tr --out-heldout data/train_cv
  touch data/.prep.done
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ] && [ ! -f data/.feats.done ]; then
  echo "stage 1: features and units"
  for d in train_tr train_cv test; do speechmeta compute-feats "data/$d" --nj "$nj"; done
  speechmeta make-units data/train --out data/lang_char/units.txt --check data/test
  speechmeta train-lm --text data/train/text --order 3 --out data/lang_char/lm3.json
  touch data/.feats.done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ ! -f data/.splits.done ]; then
  echo "stage 2: few-shot splits of the held-out speakers"
  python "$REPO/data_prep/splits.py" fewshot --data data/test --shots 1 3 5 10 --seeds 0 1 2 --out data/fewshot
  touch data/.splits.done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ ! -f data/.synth.done ]; then
  echo "stage 3: synthetic voices reading the training transcripts"
  python "$REPO/data_prep/synth.py" --out data/synth --text data/train_tr/text --text-has-ids \
    --speakers "$synth_speakers" --test-speakers 0 --utts-per-speaker "$synth_utts" --dev-utts-per-speaker 0 \
    --unseen none --seed "$seed" --nj "$nj"
  speechmeta compute-feats data/synth/train --nj "$nj"
  touch data/.synth.done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && [ ! -f exp/.base.done ]; then
  echo "stage 4: base training (synthetic pretraining, then real fine-tuning)"
  speechmeta train --config "$pretrain_conf" --train-dir data/synth/train --valid-dir data/train_cv \
    --units data/lang_char/units.txt --exp-dir exp/pretrain --resume
  speechmeta train --config "$finetune_conf" --train-dir data/train_tr --valid-dir data/train_cv \
    --units data/lang_char/units.txt --exp-dir exp/base --resume --init-from exp/pretrain/average.pt
  touch exp/.base.done
fi
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ] && [ ! -f exp/.decode.done ]; then
  echo "stage 5: decoding and scoring the base model on the held-out speakers"
  ../TEMPLATE/decode_score.sh exp/base/average.pt data/test exp/base/decode_test data/lang_char/lm3.json \
    data/train_cv "$corpus_dir/resource/lexicon.txt"
  touch exp/.decode.done
fi
echo "Done (stages $stage-$stop_stage)."
