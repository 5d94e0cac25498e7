#!/usr/bin/env bash
# Every GPU check and figure in one run (a lent GPU machine's time is short): the CUDA tests, then the benchmarks
# that have a GPU side. Each step has its own time limit and writes its output under $OUT as it goes, so a step that
# fails or runs out of time costs only itself.
#   OUT=/tmp/gpu bash benchmarks/gpu.sh
#   OUT=/tmp/gpu ONLY="adapt.json profile.txt" bash benchmarks/gpu.sh    # some steps only
# Python packages the machine lacks are carried as wheels in .whl/ (installed into /tmp/site, no network): make them
# with `bash benchmarks/gpu_wheels.sh` and name .whl in the device call's carry.
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
  [[ -z ${ONLY:-} || " $ONLY " == *" $name "* ]] || return 0
  echo "== $name (limit ${limit}s)"
  local began=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name" 2>&1
  echo "== $name: exit $? after $((SECONDS - began)) s"
  tail -n 25 "$OUT/$name"
}

# In order of what the figures need most, so that the command's own time limit cuts the least needed.
step adapt.json 150 python3 benchmarks/adapt.py --device cuda --speakers 1 4 16 64 256 1024 --chunk 1024 \
  --loop-max 16 --ops-max 64
step cuda_graph.json 130 bash -c 'python3 benchmarks/cuda_graph_adapt.py --ctc ops --speakers 16 64 256;
  python3 benchmarks/cuda_graph_adapt.py --ctc vmappable --speakers 64 --repeats 1'
step profile.txt 60 python3 benchmarks/profile_adapt.py --device cuda --speakers 64 --steps 5
step pytest_cuda.txt 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py \
  tests/test_meta_train.py::test_two_gloo_processes_equal_one \
  tests/test_meta_train.py::test_torchrun_backend_follows_the_meta_training_device
step meta_step.json 80 python3 benchmarks/meta_step.py --device cuda --speakers 4 --repeats 2
step vs_libraries.json 45 python3 benchmarks/vs_libraries.py --device cuda --inner-steps 3 --tasks 4
step maml_memory.json 60 python3 benchmarks/maml_memory.py --device cuda --steps 1 2 3 4 5 6
step compile_adapt.json 240 python3 benchmarks/compile_adapt.py --device cuda --steps 3 20 \
  --modes default reduce-overhead
step train_step.json 150 python3 benchmarks/train_step.py --device cuda --channels 0 32 --utts 64 --frames 310 \
  --repeats 5 --steps 5 --compile
