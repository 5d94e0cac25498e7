#!/usr/bin/env bash
# The synthetic recipe's base model trained on a GPU for a fixed wall-clock budget, then decoded on the training
# voices' new sentences (data/valid) and the held-out voices (data/test), greedy and beam + LM. For a lent GPU
# machine with no network: Python wheels it lacks may sit in ../../.whl (installed into /tmp/site).
#   bash local/gpu_base.sh [TRAIN_SECONDS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-360}; out=${2:-exp_gpu/results}
REPO=$(cd ../.. && pwd)
if ls "$REPO"/.whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$REPO"/.whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! command -v speechmeta > /dev/null; then  # not installed: a shim on PATH
  mkdir -p /tmp/bin; ln -sf "$(command -v python3)" /tmp/bin/python
  printf '#!/bin/sh\nexec python3 -m speechmeta.cli "$@"\n' > /tmp/bin/speechmeta; chmod +x /tmp/bin/speechmeta
  export PATH=/tmp/bin:$PATH
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$out/gpu.txt"
SECONDS=0
bash run.sh --stage 0 --stop-stage 2 --nj "$(nproc)" --exp exp_gpu
echo "data stages: $SECONDS s"
SECONDS=0
timeout "$seconds" speechmeta train --config conf/gpu.yaml --train-dir data/train --valid-dir data/valid \
  --units data/lang_char/units.txt --exp-dir exp_gpu/base --resume --no-progress || true
echo "training: $SECONDS s (budget $seconds s)"
python3 -c 'import sys; from pathlib import Path; from speechmeta.train import write_average
write_average(Path(sys.argv[1]), 5)' exp_gpu/base
cp exp_gpu/base/metrics.csv "$out/"
for set in valid test; do
  LM_WEIGHTS="0.2 0.4" WORD_BONUSES="0.0 1.0" ../TEMPLATE/decode_score.sh exp_gpu/base/average.pt data/$set \
    exp_gpu/base/decode_$set data/lang_char/lm3.json data/valid | tee "$out/decode_$set.txt"
done
