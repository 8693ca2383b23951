"""Data-oracle benchmark: the exact time classifier of finite data sets against the learned one,
measured side by side in one run.

    .venv/bin/python benchmarks/data_oracle.py [--threads 1] [--images 5000] [--repeats 5]

Prints seconds per guidance call (log Q(y | x_t) and its gradient in x, what one sampler step
needs) for a batch of B images of 3 × 16 × 16 = 768 pixels, with ``--images`` distinct training
images in the oracle (two bases sharing a third of them), and for the shipped learned classifier's
architecture; then the seconds to draw 16 composed MNIST images (EDM, 50 steps, M1⊗M2) with each.
"""

from __future__ import annotations

import argparse
import time

import torch

from sculpting.algebra import parse_composition
from sculpting.diffusion.classifier import DiffusionQ, TimeClassifier
from sculpting.diffusion.oracle import DataOracle
from sculpting.diffusion.sde import VESDE


def per_call(q, x, t, repeats):
    def once():
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(q.log_q_y(xg, t).sum(), xg)
        return g

    once()
    t0 = time.perf_counter()
    for _ in range(repeats):
        once()
    return (time.perf_counter() - t0) / repeats


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    K = a.images
    pool = torch.rand(K, 3, 16, 16, generator=g) * 2 - 1
    third = K // 3
    oracle = DataOracle([pool[: 2 * third], pool[third:]], VESDE())
    learned = TimeClassifier((3, 16, 16), 2, 2, trunk=(32, 64), hidden=256, embed_dim=128, seed=0).eval()
    comp = parse_composition("harmonic", 2, 0.5)
    rows = []
    for B in (16, 64, 256):
        x = torch.randn(B, 3, 16, 16, generator=g)
        t = torch.rand(B, generator=g) * 0.9 + 0.05
        rows.append(
            (
                B,
                per_call(DiffusionQ(oracle, comp), x, t, a.repeats),
                per_call(DiffusionQ(learned, comp), x, t, a.repeats),
            )
        )
    print(f"guidance call (log Q and its gradient), {oracle.n_images} images × 768 pixels, {a.threads} thread(s)")
    print("| batch | data oracle (s) | learned classifier (s) | ratio |")
    print("|---|---|---|---|")
    for B, o, le in rows:
        print(f"| {B} | {o:.4f} | {le:.4f} | {o / le:.1f} |")
    try:
        import sculpting as sc
        from sculpting.domains.mnist.io import load_mnist_models
        from sculpting.domains.mnist.oracle import oracle_classifiers
    except ImportError:
        return
    models = load_mnist_models()
    oracles = oracle_classifiers(models)
    bases = [models["bases"]["M1"], models["bases"]["M2"]]
    print("\n16 composed images, M1⊗M2, EDM 50 steps")
    print("| classifier | seconds |")
    print("|---|---|")
    for name, clf in (("learned", models["classifiers"]["M1_M2"]), ("data oracle", oracles["M1_M2"])):
        t0 = time.perf_counter()
        sc.sample(sc.compose(bases, clf, "harmonic"), 16, seed=0, steps=50, sampler="edm")
        print(f"| {name} | {time.perf_counter() - t0:.2f} |")


if __name__ == "__main__":
    main()
