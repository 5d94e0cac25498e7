#!/usr/bin/env bash
# Free Spoken Digit Dataset (6 speakers, 8 kHz digits): train on 4 speakers, hold out theo and yweweler (scored).
# The training speakers' official test recordings (index 0-4) validate training and, as FSDD has no more speakers,
# also tune the adaptation methods (dev). Stages: see ../TEMPLATE/run.sh.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd); TEMPLATE=$REPO/recipes/TEMPLATE  # upper case: not options
corpus=fsdd
corpus_dir=${FSDD_DIR:-$REPO/../shared/data/fsdd}   # the release's folder, holding recordings/
heldout="theo yweweler"
train_conf=conf/base.yaml
meta_conf=conf/meta.yaml

prepare_data() {
  if [ ! -d "$corpus_dir/recordings" ]; then
    echo "$0: no FSDD at $corpus_dir/recordings; pass --corpus-dir DIR or set FSDD_DIR" \
         "(github.com/Jakobovski/free-spoken-digit-dataset)" >&2
    exit 1
  fi
  python "$REPO/data_prep/fsdd.py" --recordings "$corpus_dir/recordings" --out "$data/all"
  # shellcheck disable=SC2086  # $heldout is a list of speaker ids
  python "$REPO/data_prep/splits.py" speakers --data "$data/all" --heldout-list $heldout \
    --out-train "$data/train_all" --out-heldout "$data/test"
  for part in valid train; do  # index 0-4 of each digit validates, the rest trains
    rm -rf "${data:?}/$part"; cp -r "$data/train_all" "$data/$part"
    grep_opt=; [ "$part" = train ] && grep_opt=-v
    for f in text utt2spk wav.scp; do
      awk '{print $1}' "$data/train_all/$f" | grep $grep_opt -E -e '-[0-9]-0[0-4]$' \
        | grep -F -w -f - "$data/train_all/$f" > "$data/$part/$f" || true
    done
    speechmeta fix-data "$data/$part" > /dev/null
  done
  ln -sfn valid "$data/dev"
}

. "$TEMPLATE/run.sh"
