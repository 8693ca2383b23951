"""Regenerate the shipped grid models (5 bases, 2 classifiers) with pinned settings.

    .venv/bin/python -m sculpting.domains.grid.build [--out DIR] [--smoke]
                                                       [--bases NAME ...] [--pairs PAIR ...]

``--bases`` / ``--pairs`` restrict the run (e.g. two processes for the two classifiers; the
classifiers load their bases from ``--out``).

Writes ``base_<name>.pt`` / ``classifier_<pair>.pt`` (+ ``.json`` metadata) and prints the
exact L1 of every base to its reward distribution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sculpting.domains.grid.experiments import CLASSIFIER_SETS, GRID_BASES, make_classifier, train_base
from sculpting.domains.grid.io import PRETRAINED_DIR
from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
from sculpting.gflownet.io import load_gflownet, save_classifier, save_gflownet
from sculpting.gflownet.training import GFlowNetTrainConfig, exact_l1_to_reward

BASE_CONFIG = GFlowNetTrainConfig(
    steps=5000, batch_size=128, lr=2e-3, lr_log_z=0.1, epsilon=0.05, seed=0, eval_every=250
)
# the expected (DP) losses of the enumerable grid: ≈ 1 min per classifier on one CPU core and a lower
# final L1 than 10 000 sampled steps of 256 trajectories per base (≈ 17 min); batch_per_base is unused
CLASSIFIER_CONFIG = ClassifierTrainConfig(
    steps=1500,
    batch_per_base=256,
    lr=3e-3,
    ema_decay=0.995,
    warmup_steps=300,
    logit_alpha_range=3.5,
    alpha_groups=4,
    lr_schedule="cosine",
    estimator="exact",
    seed=0,
)
SMOKE_BASE = GFlowNetTrainConfig(steps=20, batch_size=16, eval_every=10)
SMOKE_CLASSIFIER = ClassifierTrainConfig(steps=10, batch_per_base=8, warmup_steps=5)


def build(
    out: Path,
    base_config=BASE_CONFIG,
    classifier_config=CLASSIFIER_CONFIG,
    horizon: int = 32,
    progress: bool = True,
    base_names=tuple(GRID_BASES),
    pairs=tuple(CLASSIFIER_SETS),
):
    out.mkdir(parents=True, exist_ok=True)
    bases = {}
    for i, name in enumerate(GRID_BASES):
        if name not in base_names:
            continue
        cfg = GFlowNetTrainConfig(**{**base_config.to_dict(), "seed": base_config.seed + i})
        model, hist = train_base(name, cfg, horizon, progress, checkpoint_path=out / ".resume" / f"base_{name}.pt")
        l1 = exact_l1_to_reward(model)
        save_gflownet(
            model,
            out / f"base_{name}.pt",
            name=name,
            train_config=cfg.to_dict(),
            seed=cfg.seed,
            exact_l1_to_reward=l1,
            train_time_s=hist["train_time_s"],
            data_source="reward function (no data)",
        )
        print(f"base {name}: exact L1 to reward = {l1:.4f} ({hist['train_time_s']:.0f} s)", flush=True)
        bases[name] = model
    for pair in pairs:
        names = CLASSIFIER_SETS[pair]
        members = [bases[n] if n in bases else load_gflownet(out / f"base_{n}.pt") for n in names]
        clf = make_classifier(pair, members[0].env, classifier_config.seed)
        hist = train_classifier(
            clf,
            members,
            classifier_config,
            progress=progress,
            desc=pair,
            checkpoint_path=out / ".resume" / f"classifier_{pair}.pt",
        )
        save_classifier(
            clf,
            out / f"classifier_{pair}.pt",
            pair=pair,
            bases=list(names),
            train_config=classifier_config.to_dict(),
            seed=classifier_config.seed,
            train_time_s=hist["wall_time_s"],
            data_source="samples of the base GFlowNets",
        )
        print(f"classifier {pair}: {hist['wall_time_s']:.0f} s", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    ap.add_argument("--smoke", action="store_true", help="tiny settings (for testing the script)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest here)")
    ap.add_argument("--bases", nargs="*", default=list(GRID_BASES), choices=list(GRID_BASES))
    ap.add_argument("--pairs", nargs="*", default=list(CLASSIFIER_SETS), choices=list(CLASSIFIER_SETS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    kw = {"base_names": args.bases, "pairs": args.pairs}
    if args.smoke:
        build(args.out, SMOKE_BASE, SMOKE_CLASSIFIER, horizon=8, progress=False, **kw)
    else:
        build(args.out, **kw)


if __name__ == "__main__":
    main()
