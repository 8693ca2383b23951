"""Regenerate the shipped fragment-molecule models (CPU preset) with pinned settings.

    .venv/bin/python -m sculpting.domains.molecules.build [--stages bases classifiers]
        [--objectives seh sa qed] [--out DIR] [--smoke]

Needs the molecule data (``SCULPTING_DATA_DIR``, see README). Stages: ``bases`` (one
β-conditional GFlowNet per objective: cpu preset 2 layers × 64, at most 9 fragments (as in the paper),
BASE_STEPS trajectory-balance steps of 64 trajectories, ≈0.9 s/step on one core, ≈12 min) and
``classifiers`` (SEH×SA α-conditioned, SEH/SA/QED exchangeable; both β-conditional over
β ~ U[0, 96], ≈ 25 and 21 min on one core) and ``successors`` (an amortised successor head per
classifier, distilled at SUCCESSOR_CONDITIONS with SUCCESSOR_CONFIG, a few minutes each; the
proposal of ``sampler="amortised"``).
Weights are stored as float16.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sculpting.domains.molecules.classifier_sets import CLASSIFIER_SETS, build_classifier_sets
from sculpting.domains.molecules.data import SOURCES
from sculpting.domains.molecules.experiments import train_molecule_base
from sculpting.domains.molecules.io import (
    PRETRAINED_DIR,
    load_graph_classifier,
    load_molecule_gflownet,
    save_molecule_gflownet,
)
from sculpting.domains.molecules.successor_head import fit_successor_head, save_successor_head

BASE_STEPS = 800


def data_source() -> dict:
    """The molecule data the models were trained with (converted files' SHA-256, as in data.SOURCES)."""

    return {k: {"url": v["url"], "converted_sha256": v["converted_sha256"]} for k, v in SOURCES.items()}


MAX_FRAGS = 9
#: (α, β) pairs each successor head is distilled at: the compositions of notebook 09 and the benchmarks
SUCCESSOR_CONDITIONS = {
    "seh_sa": [(a, b) for a in (0.05, 0.5, 0.95) for b in (16.0, 32.0)],
    "seh_sa_qed": [(None, 16.0), (None, 32.0)],
}
SUCCESSOR_CONFIG = {"n_trajectories": 64, "epochs": 30, "hidden": 64, "seed": 0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    ap.add_argument(
        "--stages",
        nargs="*",
        default=["bases", "classifiers", "successors"],
        choices=["bases", "classifiers", "successors"],
    )
    ap.add_argument("--objectives", nargs="*", default=["seh", "sa", "qed"])
    ap.add_argument("--sets", nargs="*", default=None, help="classifier sets (default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny settings (for testing the script)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    preset = "smoke" if args.smoke else "cpu"
    if "bases" in args.stages:
        for obj in args.objectives:
            steps = 3 if args.smoke else BASE_STEPS
            path = args.out / f"base_{obj}.pt"
            meta = {
                "objective": obj,
                "preset": preset,
                "seed": 0,
                "data_source": data_source(),
                "command": "python -m sculpting.domains.molecules.build --stages bases",
            }

            def snapshot(step, model, path=path, meta=meta):  # partial checkpoints while training
                save_molecule_gflownet(model, path, half=True, steps_done=step, **meta)
                return {}

            model, hist = train_molecule_base(
                obj,
                steps,
                preset=preset,
                max_frags=MAX_FRAGS,
                progress=not args.smoke,
                callback=snapshot,
                callback_every=250,
                checkpoint_path=Path(args.out) / ".resume" / f"base_{obj}.pt",
            )
            save_molecule_gflownet(
                model,
                path,
                half=True,
                train_config=hist["config"],
                steps_done=steps,
                train_time_s=hist["train_time_s"],
                loss_history=hist["loss"][::10],
                mean_log_reward_history=hist["mean_log_reward"][::10],
                **meta,
            )
            print(f"{obj}: {hist['train_time_s']:.0f} s, final loss {hist['loss'][-1]:.2f}")
    if "classifiers" in args.stages:
        build_classifier_sets(args.out, args.sets, smoke=args.smoke)
    if "successors" in args.stages:
        build_successor_heads(args.out, args.sets, smoke=args.smoke)


def build_successor_heads(out: Path, sets=None, smoke: bool = False) -> dict:
    """Distil and save ``successor_<set>.pt`` from ``classifier_<set>.pt`` in ``out``; returns the
    held-out KL reports."""

    reports = {}
    for name in sets or list(CLASSIFIER_SETS):
        clf = load_graph_classifier(Path(out) / f"classifier_{name}.pt")
        bases = [load_molecule_gflownet(Path(out) / f"base_{o}.pt") for o in CLASSIFIER_SETS[name]]
        cfg = dict(SUCCESSOR_CONFIG, **({"n_trajectories": 2, "epochs": 1} if smoke else {}))
        conditions = SUCCESSOR_CONDITIONS[name][:1] if smoke else SUCCESSOR_CONDITIONS[name]
        head, report = fit_successor_head(clf, bases, conditions, progress=not smoke, **cfg)
        save_successor_head(
            head,
            Path(out) / f"successor_{name}.pt",
            config=cfg,
            conditions=conditions,
            report=report,
            seed=cfg["seed"],
            command="python -m sculpting.domains.molecules.build --stages successors",
        )
        reports[name] = report
        print(f"successor head {name}: held-out KL per successor {report['kl_successor']}")
    return reports


if __name__ == "__main__":
    main()
