#!/usr/bin/env bash
# learn2learn 0.2.0 (the last release) for benchmarks/vs_libraries.py, installed into a folder for PYTHONPATH, not
# into the environment (it is no dependency of speechmeta):
#   bash benchmarks/learn2learn.sh [DEST]          # DEST defaults to .bench/learn2learn
#   PYTHONPATH=.bench/learn2learn python benchmarks/vs_libraries.py --libraries higher learn2learn ...
# It has no wheel for Python >= 3.10, and its sdist's pre-generated Cython C does not compile on 3.11 (it includes
# `longintrepr.h`, which Python 3.11 removed): the C is regenerated from its .pyx with Cython 3 before the build.
# Importing learn2learn also imports gym and torchvision (its gym and vision submodules): gym 0.26.2 and the
# torchvision built for this environment's torch come along, without dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=${1:-.bench/learn2learn}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: -d "$work" learn2learn==0.2.0
tar xzf "$work/learn2learn-0.2.0.tar.gz" -C "$work"
"$PY" -m pip install -q --target "$work/cython" cython==3.0.12
for pyx in "$work"/learn2learn-0.2.0/learn2learn/data/*.pyx; do
  PYTHONPATH="$work/cython" "$PY" -m cython -3 "$pyx" -o "${pyx%.pyx}.c"
done
# torchvision 0.N pairs with torch 2.(N-15) since torch 2.0 (0.15)
torch_minor=$("$PY" -c 'import torch; print(torch.__version__.split(".")[1])')
"$PY" -m pip install -q --no-deps --no-build-isolation --target "$DEST" "$work/learn2learn-0.2.0"
"$PY" -m pip install -q --no-deps --target "$DEST" "torchvision==0.$((torch_minor + 15)).*" gym==0.26.2 gym_notices \
  cloudpickle
PYTHONPATH="$DEST" "$PY" -c 'import learn2learn; print("learn2learn", learn2learn.__version__, "in '"$DEST"'")' \
  2>/dev/null
