# Sourced by test.sh and reproduce.sh: find the molecule data, set up .venv, headless matplotlib.
# (CI keeps the molecule data in ../shared/data; users set SCULPTING_DATA_DIR or let setup fetch it.)
if [ -z "${SCULPTING_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export SCULPTING_DATA_DIR="$(cd ../shared/data && pwd)"
fi
bash scripts/setup_env.sh
# where the data was found, the molecule tests must run (a missing file then fails, not skips)
if [ -n "${SCULPTING_DATA_DIR:-}" ] && [ -f "$SCULPTING_DATA_DIR/fragments_72.json" ]; then export SCULPTING_REQUIRE_DATA=1; fi
export MPLBACKEND=Agg
