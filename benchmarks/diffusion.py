"""Diffusion benchmark, measured in one run on this machine (issue: colored-MNIST domain).

    .venv/bin/python benchmarks/diffusion.py [--threads 1] [--sample-steps 300] [--device cuda]

Prints: DSM training steps per second at batch 64 for the CPU preset (16×16, 0.29 M params) and
the paper preset (28×28, widths 64/128/256/256), and the wall time to draw 64 images with the
PC sampler for a base model and for a two-base composition (shipped models when present,
otherwise freshly initialised networks of the same size — the cost does not depend on weights).
"""
from __future__ import annotations

import argparse
import time

import torch

from sculpting.algebra import Composition
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.model import ScoreModel
from sculpting.diffusion.sampler import pc_sample


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_steps_per_s(model, n_steps, batch=64):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, *model.image_shape, device=model.device)
    for i in range(n_steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss = model.dsm_loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(model.device)
    return n_steps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sample-steps", type=int, default=300)
    ap.add_argument("--device", default="cpu", help="where the models run (cpu, cuda, ...)")
    args = ap.parse_args()
    dev = args.device
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {dev}\n")
    print("| what | preset | value |\n|---|---|---|")
    for preset, n in (("cpu", 40), ("paper", 6)):
        m = ScoreModel(3, preset).to(dev)
        sps = train_steps_per_s(m, n)
        params = sum(p.numel() for p in m.parameters() if p.requires_grad)
        print(f"| training steps/s (batch 64, {params / 1e6:.2f} M params), {dev} | {preset} | {sps:.2f} |", flush=True)
    try:
        from sculpting.domains.mnist.io import load_mnist_models
        models = load_mnist_models()
        bases, clf, src = [models["bases"]["M1"], models["bases"]["M2"]], models["classifiers"]["M1_M2"], "shipped"
    except Exception:
        bases = [ScoreModel(3, "cpu"), ScoreModel(3, "cpu")]
        clf, src = TimeClassifier((3, 16, 16), 2, 2, hidden=128), "untrained"
    bases, clf = [b.to(dev) for b in bases], clf.to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    t0 = time.perf_counter()
    pc_sample(bases[0], 64, args.sample_steps, generator=gen)
    _sync(dev)
    t_base = time.perf_counter() - t0
    comp = ComposedScore(bases, clf, Composition.two_base("harmonic"), gamma=1.0)
    t0 = time.perf_counter()
    pc_sample(comp, 64, args.sample_steps, generator=gen)
    _sync(dev)
    t_comp = time.perf_counter() - t0
    print(f"| 64 images, {args.sample_steps} PC steps, base ({src}), {dev} | cpu | {t_base:.1f} s |")
    print(f"| 64 images, {args.sample_steps} PC steps, M1⊗M2 composition ({src}), {dev} | cpu | {t_comp:.1f} s |")


if __name__ == "__main__":
    main()
