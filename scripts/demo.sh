#!/usr/bin/env bash
# Set up (if needed) and run the demo: train on bundled GTEx, generate, evaluate, plot.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
scgensynth demo --out "${1:-scgensynth_demo}"
