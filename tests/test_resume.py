"""Resumable training: a killed run, rerun with the same command, ends with the weights of an
uninterrupted run (kill -9 of the real CLI for the grid; interrupted in-process for the others)."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from sculpting.infrastructure.training_scaffold import Resumable

CMD = [
    sys.executable,
    "-m",
    "sculpting",
    "grid-base",
    "--reward",
    "circle1",
    "--horizon",
    "12",
    "--preset",
    "smoke",
    "--steps",
    "2500",
    "--batch_size",
    "32",
    "--eval_every",
    "0",
    "--checkpoint-every",
    "20",
]


def _digest(path):
    from sculpting.gflownet.io import load_gflownet

    sd = load_gflownet(path).state_dict()
    return hashlib.sha256(b"".join(sd[k].numpy().tobytes() for k in sorted(sd))).hexdigest()


def test_kill_9_at_random_points_then_rerun_gives_the_uninterrupted_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run(CMD + ["--out", str(tmp_path / "whole")], check=True, env=env, capture_output=True)
    full = time.perf_counter() - t0
    rng = random.Random(os.getpid())
    kills = 0
    for _ in range(3):  # three kills at random points, each followed by the same command
        p = subprocess.Popen(
            CMD + ["--out", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.4, 0.9) * full)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 1
    assert (tmp_path / "killed" / "resume.pt").is_file()
    subprocess.run(CMD + ["--out", str(tmp_path / "killed")], check=True, env=env, capture_output=True)
    assert _digest(tmp_path / "killed" / "model.pt") == _digest(tmp_path / "whole" / "model.pt")


class Interrupt(Exception):
    pass


def _interrupt_at(monkeypatch, k):
    real = Resumable.save

    def save(self, step, hist, force=False):
        real(self, step, hist, force)
        if step == k and not force:
            raise Interrupt

    monkeypatch.setattr(Resumable, "save", save)


def _hash(module):
    sd = module.state_dict()
    return hashlib.sha256(b"".join(sd[k].detach().contiguous().numpy().tobytes() for k in sorted(sd))).hexdigest()


def _grid_classifier(ckpt):
    import sculpting as sc
    from sculpting.gflownet.classifier import SculptingClassifier
    from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier

    bases, _ = sc.load_pretrained("grid/circles")
    torch.manual_seed(0)
    clf = SculptingClassifier(bases[0].env, 3, 3, hidden=32)
    train_classifier(
        clf,
        bases,
        ClassifierTrainConfig(steps=30, batch_per_base=8, warmup_steps=10),
        progress=False,
        checkpoint_path=ckpt,
        checkpoint_every=7,
    )
    return clf


def _mnist_base(ckpt):
    from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model

    torch.manual_seed(0)
    model = ScoreModel(3, "smoke")
    x = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    train_score_model(
        model, x, DiffusionTrainConfig(steps=12, batch_size=4), progress=False, checkpoint_path=ckpt, checkpoint_every=5
    )
    return model


def _mnist_classifier(ckpt):
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.classifier_training import DiffusionClassifierConfig, TrajectoryPool, train_time_classifier

    g = torch.Generator().manual_seed(2)
    pools = [TrajectoryPool(torch.randn(6, 8, 3, 16, 16, generator=g), torch.linspace(1, 1e-3, 6)) for _ in range(2)]
    torch.manual_seed(0)
    clf = TimeClassifier((3, 16, 16), 2, 2, trunk=(4, 8), hidden=16, embed_dim=16)
    train_time_classifier(
        clf,
        pools,
        DiffusionClassifierConfig(updates=14, batch=4, terminal_only=3, refresh_every=4),
        progress=False,
        checkpoint_path=ckpt,
        checkpoint_every=5,
    )
    return clf


@pytest.mark.parametrize("train", [_grid_classifier, _mnist_base, _mnist_classifier])
def test_interrupted_trainers_resume_to_the_same_weights(train, tmp_path, monkeypatch):
    want = _hash(train(None))
    with monkeypatch.context() as m:
        _interrupt_at(m, 10)
        with pytest.raises(Interrupt):
            train(tmp_path / "resume.pt")
    assert _hash(train(tmp_path / "resume.pt")) == want
    assert _hash(train(tmp_path / "resume.pt")) == want  # a finished run reruns as a no-op


@pytest.mark.parametrize(
    "change, field",
    [
        ({"steps": 6}, "config.steps"),
        ({"reward": "diag_sigmoid"}, "what.model.env.reward ('circle1' → 'diag_sigmoid')"),
        ({"temperature": 0.25}, "what.model.env.temperature"),
        ({"hidden": 16}, "what.model.architecture"),
    ],
)
def test_resume_file_of_another_run_is_refused(tmp_path, change, field):
    """A resume file records everything that decides the result: another config, reward,
    temperature or architecture is refused before anything is touched, naming the field."""
    from sculpting.infrastructure.checkpoints import CheckpointError
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.policy import GFlowNet
    from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet

    def run(steps=5, reward="circle1", temperature=1.0, hidden=8):
        model = GFlowNet(GridEnv(4, 2, reward, temperature), hidden=hidden, seed=0)
        train_gflownet(
            model,
            GFlowNetTrainConfig(steps=steps, batch_size=4, eval_every=0),
            progress=False,
            checkpoint_path=tmp_path / "r.pt",
            checkpoint_every=2,
        )
        return model

    run()
    before = (tmp_path / "r.pt").read_bytes()
    with pytest.raises(CheckpointError, match="belongs to another run") as e:
        run(**change)
    assert field in str(e.value)
    assert (tmp_path / "r.pt").read_bytes() == before


def test_resume_records_a_user_reward_by_its_code(tmp_path):
    """Two user rewards under one registered name differ by their code: resuming is refused."""
    from sculpting.infrastructure.checkpoints import CheckpointError
    from sculpting.domains.grid import GridEnv, register_reward
    from sculpting.gflownet.policy import GFlowNet
    from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet

    def bump(z):
        return -z.double().sum(-1) / 4

    def bump2(z):
        return -z.double().sum(-1) / 2

    cfg = GFlowNetTrainConfig(steps=3, batch_size=4, eval_every=0)
    register_reward("test_resume_bump", bump, overwrite=True)
    train_gflownet(
        GFlowNet(GridEnv(4, 2, "test_resume_bump"), hidden=8, seed=0),
        cfg,
        progress=False,
        checkpoint_path=tmp_path / "r.pt",
        checkpoint_every=1,
    )
    register_reward("test_resume_bump", bump2, overwrite=True)
    with pytest.raises(CheckpointError, match="reward_code"):
        train_gflownet(
            GFlowNet(GridEnv(4, 2, "test_resume_bump"), hidden=8, seed=0),
            cfg,
            progress=False,
            checkpoint_path=tmp_path / "r.pt",
            checkpoint_every=1,
        )
