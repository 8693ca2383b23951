"""Same seed, same bytes: train twice in two fresh processes and compare weight hashes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("repro_worker.py")


def _run(what, out):
    r = subprocess.run(
        [sys.executable, str(WORKER), what, str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_one_user_script_over_every_domain_repeats_in_two_processes(tmp_path):
    """Seeds belong to the call: constructors, trainers, fit_classifier and sample take seed=; the
    same script in two processes gives the same bytes, and leaves torch's global generator alone."""
    a, b = _run("api", tmp_path / "a"), _run("api", tmp_path / "b")
    assert a["global_rng_untouched"] is True
    assert {"grid", "bitstrings", "diffusion"} <= set(a)
    assert a == b


@pytest.mark.parametrize("what", ["grid", "mnist", "molecules"])
def test_training_twice_in_two_processes_gives_the_same_weights(what, tmp_path):
    if what == "molecules":
        from molecule_data import require_data

        require_data()
    a, b = _run(what, tmp_path / "a"), _run(what, tmp_path / "b")
    assert a and a == b
    if what == "grid":  # five bases and two classifiers
        assert len(a) == 7
