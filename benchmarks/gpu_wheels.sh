#!/usr/bin/env bash
# Wheels of the packages a lent GPU machine's image lacks, for benchmarks/gpu.sh to install there (it has no network):
# the test fixtures' audio and synthesis (soundfile, cffi, pycparser, soxr, espeakng-loader), scoring (jiwer,
# rapidfuzz) and the reference of benchmarks/vs_libraries.py (higher; learn2learn has no wheel for the machine's
# Python). Versions are this checkout's .venv's (higher's is pinned: it is no dependency). Run here, then carry .whl/ in the device call:
#   bash benchmarks/gpu_wheels.sh && echo /.whl/ >> .git/info/exclude
# Without them tests/test_cuda.py stops at `import soxr` (7 of 10 tests, 2026-11-28 on an H200).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
specs=(higher==0.2.1)
for name in soundfile cffi pycparser soxr espeakng-loader jiwer rapidfuzz; do
  version=$("$PY" -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}')
  [ -n "$version" ] || { echo "gpu_wheels.sh: $name is not installed in $PY's environment (make .venv/.installed)" >&2; exit 1; }
  specs+=("$name==$version")
done
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 any; do
  platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .whl "${specs[@]}"
ls .whl
