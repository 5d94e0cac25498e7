#!/usr/bin/env bash
# Free Spoken Digit Dataset (6 speakers, 8 kHz digits): hold out theo and yweweler (scored); --dev-speakers holds out
# more to tune the adaptation methods on (else the training speakers' validation recordings, which favour not adapting).
# Index 0-4 recordings of training speakers validate. Stages: ../TEMPLATE/run.sh; run_folds.sh rotates the 6 speakers.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd); TEMPLATE=$REPO/recipes/TEMPLATE  # upper case: not options
corpus=fsdd
corpus_dir=${FSDD_DIR:-$REPO/../shared/data/fsdd}   # the release's folder, holding recordings/
heldout="theo yweweler"
dev_speakers=        # e.g. "george": tunes the adaptation methods, trains nothing
tune_utts=200        # one word per utterance: 20 dev utterances (the default) cannot tell schedules apart
tune_steps="1 3 10 30"  # every method alike; with "1 3 10", 6 of the 9 fold tunings of finetune, LHUC, FOMAML chose 10
configure() { [ -n "$lexicon" ] || lexicon=$data/lang_char/words.txt; }  # beam search: the training text's words

prepare_data() {
  if [ ! -d "$corpus_dir/recordings" ]; then
    echo "$0: no FSDD at $corpus_dir/recordings; pass --corpus-dir DIR or set FSDD_DIR" \
         "(github.com/Jakobovski/free-spoken-digit-dataset)" >&2
    exit 1
  fi
  python "$REPO/data_prep/fsdd.py" --recordings "$corpus_dir/recordings" --out "$data/all"
  # shellcheck disable=SC2086  # speaker lists; dev = the held-out speakers that are not test speakers
  python "$REPO/data_prep/splits.py" speakers --data "$data/all" --heldout-list $heldout $dev_speakers \
    --out-train "$data/train_all" --out-heldout "$data/heldout"
  python "$REPO/data_prep/splits.py" speakers --data "$data/heldout" --heldout-list $heldout \
    --out-train "$data/dev" --out-heldout "$data/test"
  for part in valid train; do  # index 0-4 of each digit validates, the rest trains
    rm -rf "${data:?}/$part"; cp -r "$data/train_all" "$data/$part"
    grep_opt=; [ "$part" = train ] && grep_opt=-v
    for f in text utt2spk wav.scp; do
      awk '{print $1}' "$data/train_all/$f" | grep $grep_opt -E -e '-[0-9]-0[0-4]$' \
        | grep -F -w -f - "$data/train_all/$f" > "$data/$part/$f" || true
    done
    speechmeta fix-data "$data/$part" > /dev/null
  done
  [ -n "$dev_speakers" ] || { rm -rf "${data:?}/dev"; ln -sfn valid "$data/dev"; }
}

. "$TEMPLATE/run.sh"
