#!/usr/bin/env bash
# Any Kaldi data dirs you bring: --train-dir (training speakers) and --test-dir (speakers to adapt to and score).
# valid_speakers training speakers are held out to validate training and tune the adaptation methods (dev). Your
# dirs are copied (relative audio paths rewritten), never written into. Stages: see ../TEMPLATE/run.sh.
#   recipes/custom/run.sh --train-dir /path/train --test-dir /path/test [--train-conf my.yaml] [--shots "5 10"]
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd); TEMPLATE=$REPO/recipes/TEMPLATE  # upper case: not options
corpus=custom
train_dir=
test_dir=
valid_speakers=3
train_conf=conf/base.yaml
meta_conf=conf/meta.yaml

prepare_data() {
  if [ -z "$train_dir" ] || [ -z "$test_dir" ]; then
    echo "$0: give --train-dir DIR and --test-dir DIR (Kaldi data dirs: wav.scp text utt2spk spk2utt)" >&2
    exit 1
  fi
  speechmeta validate-data "$train_dir"
  speechmeta validate-data "$test_dir"
  python "$REPO/data_prep/splits.py" speakers --data "$train_dir" --heldout "$valid_speakers" --seed "$seed" \
    --out-train "$data/train" --out-heldout "$data/valid"
  python "$REPO/data_prep/splits.py" copy --data "$test_dir" --out "$data/test"
  ln -sfn valid "$data/dev"
}

. "$TEMPLATE/run.sh"
