"""fork_map: independent jobs in worker processes (sculpting.infrastructure.workers), under every start method,
and workers that die with their parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sculpting.infrastructure.workers import fork_map

METHODS = ["fork", "forkserver", "spawn"]


@pytest.fixture(params=METHODS)
def method(request, monkeypatch):
    monkeypatch.setenv("SCULPTING_START_METHOD", request.param)
    return request.param


def test_results_come_back_in_item_order_from_other_processes(method):
    big = torch.arange(10.0)  # fork: shared with the children; forkserver / spawn: sent with the job

    def job(i):
        return i, os.getpid(), big * i, torch.get_num_threads()

    out = fork_map(job, range(5), workers=2)
    assert [o[0] for o in out] == list(range(5))
    assert all(o[1] != os.getpid() for o in out)
    assert all(torch.equal(o[2], big * i) for i, o in enumerate(out))
    assert {o[3] for o in out} == {1}
    assert fork_map(job, range(3), workers=1)[2][1] == os.getpid()  # one worker: in this process


def test_a_failing_or_dying_job_is_reported(method):
    def job(i):
        if i == 1:
            raise ValueError("bad item")
        return i

    with pytest.raises(RuntimeError, match=f"\\({method}\\) failed:\\njob 1: ValueError: bad item"):
        fork_map(job, range(3), workers=2)

    def dies(i):
        if i == 0:
            os._exit(3)
        return i

    with pytest.raises(RuntimeError, match="job 0: the worker process died"):
        fork_map(dies, range(2), workers=2)
    with pytest.raises(ValueError, match="workers must be"):
        fork_map(dies, range(2), workers=0)


def test_the_start_method_follows_the_machine(monkeypatch):
    from sculpting.infrastructure.workers import start_method

    monkeypatch.delenv("SCULPTING_START_METHOD", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert start_method() == "fork"  # CPU only: fork, sharing the parent's objects
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert start_method() == "forkserver"  # CUDA visible: no fork after autograd
    monkeypatch.setenv("SCULPTING_START_METHOD", "spawn")
    assert start_method() == "spawn"
    monkeypatch.setenv("SCULPTING_START_METHOD", "thread")
    with pytest.raises(ValueError, match="SCULPTING_START_METHOD"):
        start_method()


def test_grid_sampling_in_workers_gives_the_same_bytes_under_every_start_method(monkeypatch):
    import sculpting as sc

    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    model = sc.compose(bases, clf, "harmonic")
    out = {}
    for m in METHODS:
        monkeypatch.setenv("SCULPTING_START_METHOD", m)
        out[m] = sc.sample(model, 600, seed=4, workers=2)
    assert torch.equal(out["fork"], out["forkserver"]) and torch.equal(out["fork"], out["spawn"])
    assert not torch.equal(out["fork"], sc.sample(model, 600, seed=5, workers=2))  # control: another seed


def test_grid_bases_trained_in_forkserver_workers_equal_one_at_a_time(monkeypatch):
    """What failed on the GPU machine (fork after autograd): training in workers, now forkserver."""
    from sculpting.domains.grid.experiments import train_bases
    from sculpting.gflownet.training import GFlowNetTrainConfig

    configs = {
        n: GFlowNetTrainConfig(steps=4, batch_size=8, seed=i, eval_every=0)
        for i, n in enumerate(["circle1", "sigmoid"])
    }
    loss = torch.zeros(3, requires_grad=True)
    loss.sum().backward()  # autograd has run in the parent
    monkeypatch.setenv("SCULPTING_START_METHOD", "forkserver")
    one, two = (train_bases(configs, horizon=5, workers=w, progress=False) for w in (1, 2))
    for name in configs:
        a, b = one[name][0].state_dict(), two[name][0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a) and one[name][1]["loss"] == two[name][1]["loss"]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _descendants(pid: int) -> list[int]:
    out = []
    for c in _children(pid):
        out += [c, *_descendants(c)]
    return out


def _alive(pid: int) -> bool:
    try:
        state = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state  # a zombie has exited


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(
    "start, watch",
    [
        ("fork", "pdeathsig,poll"),
        ("fork", "pdeathsig"),
        ("fork", "poll"),
        ("forkserver", "pdeathsig,poll"),
        ("fork", "none"),
    ],
)
def test_workers_die_with_a_parent_killed_by_sigkill(start, watch):
    """kill -9 of the parent of sc.sample(..., workers=2): no worker is left after a few seconds,
    with each of the two mechanisms alone (the kernel's parent-death signal; the PID poll) and both.
    Control (watch "none"): without them the workers outlive their parent, so the test can fail."""
    code = (
        "import torch, sculpting as sc\n"
        "bases, clf = sc.load_pretrained('grid/shubert_sigmoid')\n"
        "sc.sample(bases[0], 3_000_000, seed=0, workers=2)\n"
    )
    env = {**os.environ, "SCULPTING_START_METHOD": start, "OMP_NUM_THREADS": "1", "SCULPTING_PARENT_WATCH": watch}
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[1])
    workers, deadline = [], time.time() + 120
    try:
        while time.time() < deadline and parent.poll() is None:  # until the jobs run (forkserver: grandchildren)
            workers = _descendants(parent.pid)
            if len(workers) >= 2:
                time.sleep(3.0)  # the jobs are running and filling their pipes
                workers = _descendants(parent.pid)
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t0 = time.time()
        while time.time() - t0 < 8 and any(_alive(w) for w in workers):
            time.sleep(0.2)
        left = [w for w in workers if _alive(w)]
        if watch == "none":
            assert left, "the workers died without a watcher: this test could not tell the mechanisms work"
        else:
            assert not left, f"workers still alive {time.time() - t0:.1f} s after the parent was killed: {left}"
    finally:
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except OSError:
                pass


def test_the_default_number_of_workers_follows_the_device(monkeypatch):
    """One process per GPU for CUDA models, one per usable core on the CPU; "auto" asks it."""
    from sculpting.infrastructure.bounds import MAX_WORKERS
    from sculpting.infrastructure.workers import default_workers, resolve_workers, worker_devices

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert default_workers("cuda") == 3 and default_workers(torch.device("cuda", 1)) == 3
    assert default_workers("cpu") == default_workers(None) == min(cores, MAX_WORKERS)
    assert resolve_workers("auto", "cuda") == 3 and resolve_workers("auto") == min(cores, MAX_WORKERS)
    assert resolve_workers(5) == 5
    assert worker_devices("cuda", 5) == [torch.device("cuda", k) for k in (0, 1, 2, 0, 1)]
    assert worker_devices("cpu", 2) == [torch.device("cpu")] * 2
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert default_workers("cuda") == 1  # CUDA named but none visible: one process
    for bad in ("many", 0, True, 2.0, MAX_WORKERS + 1):
        with pytest.raises(ValueError, match="workers must be"):
            resolve_workers(bad)


def test_running_jobs_are_pinned_to_distinct_slot_devices(method, tmp_path):
    """fork_map(devices=): a job computes on its worker's device (the meta device stands in for a
    second GPU here); two jobs running at once never share a slot; in-process: the default. Jobs
    0 and 1 (then 2 and 3) meet at a barrier (files in tmp_path): each waits until its partner has
    started, so they certainly run at the same time, whatever the machine's speed."""
    from sculpting.infrastructure.workers import worker_device

    def job(i):
        (tmp_path / f"started{i}").touch()
        partner = tmp_path / f"started{i ^ 1}"
        deadline = time.time() + 60
        while not partner.exists():  # the barrier: both jobs of the pair are running now
            assert time.time() < deadline, f"job {i}: its partner never started (jobs ran one at a time?)"
            time.sleep(0.01)
        return str(worker_device("here"))

    out = fork_map(job, range(4), workers=2, devices=["cpu", "meta"])
    assert sorted(out[:2]) == ["cpu", "meta"] and sorted(out[2:]) == ["cpu", "meta"]  # concurrent: distinct slots
    assert out[:2] == ["cpu", "meta"]  # started together: slots 0 and 1, in order
    assert fork_map(lambda i: str(worker_device("here")), range(2), workers=1, devices=["meta"])[0] == "here"
    with pytest.raises(ValueError, match="one per worker slot"):
        fork_map(job, range(4), workers=2, devices=["cpu"])


def test_auto_workers_sample_as_the_resolved_count():
    import sculpting as sc
    from sculpting.infrastructure.workers import default_workers

    bases, _ = sc.load_pretrained("grid/shubert_sigmoid")
    w = default_workers("cpu")
    assert torch.equal(sc.sample(bases[0], 300, seed=2, workers="auto"), sc.sample(bases[0], 300, seed=2, workers=w))
    with pytest.raises(TypeError, match="workers must be an integer or 'auto'"):
        sc.sample(bases[0], 30, seed=2, workers="all")
