"""Training benchmark: the training CLI on a chosen device, 1 rank against 2 ranks (torchrun, same
global batch) for the grid and molecule bases, and the grid classifier's exact estimator against
the sampled one at the same wall-clock budget. One run, side by side.

    .venv/bin/python benchmarks/training.py [--device cpu] [--quick]
    SCULPTING_DATA_DIR=... adds the molecule rows.

Prints a Markdown table (wall time, trajectories/s, final quality).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def run_cli(args, ranks, device, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = (
        [
            str(BIN / "torchrun"),
            "--nproc_per_node",
            str(ranks),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            _port(),
            "-m",
        ]
        if ranks > 1
        else [sys.executable, "-m"]
    )
    t0 = time.perf_counter()
    subprocess.run(
        launch + ["sculpting", *args, "--device", device, "--out", str(out)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    meta = json.loads((out / "model.json").read_text())
    return wall, meta, json.loads((out / "summary.json").read_text())


def classifier_rows(budget_s, quick):
    import sculpting as sc
    from sculpting.domains.grid import build
    from sculpting.domains.grid.experiments import evaluate_compositions, make_classifier, two_base_compositions
    from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier

    torch.set_num_threads(1)
    bases, _ = sc.load_pretrained("grid/shubert_sigmoid")
    rows = []
    exact_cfg = build.CLASSIFIER_CONFIG if not quick else ClassifierTrainConfig(steps=50, lr=3e-3, estimator="exact")
    for label, cfg in (
        ("exact (pinned)", exact_cfg),
        (
            "sampled, same budget",
            ClassifierTrainConfig(
                steps=10**6, batch_per_base=256, lr=1e-3, warmup_steps=2000, alpha_groups=4, lr_schedule="constant"
            ),
        ),
    ):
        clf = make_classifier("shubert_sigmoid", bases[0].env, 0)
        t0 = time.perf_counter()
        stop = {}

        def cb(step, c):
            if time.perf_counter() - t0 > budget_s:
                raise StopIteration
            return {}

        try:
            train_classifier(
                clf, bases, cfg, progress=False, callback=cb if "budget" in label else None, callback_every=10
            )
        except StopIteration:
            stop["at"] = True
        dt = time.perf_counter() - t0
        r = evaluate_compositions(bases, two_base_compositions(), clf, oracle=False)
        worst = max(max(x["l1_anchored_learned"], x["l1_paper_learned"]) for x in r)
        rows.append((f"grid classifier (Shubert/sigmoid), {label}", "1", f"{dt:.0f}", "–", f"max L1 {worst:.3f}"))
        budget_s = dt  # the sampled run gets the exact run's wall time
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="tiny settings (checks the script)")
    args = ap.parse_args()
    q = args.quick
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        grid = [
            "grid-base",
            "--reward",
            "symmetric_shubert",
            "--temperature",
            "0.5",
            "--horizon",
            "8" if q else "32",
            "--steps",
            "20" if q else "1500",
            "--batch_size",
            "128",
            "--eval_every",
            "0",
            "--preset",
            "cpu",
        ]
        for ranks in (1, 2):
            wall, meta, s = run_cli(grid, ranks, args.device, Path(tmp) / f"g{ranks}")
            steps = int(grid[grid.index("--steps") + 1])
            rows.append(
                (
                    f"grid base (batch 128, {steps} steps)",
                    str(ranks),
                    f"{meta['train_time_s']:.0f}",
                    f"{128 * steps / meta['train_time_s']:.0f}",
                    f"exact L1 {s['exact_l1_to_reward']:.3f}",
                )
            )
        if os.environ.get("SCULPTING_DATA_DIR"):
            mol = [
                "molecule-base",
                "--objective",
                "seh",
                "--preset",
                "smoke" if q else "cpu",
                "--steps",
                "3" if q else "30",
                "--batch_size",
                "64",
            ]
            for ranks in (1, 2):
                wall, meta, s = run_cli(mol, ranks, args.device, Path(tmp) / f"m{ranks}")
                steps = int(mol[mol.index("--steps") + 1])
                rows.append(
                    (
                        f"molecule base SEH (batch 64, {steps} steps)",
                        str(ranks),
                        f"{meta['train_time_s']:.0f}",
                        f"{64 * steps / meta['train_time_s']:.1f}",
                        f"final TB loss {s['final_loss']:.2f}",
                    )
                )
    rows += classifier_rows(60.0, q)
    print(f"device {args.device}; torch {torch.__version__}; {os.cpu_count()} CPU cores; one torch thread per rank\n")
    print("| what | ranks | train s | trajectories/s | quality |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
