"""The sculpting operators drawn on two 1-D densities (the figure of ``docs/algebra.md``).

    .venv/bin/python -m sculpting.lab.concepts          # writes figures/concepts/operators.png

p1 and p2 are two Gaussian mixtures on a grid of 400 points that overlap in one mode; each panel
draws one composition, computed exactly by :meth:`sculpting.algebra.Composition.target_log_prob`,
over the two bases (dashed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from sculpting.algebra import Composition
from sculpting.lab.reporting import prepare_out_dir

__all__ = ["two_densities", "plot_operators"]

#: (composition, panel title)
PANELS = [
    (Composition.two_base("mixture", 0.5), "mixture ½p1 + ½p2"),
    (Composition.two_base("harmonic", 0.5), "harmonic mean p1 ⊗ p2 (α=0.5): what both like"),
    (Composition.two_base("contrast", 0.5), "contrast p1 ◑ p2 (α=0.5): p1 but not p2"),
    (Composition.two_base("reverse_contrast", 0.5), "reverse contrast p1 ◐ p2 (α=0.5): p2 but not p1"),
]


def two_densities(n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """(x ``[n]``, log p ``[2, n]``): p1 has modes at −2 and 0.5, p2 at 0.5 and 2.5 (normalised on the grid)."""
    x = torch.linspace(-4.0, 4.5, n, dtype=torch.float64)

    def mixture(centres):
        d = torch.stack([-0.5 * ((x - c) / 0.55) ** 2 for c in centres])
        lp = torch.logsumexp(d, 0)
        return lp - torch.logsumexp(lp, 0)

    return x, torch.stack([mixture((-2.0, 0.5)), mixture((0.5, 2.5))])


def plot_operators():
    """The figure: one panel per composition of :data:`PANELS`, the bases dashed beneath."""
    x, lp = two_densities()
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.2), sharey=True)
    for ax, (comp, title) in zip(axes, PANELS):
        ax.plot(x, lp[0].exp(), "--", color="tab:blue", lw=1, label="p1")
        ax.plot(x, lp[1].exp(), "--", color="tab:orange", lw=1, label="p2")
        ax.fill_between(x, comp.target_log_prob(lp).exp(), color="tab:green", alpha=0.45, label="composition")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x")
    axes[0].set_ylabel("probability per grid point")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description="Draw the sculpting operators (docs/algebra.md).")
    ap.add_argument("--out", default="figures/concepts", help="output folder (default: figures/concepts)")
    args = ap.parse_args(argv)
    path = prepare_out_dir(args.out) / "operators.png"
    fig = plot_operators()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(path)
    return path


if __name__ == "__main__":
    main()
