"""Figures of molecule sample sets: property scatter with density contours, EMD embedding,
drawn molecules with their rewards."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_property_scatter", "plot_emd_embedding", "draw_molecules"]

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


def _contours(ax, x, y, color, levels=(0.5, 0.8)):
    """Highest-density contours (levels = probability mass inside) of a Gaussian KDE."""
    from scipy.stats import gaussian_kde

    if len(x) < 5 or np.std(x) == 0 or np.std(y) == 0:
        return
    kde = gaussian_kde(np.vstack([x, y]))
    gx, gy = np.meshgrid(np.linspace(0, 1, 80), np.linspace(0, 1, 80))
    z = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    zs = np.sort(z.ravel())[::-1]
    cum = np.cumsum(zs) / zs.sum()
    lv = sorted({float(zs[min(np.searchsorted(cum, p), len(zs) - 1)]) for p in levels})
    if len(lv) >= 1:
        ax.contour(gx, gy, z, levels=lv, colors=[color], linewidths=1.2)


def plot_property_scatter(
    sets: dict, x: str = "seh", y: str = "sa", thresholds=(0.5, 0.6), ax=None, title: str = "", max_points: int = 400
):
    """Scatter of ``sets`` {label: {reward name: array}} in (x, y) with density contours."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.2))
    for k, (label, r) in enumerate(sets.items()):
        c = COLORS[k % len(COLORS)]
        xs, ys = np.asarray(r[x]), np.asarray(r[y])
        ax.scatter(xs[:max_points], ys[:max_points], s=5, alpha=0.35, color=c, label=label)
        _contours(ax, xs, ys, c)
    if thresholds:
        ax.axvline(thresholds[0], color="grey", lw=0.8, ls="--")
        ax.axhline(thresholds[1], color="grey", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(x.upper())
    ax.set_ylabel(y.upper())
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, markerscale=3, loc="lower left")
    return ax


def plot_emd_embedding(names, coords, d=None, ax=None, title: str = "EMD embedding (classical MDS)"):
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.scatter(coords[:, 0], coords[:, 1], s=40, color=[COLORS[i % len(COLORS)] for i in range(len(names))])
    for (px, py), n in zip(coords, names):
        ax.annotate(n, (px, py), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def draw_molecules(mols, rewards: dict | None = None, n: int = 12, per_row: int = 6, size: int = 180):
    """An RDKit grid image of the first ``n`` molecules, legends = rewards (PIL image)."""
    from rdkit.Chem import Draw

    mols = list(mols)[:n]
    legends = None
    if rewards:
        legends = [" ".join(f"{k} {float(v[i]):.2f}" for k, v in rewards.items()) for i in range(len(mols))]
    return Draw.MolsToGridImage(mols, molsPerRow=per_row, subImgSize=(size, size), legends=legends)
