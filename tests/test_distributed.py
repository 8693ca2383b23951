"""Data-parallel training under torchrun (2 gloo processes on CPU)."""

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TORCHRUN = str(Path(sys.executable).parent / "torchrun")
GRID = [
    "grid-base",
    "--reward",
    "circle1",
    "--horizon",
    "8",
    "--preset",
    "smoke",
    "--steps",
    "300",
    "--batch_size",
    "128",
    "--eval_every",
    "0",
]


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def train(args, out, ranks=1):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = (
        [TORCHRUN, "--nproc_per_node", str(ranks), "--master_addr", "127.0.0.1", "--master_port", _port(), "-m"]
        if ranks > 1
        else [sys.executable, "-m"]
    )
    r = subprocess.run(
        launch + ["sculpting", *args, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    return json.loads((out / "summary.json").read_text())


def _weights(path):
    from sculpting.infrastructure.checkpoints import load_checkpoint

    sd, _ = load_checkpoint(path, None)
    return hashlib.sha256(b"".join(sd[k].numpy().tobytes() for k in sorted(sd))).hexdigest()


def test_two_ranks_match_one_rank_and_are_reproducible(tmp_path):
    one = train(GRID, tmp_path / "one")
    two = train(GRID, tmp_path / "two", ranks=2)
    train(GRID, tmp_path / "again", ranks=2)  # the same run again: the same bytes (below)
    assert one["world_size"] == 1 and two["world_size"] == 2
    # same global batch of 128 (64 per rank): the same quality within sampling noise
    assert one["exact_l1_to_reward"] < 0.1 and two["exact_l1_to_reward"] < 0.1
    assert abs(one["exact_l1_to_reward"] - two["exact_l1_to_reward"]) < 0.04
    assert _weights(tmp_path / "two" / "model.pt") == _weights(tmp_path / "again" / "model.pt")
    assert _weights(tmp_path / "two" / "model.pt") != _weights(tmp_path / "one" / "model.pt")
    assert {p.name for p in (tmp_path / "two").glob("resume*.pt")} == {"resume.rank0.pt", "resume.rank1.pt"}


@pytest.mark.parametrize(
    "args",
    [
        ["mnist-base", "--base", "M2", "--preset", "smoke", "--steps", "20", "--batch_size", "8"],
        ["molecule-base", "--objective", "qed", "--preset", "smoke", "--steps", "20", "--batch_size", "8"],
    ],
)
def test_mnist_and_molecule_trainers_run_on_two_ranks(args, tmp_path):
    if args[0].startswith("molecule"):
        from molecule_data import require_data

        require_data()
    s = train(args, tmp_path, ranks=2)
    assert s["world_size"] == 2 and (tmp_path / "model.pt").is_file()


def test_batches_must_split_evenly(monkeypatch):
    from sculpting.infrastructure import distributed

    assert distributed.local_batch(128) == 128 and distributed.rank_seed(5) == 5  # one process: unchanged
    monkeypatch.setattr(distributed, "world", lambda: (1, 3))  # three ranks
    assert distributed.local_batch(96) == 32  # control: an even split
    for uneven in (128, 97, 1):
        with pytest.raises(ValueError, match="does not split evenly over 3 ranks"):
            distributed.local_batch(uneven)
