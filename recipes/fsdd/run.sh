#!/usr/bin/env bash
# Free Spoken Digit Dataset recipe (6 speakers, 8 kHz digits).
# Stages so far: 0 data prep + validation, 1 log-mel features, CMVN stats and character units, 2 speaker split
# (train on 4 speakers, hold out theo and yweweler) and few-shot split files.
# Base training, meta-training, adaptation and the WER report are later stages (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)  # upper case: not an option

stage=0
stop_stage=2
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
  touch data/.splits.done
fi

echo "Done: data, feature and split stages only (training, meta-learning and adaptation stages are not in this" \
     "recipe yet)."
echo "Data dir: $(pwd)/data/all ($(wc -l < data/all/utt2spk) utterances, $(wc -l < data/all/spk2utt) speakers);" \
     "features: data/all/feats.scp, CMVN: data/all/cmvn.npz, units: data/lang_char/units.txt"
