#!/usr/bin/env bash
# LibriSpeech: base and meta-training on train-clean-100 (251 speakers), adaptation tuned on dev-clean speakers and
# scored on test-clean speakers; with --l2arctic-dir (or --l2arctic-zip) also on L2-ARCTIC's accented speakers.
# Needs internet (stage 0 downloads ~6.6 GB, SHA-256 checked, resumable) and a GPU for training in reasonable
# time (the conf/ files size the `base` model for one GPU). Stages: see ../TEMPLATE/run.sh.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd); TEMPLATE=$REPO/recipes/TEMPLATE  # upper case: not options
corpus=librispeech
corpus_dir=${LIBRISPEECH_DIR:-downloads/librispeech}   # holds (or will hold) LibriSpeech/
download=true                                          # false: LibriSpeech/ is already extracted there
l2arctic_dir=${L2ARCTIC_DIR:-}                         # L2-ARCTIC speaker folders (optional test set)
l2arctic_zip=                                          # or the release zip, extracted into l2arctic_dir
train_conf=conf/base.yaml
meta_conf=conf/meta.yaml
meta_algorithms="fomaml metasgd"

configure() { if [ -n "$l2arctic_dir" ]; then test_sets="test l2arctic"; fi; }

prepare_data() {
  dl=(); [ "$download" = true ] && dl=(--download)
  python "$REPO/data_prep/librispeech.py" --corpus-dir "$corpus_dir" "${dl[@]}" \
    --subsets train-clean-100 dev-clean test-clean --out "$data/librispeech"
  ln -sfn librispeech/train_clean_100 "$data/train"
  ln -sfn librispeech/dev_clean "$data/valid"; ln -sfn librispeech/dev_clean "$data/dev"
  ln -sfn librispeech/test_clean "$data/test"
  if [ -n "$l2arctic_dir" ]; then
    zip_opt=(); [ -n "$l2arctic_zip" ] && zip_opt=(--archive "$l2arctic_zip")
    python "$REPO/data_prep/l2arctic.py" --corpus-dir "$l2arctic_dir" "${zip_opt[@]}" --out "$data/l2arctic"
  fi
}

. "$TEMPLATE/run.sh"
