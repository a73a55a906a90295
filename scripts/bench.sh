#!/usr/bin/env bash
# Set up (if needed) and run the benchmarks; results go to benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python benchmarks/bench_speed.py
python benchmarks/bench_memory.py
python benchmarks/bench_quality.py
python benchmarks/bench_metrics.py
python benchmarks/bench_attention.py
python benchmarks/bench_attgan_memory.py
python benchmarks/bench_compare.py
python benchmarks/bench_diffusion.py
python benchmarks/bench_generate.py
python benchmarks/bench_privacy_audit.py --sizes 2000x2000 10000x20000
python benchmarks/bench_privacy.py
