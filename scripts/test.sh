#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# two worker processes (CI has 2 cores; every test runs single-threaded, see tests/conftest.py),
# each taking whole files so module-scoped fixtures are built once
python -m pytest tests -n 2 --dist loadfile "$@"
