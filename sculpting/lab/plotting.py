"""Matplotlib figures of grid distributions (exact, so no sampling noise)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

__all__ = ["plot_grid_distribution", "plot_guided_vs_target", "plot_grid_panels"]


def _img(env, log_p):
    """``[H, W]`` image of a distribution over a 2-D grid env (ours, or torchgfn's HyperGrid through
    the adapter: its row-major state index is the same)."""
    if hasattr(env, "as_image"):
        return env.as_image(log_p.double().exp()).numpy()
    side = getattr(getattr(env, "gfn_env", None), "height", None)
    if side is None:
        raise TypeError(f"{type(env).__name__} is not a 2-D grid")
    return log_p.double().exp().reshape(side, side).numpy()


def plot_grid_distribution(ax, env, log_p: torch.Tensor, title: str = "", vmax=None):
    """Heat map of a ``[N]`` log-distribution on a 2-D grid (z_0 down, z_1 across)."""
    im = ax.imshow(_img(env, log_p), cmap="viridis", origin="lower", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("z₁", fontsize=7, labelpad=1)
    ax.set_ylabel("z₀", fontsize=7, labelpad=1)
    return im


def plot_guided_vs_target(
    env, rows, ncols_pairs: int = 3, size: float = 2.2, what: str = "guided", title: str | None = None
):
    """``rows``: list of (label, guided log p, target log p, L1). Each pair: guided | target, on one
    colour scale (probability per cell, its bar beside the target); ``what`` names the left panel
    ("guided", or e.g. "path SMC" for sampled histograms); ``title`` goes above every panel."""
    n = len(rows)
    nrows = (n + ncols_pairs - 1) // ncols_pairs
    top = 0.5 if title else 0.0  # inches kept for the figure title
    fig, axes = plt.subplots(
        nrows,
        2 * ncols_pairs,
        figsize=(2 * ncols_pairs * size * 1.08, nrows * size * 1.25 + top),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.axis("off")
    for k, (label, g, t, l1) in enumerate(rows):
        r, c = divmod(k, ncols_pairs)
        vmax = float(max(g.exp().max(), t.exp().max()))
        plot_grid_distribution(axes[r, 2 * c], env, g, f"{label}\n{what}, L1={l1:.3f}", vmax)
        im = plot_grid_distribution(axes[r, 2 * c + 1], env, t, f"{label}\ntarget", vmax)
        bar = fig.colorbar(im, ax=axes[r, 2 * c + 1], fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=6)
        bar.set_label("probability (both maps)", fontsize=6)
        axes[r, 2 * c].axis("on")
        axes[r, 2 * c + 1].axis("on")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - top / fig.get_figheight()))
    return fig


def plot_grid_panels(env, panels, ncols: int = 5, size: float = 2.2):
    """``panels``: list of (title, log p). Rows of heat maps, each on its own scale with its own
    colour bar."""
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, lp) in zip(axes.flat, panels):
        ax.axis("on")
        im = plot_grid_distribution(ax, env, lp, title)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=6)
        bar.set_label("probability", fontsize=6)
    fig.tight_layout()
    return fig


def show_image_grid(ax, images: torch.Tensor, title: str = "", nrow: int = 8):
    """An ``nrow``-wide grid of ``[N, C, S, S]`` images in [0, 1] (clamped) on ``ax``."""
    from torchvision.utils import make_grid

    grid = make_grid(images[: nrow * nrow].clamp(0, 1), nrow=nrow, padding=1, pad_value=0.3)
    ax.imshow(
        grid.permute(1, 2, 0).numpy() if grid.shape[0] == 3 else grid[0].numpy(), cmap="gray", interpolation="nearest"
    )
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def plot_image_grids(panels, ncols: int = 3, size: float = 3.0):
    """``panels``: list of (title, images). One 8×8 grid per panel."""
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.08), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, imgs) in zip(axes.flat, panels):
        show_image_grid(ax, imgs, title)
    fig.tight_layout()
    return fig
