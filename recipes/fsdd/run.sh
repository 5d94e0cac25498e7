#!/usr/bin/env bash
# Free Spoken Digit Dataset recipe (6 speakers, 8 kHz digits).
# Stages so far: 0 data prep + validation, 1 log-mel features, CMVN stats and character units, 2 speaker split
# (train on 4 speakers, hold out theo and yweweler; the training speakers' official test recordings, index 0-4,
# validate) and few-shot split files, 3 base training, 4 decoding (greedy; beam + LM tuned on validation) and scoring.
# Base training, meta-training, adaptation and the WER report are later stages (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)  # upper case: not an option

stage=0
stop_stage=4
base_conf=conf/base.yaml
corpus_dir=${FSDD_DIR:-$REPO/../shared/data/fsdd}   # the release's folder, holding recordings/
heldout="theo yweweler"
nj=2
. ../TEMPLATE/parse_options.sh

if [ ! -d "$corpus_dir/recordings" ]; then
  echo "$0: no FSDD at $corpus_dir/recordings; pass --corpus-dir DIR or set FSDD_DIR" \
       "(github.com/Jakobovski/free-spoken-digit-dataset)" >&2
  exit 1
fi
mkdir -p data exp

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ ! -f data/all/.prep.done ]; then
  echo "stage 0: data prep"
  python "$REPO/data_prep/fsdd.py" --recordings "$corpus_dir/recordings" --out data/all
  speechmeta validate-data data/all
  touch data/all/.prep.done
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ] && [ ! -f data/all/.feats.done ]; then
  echo "stage 1: features and units"
  speechmeta compute-feats data/all --nj "$nj"
  speechmeta make-units data/all --out data/lang_char/units.txt
  touch data/all/.feats.done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ ! -f data/.splits.done ]; then
  echo "stage 2: speaker split and few-shot lists"
  # shellcheck disable=SC2086  # $heldout is a list of speaker ids
  python "$REPO/data_prep/splits.py" speakers --data data/all --heldout-list $heldout \
    --out-train data/train --out-heldout data/test
  python "$REPO/data_prep/splits.py" fewshot --data data/test --shots 1 3 5 10 --seeds 0 1 2 --out data/fewshot
  # FSDD's official test recordings (index 0-4) of the training speakers validate; the rest train
  for part in cv tr; do
    rm -rf "data/train_$part"; cp -r data/train "data/train_$part"
    pattern='-[0-9]-0[0-4]$'; [ "$part" = tr ] && grep_opt=-v || grep_opt=
    for f in text utt2spk wav.scp feats.scp utt2num_frames; do
      awk '{print $1}' "data/train/$f" | grep $grep_opt -E -e "$pattern" | grep -F -w -f - "data/train/$f" \
        > "data/train_$part/$f" || true
    done
    speechmeta fix-data "data/train_$part" > /dev/null
  done
  touch data/.splits.done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ ! -f exp/.base.done ]; then
  echo "stage 3: base training"
  speechmeta train --config "$base_conf" --train-dir data/train_tr --valid-dir data/train_cv \
    --units data/lang_char/units.txt --exp-dir exp/base --resume
  speechmeta train-lm --text data/train_tr/text --order 2 --out data/lang_char/lm2.json
  touch exp/.base.done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && [ ! -f exp/.decode.done ]; then
  echo "stage 4: decoding and scoring the base model on the held-out speakers"
  ../TEMPLATE/decode_score.sh exp/base/average.pt data/test exp/base/decode_test data/lang_char/lm2.json \
    data/train_cv
  touch exp/.decode.done
fi

echo "Done: stages $stage-$stop_stage."
echo "Data dir: $(pwd)/data/all ($(wc -l < data/all/utt2spk) utterances, $(wc -l < data/all/spk2utt) speakers);" \
     "features: data/all/feats.scp, CMVN: data/all/cmvn.npz, units: data/lang_char/units.txt"
