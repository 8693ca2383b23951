#!/usr/bin/env bash
# Set everything up (.venv) and execute all ten notebooks in order at their CPU-scale defaults,
# writing executed notebooks, figures, metrics.json and figures/summary.md (resumable; --force reruns).
# The molecule notebooks (07-09) need the molecule data: SCULPTING_DATA_DIR (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_common.sh
exec .venv/bin/python -m sculpting.lab.reproduce "$@"
