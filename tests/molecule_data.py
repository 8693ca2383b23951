"""The one rule for tests that need the molecule data: both files present where the package looks
(``SCULPTING_DATA_DIR``, else the user cache). CI sets the variable; with ``SCULPTING_REQUIRE_DATA=1``
(set by scripts/test.sh when it found the data) a missing file fails instead of skipping."""

import os

import pytest

REASON = "set SCULPTING_DATA_DIR to the molecule data (docs/molecules.md §13)"


def have_data() -> bool:
    try:
        from sculpting.domains.molecules import data as mdata
    except ImportError:  # rdkit missing
        return False
    d = mdata.data_dir()
    return (d / "fragments_72.json").is_file() and (d / "seh_proxy" / "best_params.npz").is_file()


HAVE_DATA = have_data()


def require_data() -> None:
    """Skip the calling test without the data (fail where the data is required)."""
    if not HAVE_DATA:
        if os.environ.get("SCULPTING_REQUIRE_DATA") == "1":
            pytest.fail(f"the molecule data is required here: {REASON}")
        pytest.skip(REASON)


needs_data = pytest.mark.skipif(not HAVE_DATA and os.environ.get("SCULPTING_REQUIRE_DATA") != "1", reason=REASON)
