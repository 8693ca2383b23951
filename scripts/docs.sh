#!/usr/bin/env bash
# Build the documentation site in strict mode into build/site/ (--serve: then serve it locally).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_common.sh
exec .venv/bin/python scripts/docs.py "$@"
