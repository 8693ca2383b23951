#!/usr/bin/env bash
# Set everything up (.venv) and open JupyterLab on the notebooks (shipped pretrained models work at once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
extra=()
if [ "$(id -u)" = "0" ]; then extra+=(--allow-root); fi  # containers often run as root
exec .venv/bin/jupyter lab --notebook-dir=notebooks "${extra[@]}" "$@"
