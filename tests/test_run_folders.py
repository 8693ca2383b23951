"""Runs never mix: one invocation and one writer per output folder (python -m sculpting).

The three folder scenarios of a reused ``--out``: finished, killed mid-run, concurrent. Each ends
refused with a clear message, or (``--restart``) with weights byte-identical to a fresh run of the
second command."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cmd(out, reward, steps=30, *extra):
    return [
        sys.executable,
        "-m",
        "sculpting",
        "grid-base",
        "--preset",
        "smoke",
        "--horizon",
        "6",
        "--reward",
        reward,
        "--steps",
        str(steps),
        "--checkpoint-every",
        "5",
        "--out",
        str(out),
        *extra,
    ]


def _run(cmd, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, **kw)


def _state_hash(path):
    import torch

    sd = torch.load(path, weights_only=True)["state_dict"]
    return hashlib.sha256(b"".join(sd[k].numpy().tobytes() for k in sorted(sd))).hexdigest()


def test_a_finished_folder_refuses_another_reward_and_repeats_its_own_as_a_no_op(tmp_path):
    a, fresh = tmp_path / "a", tmp_path / "fresh"
    assert _run(_cmd(a, "symmetric_shubert")).returncode == 0
    first = _state_hash(a / "model.pt")
    r = _run(_cmd(a, "diag_sigmoid"))
    assert r.returncode != 0
    assert "holds a finished run of another invocation" in r.stderr and "arguments.reward" in r.stderr
    assert "--restart" in r.stderr and _state_hash(a / "model.pt") == first  # nothing touched
    r = _run(_cmd(a, "symmetric_shubert"))  # the exact command again: a no-op printing its summary
    assert r.returncode == 0 and "nothing to do" in r.stderr and _state_hash(a / "model.pt") == first
    # --restart: the second command's weights, byte-identical to a fresh run of it
    assert _run(_cmd(a, "diag_sigmoid", 30, "--restart")).returncode == 0
    assert _run(_cmd(fresh, "diag_sigmoid")).returncode == 0
    assert _state_hash(a / "model.pt") == _state_hash(fresh / "model.pt") != first
    assert json.loads((a / "model.json").read_text())["env"]["reward"] == "diag_sigmoid"


def _start_and_wait_for_resume_file(cmd, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "resume.pt").is_file():  # wait on the state we need, not a fixed time
        assert p.poll() is None, p.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    return p


def test_a_killed_run_is_not_continued_by_another_command(tmp_path):
    a = tmp_path / "a"
    p = _start_and_wait_for_resume_file(_cmd(a, "symmetric_shubert", 100000), a)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = (a / "resume.pt").read_bytes()
    r = _run(_cmd(a, "diag_sigmoid", 100000))
    assert r.returncode != 0 and "holds an unfinished run of another invocation" in r.stderr
    assert "arguments.reward" in r.stderr and (a / "resume.pt").read_bytes() == before
    assert not (a / "model.pt").exists()


def test_two_runs_into_one_folder_at_once_the_second_stops_naming_the_first(tmp_path):
    a = tmp_path / "a"
    p = _start_and_wait_for_resume_file(_cmd(a, "symmetric_shubert", 100000), a)
    try:
        t0 = time.time()
        r = _run(_cmd(a, "diag_sigmoid", 30))
        assert r.returncode != 0 and time.time() - t0 < 60
        assert f"in use by another run (PID {p.pid}" in r.stderr and "symmetric_shubert" in r.stderr
        r = _run(_cmd(a, "symmetric_shubert", 100000))  # even the same command: one writer
        assert r.returncode != 0 and "in use by another run" in r.stderr
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    # the killed holder's lock is released by the OS: a new holder takes the folder over
    from sculpting.infrastructure.runs import RunFolder

    inv = json.loads((a / "run.json").read_text())["invocation"]
    with RunFolder(a, inv) as run:
        assert run.finished is None and (a / "resume.pt").is_file()


def test_an_unwritable_or_full_folder_is_refused_before_training(tmp_path, monkeypatch):
    from sculpting.infrastructure.runs import RunFolder, RunFolderError

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:  # a real read-only folder, through the CLI
        ro.chmod(0o500)
        try:
            r = _run(_cmd(ro, "circle1"))
            assert r.returncode != 0 and "is not writable" in r.stderr
        finally:
            ro.chmod(0o700)

    def refuse(self, data):  # root ignores permissions: a refused write, as a read-only mount gives
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(Path, "write_bytes", refuse)
        with pytest.raises(RunFolderError, match="is not writable"):
            with RunFolder(ro, {"x": 1}):
                pass
    assert not (ro / "run.json").exists()
    with pytest.raises(RunFolderError, match="MB free"):
        with RunFolder(tmp_path / "full", {"x": 1}, min_free_bytes=2**62):
            pass
    assert not (tmp_path / "full" / "run.json").exists()


def test_an_out_below_a_file_fails_before_training(tmp_path):
    from sculpting.infrastructure.runs import RunFolder, RunFolderError

    f = tmp_path / "file"
    f.write_text("not a folder")
    with pytest.raises(RunFolderError, match="cannot be created"):
        with RunFolder(f / "sub", {"x": 1}):
            pass


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "0"], "steps must be ≥ 1"),
        (["--lr", "nan"], "lr must be a number"),
        (["--lr", "-1.0"], "lr must be a finite number > 0"),
        (["--batch_size", "2.5"], "batch_size must be an integer"),
        (["--epsilon", "3.0"], "epsilon must be in [0, 1]"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, extra, message):
    from sculpting.infrastructure.cli import main

    with pytest.raises(SystemExit, match=message.replace("[", r"\[").replace("]", r"\]")):
        main(["grid-base", "--preset", "smoke", "--out", str(tmp_path / "o"), *extra])
    assert not (tmp_path / "o").exists()


def test_a_config_file_must_hold_an_object(tmp_path):
    from sculpting.infrastructure.cli import main

    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match="JSON object"):
        main(["grid-base", "--preset", "smoke", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "o")])
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(SystemExit, match="is not JSON"):
        main(["grid-base", "--preset", "smoke", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "o")])


def test_resuming_with_another_temperature_or_horizon_is_refused_by_name(tmp_path):
    a = tmp_path / "a"
    p = _start_and_wait_for_resume_file(_cmd(a, "symmetric_shubert", 100000), a)
    p.send_signal(signal.SIGKILL)
    p.wait()
    for extra, field in (
        (["--temperature", "0.25"], "arguments.temperature"),
        (["--horizon", "7"], "arguments.horizon"),
    ):
        r = _run(_cmd(a, "symmetric_shubert", 100000) + extra)
        assert r.returncode != 0 and field in r.stderr, r.stderr
