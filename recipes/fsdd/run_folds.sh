#!/usr/bin/env bash
# FSDD with rotating leave-two-speakers-out: 3 folds over its 6 speakers, so that no result rests on one pair of
# speakers. Each fold holds out two test speakers and one dev speaker (who tunes the adaptation methods and
# validates meta-training) and trains on the other three: a whole run of run.sh in its own data_<fold>/ and
# exp_<fold>/. Then one report pools the test speakers of every fold: exp_folds/report/. Options pass to run.sh.
#   bash run_folds.sh [--shots "5 10"] [--meta-algorithms "fomaml metasgd"] ...
set -euo pipefail
cd "$(dirname "$0")"
folds=("theo yweweler:george" "george jackson:lucas" "lucas nicolas:theo")  # test speakers:dev speaker
dirs=(); models=()
for fold in "${folds[@]}"; do
  test=${fold%:*}; tag=${test// /_}
  bash run.sh --heldout "$test" --dev-speakers "${fold#*:}" --data "data_$tag" --exp "exp_$tag" "$@"
  for method in "exp_$tag"/adapt/*/; do dirs+=("$method"); done
  models+=("exp_$tag/base/average.pt")
done
speechmeta report "${dirs[@]}" --corpus fsdd-3fold --base-model "${models[@]}" --out exp_folds/report
