#!/usr/bin/env bash
# Set everything up (.venv) and run the whole test suite (unit tests + papermill runs of every notebook).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if [ -z "${SCULPTING_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export SCULPTING_DATA_DIR="$(cd ../shared/data && pwd)"
fi
export MPLBACKEND=Agg
exec .venv/bin/python -m pytest -q --durations=15 "$@"
