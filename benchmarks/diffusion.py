"""Diffusion benchmark, measured in one run on this machine (issue: colored-MNIST domain).

    .venv/bin/python benchmarks/diffusion.py [--threads 1] [--sample-steps 300] [--edm-steps 50]
        [--judge-n 256] [--device cuda]

Prints: DSM training steps per second at batch 64 for the CPU preset (16×16, 0.29 M params), the
shipped bases' U-Net (the CPU preset with two blocks per level, 0.57 M) and the paper preset (28×28, widths
64/128/256/256), and the wall time to draw 64 images with the
PC sampler for a base model and for a two-base composition (shipped models when present,
otherwise freshly initialised networks of the same size — the cost does not depend on weights).
With the shipped models, a sampler comparison: seconds for 16 composed images (the panel's batch)
with PC and with the EDM sampler, and the judged support of ``--judge-n`` images of each, for
compositions at γ = 1 and sharpened, the nested one included.
"""

from __future__ import annotations

import argparse
import time

import torch

from sculpting.algebra import Composition
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.model import ScoreModel
from sculpting.diffusion.samplers import pc_sample


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
    ap.add_argument("--edm-steps", type=int, default=50, help="steps of the EDM sampler in the comparison")
    ap.add_argument("--judge-n", type=int, default=256, help="images judged per sampler (0: skip the comparison)")
    args = ap.parse_args()
    dev = args.device
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {dev}\n")
    print("| what | preset | value |\n|---|---|---|")
    from sculpting.domains.mnist.build import BASE_ARCH

    for preset, n, arch in (("cpu", 40, {}), ("cpu", 40, BASE_ARCH), ("paper", 6, {})):
        m = ScoreModel(3, preset, **arch).to(dev)
        sps = train_steps_per_s(m, n)
        params = sum(p.numel() for p in m.parameters() if p.requires_grad)
        label = preset + (" + " + ", ".join(f"{k}={v}" for k, v in arch.items()) + " (shipped)" if arch else "")
        print(f"| training steps/s (batch 64, {params / 1e6:.2f} M params), {dev} | {label} | {sps:.2f} |", flush=True)
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
    if src == "shipped" and args.judge_n > 0:
        compare_samplers(models, args, dev)


def compare_samplers(models, args, dev):
    """Seconds for 16 composed images (the panel's batch) with the EDM sampler and with PC, and the
    judged support of ``--judge-n`` images of each (binomial standard error)."""
    from sculpting.compose import compose
    from sculpting.diffusion.samplers import edm_sample
    from sculpting.domains.mnist.experiments import CLASSIFIER_SETS, COMPOSITIONS, NESTED, judge_samples

    print(
        f"\n| composition | γ | 16 images, PC {args.sample_steps} steps ({2 * args.sample_steps} calls) "
        f"| 16 images, EDM {args.edm_steps} steps ({2 * args.edm_steps - 1} calls) "
        f"| support, PC (n = {args.judge_n}) | support, EDM (n = {args.judge_n}) |\n|---|---|---|---|---|---|"
    )
    B, C = models["bases"], models["classifiers"]
    cases = [("M1⊗M2", 1.0), ("M1◑M2", 20.0), ("MN y=123", 1.0), (NESTED["name"], 20.0)]
    for name, gamma in cases:
        if name == NESTED["name"]:
            mn = [B[n].to(dev) for n in CLASSIFIER_SETS["MN"]]
            inner = compose(mn, C["MN"].to(dev), NESTED["inner"])
            model, support = (
                compose([inner, B["MN3"].to(dev)], C["nested"].to(dev), "contrast", gamma=gamma),
                NESTED["support"],
            )
        else:
            set_name, op, support = COMPOSITIONS[name]
            bases = [B[n].to(dev) for n in CLASSIFIER_SETS[set_name]]
            model = compose(bases, C[set_name].to(dev), op, gamma=gamma)
        row = []
        for fn in (
            lambda n, g: pc_sample(model, n, args.sample_steps, generator=g),
            lambda n, g: edm_sample(model, n, args.edm_steps, generator=g),
        ):
            g = torch.Generator(device=dev).manual_seed(1)
            t0 = time.perf_counter()
            fn(16, g)
            _sync(dev)
            row.append(f"{time.perf_counter() - t0:.1f} s")
        for fn in (
            lambda n, g: pc_sample(model, n, args.sample_steps, generator=g),
            lambda n, g: edm_sample(model, n, args.edm_steps, generator=g),
        ):
            x = fn(args.judge_n, torch.Generator(device=dev).manual_seed(2))
            v = judge_samples(models["judge"], x.cpu(), support)
            row.append(f"{v['support_rate']:.1%} ± {v['support_se']:.1%}")
        print(f"| {name} | {gamma:g} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
