#!/usr/bin/env bash
# FSDD with rotating leave-two-speakers-out: 3 folds over its 6 speakers, so that no result rests on one pair of
# speakers. Each fold is a whole run of run.sh in its own data_<fold>/ and exp_<fold>/ (its base model and
# meta-models trained without the fold's speakers, its adaptation methods tuned on its own dev data), then one
# report pools the held-out speakers of every fold: exp_folds/report/. Options pass through to run.sh.
#   bash run_folds.sh [--shots "5 10"] [--meta-algorithms "fomaml metasgd"] ...
set -euo pipefail
cd "$(dirname "$0")"
folds=("theo yweweler" "george jackson" "lucas nicolas")
dirs=(); models=()
for fold in "${folds[@]}"; do
  tag=${fold// /_}
  bash run.sh --heldout "$fold" --data "data_$tag" --exp "exp_$tag" "$@"
  for method in "exp_$tag"/adapt/*/; do dirs+=("$method"); done
  models+=("exp_$tag/base/average.pt")
done
speechmeta report "${dirs[@]}" --corpus fsdd-3fold --base-model "${models[@]}" --out exp_folds/report
