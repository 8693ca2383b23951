#!/usr/bin/env bash
# Set everything up (.venv) and run the whole test suite (unit tests + papermill runs of every notebook).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_common.sh
exec .venv/bin/python -m pytest -q --durations=15 "$@"
