#!/usr/bin/env bash
# Every GPU check and figure in one run (a lent GPU machine's time is short): the CUDA tests, then the benchmarks
# that have a GPU side. Each step has its own time limit and writes its output under $OUT as it goes, so a step that
# fails or runs out of time costs only itself.
#   OUT=/tmp/gpu bash benchmarks/gpu.sh
# Python packages the machine lacks may be carried as wheels in .whl/ (installed into /tmp/site, no network).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/speechmeta-gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())' | tee -a "$OUT/gpu.txt"

step() {  # step NAME SECONDS COMMAND...: run with a limit, output to $OUT/NAME
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  local began=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name" 2>&1
  echo "== $name: exit $? after $((SECONDS - began)) s"
  tail -n 25 "$OUT/$name"
}

step pytest_cuda.txt 130 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_batched.py
step meta_step.json 100 python3 benchmarks/meta_step.py --device cuda --speakers 4 --repeats 3
step adapt.json 200 python3 benchmarks/adapt.py --device cuda --speakers 1 4 16 64 256 1024 --chunk 256
step maml_memory.json 45 python3 benchmarks/maml_memory.py --device cuda --steps 1 2 3 4 5 6
step vs_higher.json 45 python3 benchmarks/vs_higher.py --device cuda --inner-steps 3 --tasks 4
