"""Small helpers the notebooks share: output folders, figures, metrics.json, thread count."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

__all__ = ["repository_root", "prepare_out_dir", "save_figure", "write_metrics", "set_threads", "format_table"]


def set_threads(n: int = 1) -> int:
    """Set torch's intra-op threads. The small networks here run fastest with 1 thread on a
    2-core machine (measured in ``benchmarks/grid.py``)."""
    torch.set_num_threads(int(n))
    return torch.get_num_threads()


def repository_root(start: Path | None = None) -> Path | None:
    """The sculpting repository holding ``start`` (default: the working directory): the nearest
    folder upwards with ``pyproject.toml``, ``sculpting/`` and ``notebooks/``; None outside one."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "sculpting").is_dir() and (d / "notebooks").is_dir():
            return d
    return None


def prepare_out_dir(out_dir) -> Path:
    """Create ``out_dir`` and return it. A relative path is taken from the repository's root when
    the notebook runs inside the repository (JupyterLab starts notebooks in ``notebooks/``), so
    ``"figures/03_grid_sculpting"`` is the repository's ``figures/`` wherever it is started from."""
    p = Path(out_dir)
    root = None if p.is_absolute() else repository_root()
    p = root / p if root is not None else p
    p.mkdir(parents=True, exist_ok=True)
    return p


def save_figure(fig, out_dir, name: str):
    path = Path(out_dir) / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, torch.Tensor):
        return _clean(x.tolist())
    if hasattr(x, "item") and hasattr(x, "dtype") and getattr(x, "ndim", 1) == 0:  # numpy scalars
        return _clean(x.item())
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # numpy arrays
        return _clean(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_metrics(out_dir, metrics: dict) -> Path:
    path = Path(out_dir) / "metrics.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(metrics), indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def format_table(rows, columns, floatfmt: str = ".4f") -> str:
    """A Markdown table of dict rows."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"

    def cell(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    return head + "\n".join("| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows)
