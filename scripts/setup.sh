#!/usr/bin/env bash
# Create .venv (once) and install scgensynth into it with the CPU build of torch.
# torch==2.13.0 is installed first: an unpinned torch (or anything that upgrades it) would
# pull a multi-GB CUDA build. Nothing here installs jax.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test,doc]"
