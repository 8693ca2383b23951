# Sourced by test.sh and reproduce.sh: set up .venv, find the molecule data, headless matplotlib.
bash scripts/setup_env.sh
if [ -z "${SCULPTING_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export SCULPTING_DATA_DIR="$(cd ../shared/data && pwd)"
fi
export MPLBACKEND=Agg
