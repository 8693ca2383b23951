"""Every public name of the API documents itself with an example that runs (doctest), on the
shipped models. The examples run in a fresh process (one of them registers a domain)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import doctest, sys
import sculpting as sc

missing, failed = [], []
finder = doctest.DocTestFinder(recurse=False)
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
names = sys.argv[1:] or sc.__all__
for name in names:
    tests = [t for t in finder.find(getattr(sc, name), name, globs={}) if t.examples]
    if not tests:
        missing.append(name)
    for t in tests:
        r = runner.run(t)
        if r.failed:
            failed.append(name)
print("MISSING", missing)
print("FAILED", failed)
sys.exit(1 if missing or failed else 0)
"""


def _run(*names):
    return subprocess.run([sys.executable, "-c", SCRIPT, *names], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_every_public_name_has_an_example_that_runs():
    r = _run()
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "MISSING []" in r.stdout and "FAILED []" in r.stdout


def test_a_wrong_example_output_is_caught(tmp_path, monkeypatch):
    """Control: an example whose printed value is wrong fails (the runner really compares)."""
    code = SCRIPT.replace(
        "import sculpting as sc", "import sculpting as sc\nsc.l1_distance.__doc__ += '''\n    >>> 1 + 1\n    3\n'''"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "l1_distance"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 1 and "FAILED ['l1_distance']" in r.stdout
