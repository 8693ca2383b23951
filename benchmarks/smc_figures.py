"""Figures of the SMC benchmark (one per family), from the JSON files ``benchmarks/smc.py`` wrote:

    .venv/bin/python benchmarks/smc_figures.py [--out figures/smc]

* ``grid.png``: L1 of the pooled SMC histogram to the terminal-defined target against the particles
  N, per composition, beside its i.i.d. noise floor and the guided policy's exact L1 (one panel per
  classifier: shipped, noisy non-terminal head);
* ``molecules.png``: mean ESS / N and the chi-square p-value against N (SEH⊗SA, y=123);
* ``mnist.png``: TV to the exact type masses per composition, guided vs SMC, learned and oracle
  classifier, mean ± s.e. over the seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def _load(name):
    p = HERE / name
    return json.loads(p.read_text()) if p.is_file() else None


def grid_figure(data, out):
    tables = {k: v for k, v in data.items() if k.startswith("grid noise=")}
    fig, axes = plt.subplots(1, len(tables), figsize=(6.5 * len(tables), 4.5), squeeze=False)
    for ax, (name, rows) in zip(axes[0], sorted(tables.items())):
        ns = sorted(int(k[2:]) for k in rows[0] if k.startswith("N="))
        for r in rows:
            (line,) = ax.plot(ns, [r[f"N={n}"] / r["floor"] for n in ns], marker="o", lw=1, alpha=0.8)
            ax.scatter([ns[-1] * 1.6], [r["guided"] / r["floor"]], marker="x", color=line.get_color())
        ax.axhline(1.0, color="k", lw=0.8, ls="--", label="i.i.d. noise floor")
        ax.axhline(2.0, color="r", lw=0.8, ls=":", label="2 × floor")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("particles N (×: the guided policy's exact law)")
        ax.set_ylabel("L1 to the terminal-defined target / noise floor")
        noise = name.split("=")[1]
        ax.set_title("shipped classifiers" if float(noise) == 0 else f"non-terminal head + N(0, {noise}²) noise")
        ax.legend(fontsize=8)
    fig.suptitle("Grid: SMC histogram vs exact target (every composition of notebook 03)")
    fig.tight_layout()
    fig.savefig(out / "grid.png", dpi=120)


def molecules_figure(data, out):
    sweep = data.get("molecules_sweep", {})
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for label in ("SEH⊗SA", "y=123"):
        pts = sorted((int(k.split("N=")[1]), v) for k, v in sweep.items() if k.startswith(label + " "))
        if not pts:
            continue
        ns = [n for n, _ in pts]
        a.plot(ns, [v["ess_fraction"] for _, v in pts], marker="o", label=label)
        b.plot(ns, [v["chi2_p"] for _, v in pts], marker="o", label=label)
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("particles N")
        ax.legend()
    a.set_ylabel("mean ESS / N")
    b.axhline(0.05, color="r", ls=":", lw=0.8)
    b.set_ylabel("χ² p vs the importance-weighted target")
    fig.suptitle("Molecules (β = 32, amortised proposal, head twist)")
    fig.tight_layout()
    fig.savefig(out / "molecules.png", dpi=120)


def mnist_figure(data, out):
    cells = data["mnist"]["cells"]
    keys = ["learned guided", "learned smc", "oracle guided", "oracle smc"]
    fig, ax = plt.subplots(figsize=(11, 4))
    w = 0.2
    for j, k in enumerate(keys):
        means = [statistics.fmean(c[k]) for c in cells]
        ses = [statistics.stdev(c[k]) / math.sqrt(len(c[k])) if len(c[k]) > 1 else 0 for c in cells]
        ax.bar([i + (j - 1.5) * w for i in range(len(cells))], means, w, yerr=ses, label=k, capsize=2)
    ax.set_xticks(range(len(cells)), [c["composition"] for c in cells])
    ax.set_ylabel("TV to the exact type masses (γ = 1)")
    ax.set_title(
        f"MNIST: guided (EDM 50) vs SMC (N = {data['mnist']['particles']}, {data['mnist']['steps_smc']} steps)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "mnist.png", dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(HERE.parent / "figures" / "smc"))
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for name, fn in (
        ("smc_grid.json", grid_figure),
        ("smc_molecules_sweep.json", molecules_figure),
        ("smc_mnist.json", mnist_figure),
    ):
        data = _load(name)
        if data is not None:
            fn(data, out)
            print("wrote", out, fn.__name__)


if __name__ == "__main__":
    main()
