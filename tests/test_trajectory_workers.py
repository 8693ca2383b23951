"""Training batches drawn by CPU worker processes one step ahead (sculpting.gflownet.pipeline):
each share is exactly the in-process draw of its seed with the weights one update older, a run
depends on its seed and worker count only, and an interrupted run resumes to the same weights."""

import pytest
import torch
from molecule_data import needs_data

pytestmark = needs_data


class Interrupt(Exception):
    pass


def _setup(seed=0):
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet

    env = FragmentGraphEnv(3, "seh")
    return MoleculeGFlowNet(env, **PRESETS["smoke"], seed=seed), BetaConditioning()


def _config(**kw):
    from sculpting.gflownet.training import GFlowNetTrainConfig

    return GFlowNetTrainConfig(**{"steps": 5, "batch_size": 6, "seed": 3, "eval_every": 0, **kw})


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_each_share_is_the_in_process_draw_of_its_seed_with_the_current_weights(method, monkeypatch):
    from sculpting.gflownet.pipeline import TrajectoryWorkers, batch_seed, draw_share

    monkeypatch.setenv("SCULPTING_START_METHOD", method)
    model, cond = _setup()
    with TrajectoryWorkers(model, cond, 2, batch=7, epsilon=0.05, seed=5) as pipe:
        for step in (1, 2):
            pipe.submit(step)
            traj, c, log_r = pipe.collect()
            for j, (lo, hi) in enumerate(((0, 4), (4, 7))):  # shares of 7 over 2 workers: 4, 3
                ref = draw_share(model.env, model, cond, hi - lo, 0.05, batch_seed(5, step, j))
                assert torch.equal(ref["states"], traj.states[lo:hi]) and torch.equal(ref["cond"], c[lo:hi])
                assert torch.equal(ref["log_r"], log_r[lo:hi]) and torch.equal(ref["actions"], traj.actions[lo:hi])
            with torch.no_grad():  # the workers see new weights at the next submit (shared memory)
                for p in model.parameters():
                    p.add_(0.3)
        stale = draw_share(model.env, _setup()[0], cond, 4, 0.05, batch_seed(5, 2, 0))
        assert not torch.equal(stale["states"], traj.states[:4]) or not torch.equal(stale["log_r"], log_r[:4])


def test_training_draws_each_batch_one_update_behind(monkeypatch):
    """Batch k is the workers' draw with the weights after update k − 2 (k ≥ 2), not k − 1."""
    from sculpting.gflownet import training
    from sculpting.gflownet.pipeline import batch_seed, draw_share
    from sculpting.gflownet.training import train_gflownet

    model, cond = _setup()
    snapshots, batches = {0: {k: v.clone() for k, v in model.state_dict().items()}}, {}
    real = training._tb_loss_of

    def spy(m, traj, c, log_r):
        batches[len(batches) + 1] = traj.states.clone()
        return real(m, traj, c, log_r)

    monkeypatch.setattr(training, "_tb_loss_of", spy)
    train_gflownet(
        model,
        _config(steps=4),
        progress=False,
        conditioning=cond,
        trajectory_workers=1,
        callback=lambda step, m: snapshots.update({step: {k: v.clone() for k, v in m.state_dict().items()}}) or {},
        callback_every=1,
    )
    probe, _ = _setup()
    for k, older in ((1, 0), (2, 0), (3, 1), (4, 2)):
        probe.load_state_dict(snapshots[older])
        ref = draw_share(probe.env, probe, cond, 6, 0.05, batch_seed(3, k, 0))
        assert torch.equal(ref["states"], batches[k]), k
    probe.load_state_dict(snapshots[3])  # control: the newest weights draw another batch 4
    assert not torch.equal(draw_share(probe.env, probe, cond, 6, 0.05, batch_seed(3, 4, 0))["states"], batches[4])


def test_a_run_with_workers_is_reproducible_and_resumes_to_the_same_weights(tmp_path):
    from sculpting.gflownet.training import train_gflownet

    def run(path=None, stop_at=None, workers=2, seed=3):
        model, cond = _setup()

        def callback(step, m):
            if step == stop_at:
                raise Interrupt
            return {}

        hist = train_gflownet(
            model,
            _config(seed=seed, sampler_ema=0.5),
            progress=False,
            conditioning=cond,
            trajectory_workers=workers,
            checkpoint_path=path,
            checkpoint_every=2,
            callback=callback,
            callback_every=1,
        )
        return model.state_dict(), hist["loss"]

    a, loss_a = run()
    b, loss_b = run()
    assert all(torch.equal(a[k], b[k]) for k in a) and loss_a == loss_b
    with pytest.raises(Interrupt):
        run(tmp_path / "r.pt", stop_at=4)  # killed after the checkpoint of step 2, a batch in flight
    c, loss_c = run(tmp_path / "r.pt")
    assert all(torch.equal(a[k], c[k]) for k in a) and loss_c == loss_a
    d, _ = run(workers=1)  # control: another worker count, another run
    assert not all(torch.equal(a[k], d[k]) for k in a)


def test_bad_settings_and_worker_failures_are_reported():
    from sculpting.gflownet.pipeline import TrajectoryWorkers
    from sculpting.gflownet.training import train_gflownet

    model, cond = _setup()
    with pytest.raises(ValueError, match="trajectory_workers must be"):
        train_gflownet(model, _config(), progress=False, conditioning=cond, trajectory_workers=-1)
    from sculpting.domains.grid.experiments import make_base

    with pytest.raises(ValueError, match="non-enumerable"):
        train_gflownet(make_base("circle1", 5), _config(), progress=False, trajectory_workers=1)
    with pytest.raises(ValueError, match="at most 6"):
        TrajectoryWorkers(model, cond, 7, batch=6, epsilon=0.0, seed=0)

    class Broken:
        def sample(self, n, generator=None):
            raise ArithmeticError("no β today")

    with pytest.raises(RuntimeError, match="trajectory worker 0: ArithmeticError: no β today"):
        train_gflownet(model, _config(), progress=False, conditioning=Broken(), trajectory_workers=2)


def test_workers_die_with_a_parent_killed_by_sigkill():
    """kill -9 of a trainer with trajectory workers: no worker is left after a few seconds."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from test_workers import _alive, _descendants

    code = (
        "import time\n"
        "from sculpting.domains.molecules.env import FragmentGraphEnv\n"
        "from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet\n"
        "from sculpting.gflownet.pipeline import TrajectoryWorkers\n"
        "m = MoleculeGFlowNet(FragmentGraphEnv(3, 'seh'), **PRESETS['smoke'], seed=0)\n"
        "pipe = TrajectoryWorkers(m, BetaConditioning(), 2, batch=4, epsilon=0.0, seed=0)\n"
        "pipe.submit(1)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=Path(__file__).resolve().parents[1],
    )
    workers, deadline = [], time.time() + 120
    try:
        while time.time() < deadline and parent.poll() is None and len(workers) < 2:
            workers = _descendants(parent.pid)
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)
        workers = _descendants(parent.pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t0 = time.time()
        while time.time() - t0 < 8 and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "trajectory workers outlived their parent"
    finally:
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except OSError:
                pass
