#!/usr/bin/env bash
# The GPU path, measured (issue 20): every registered generator and TSPG trained on a CUDA GPU
# in fp32, 16-mixed and bf16-mixed, against the same runs on the CPU; table on stdout, JSON in
# benchmarks/results/gpu.json. Under 5 minutes on one H200 (--budget-s time-boxes it).
# Without a CUDA GPU it says so and exits 0; --cpu-smoke runs the CPU side on a tiny set.
# Options are those of benchmarks/bench_gpu.py (--help), e.g.
#   bash benchmarks/bench_gpu.sh --steps 200 --budget-s 270
#   bash benchmarks/bench_gpu.sh --cpu-smoke --steps 5 --n-genes 2000 --n-obs 200
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .venv/bin/activate ]; then
    . .venv/bin/activate
fi
exec python benchmarks/bench_gpu.py "$@"
