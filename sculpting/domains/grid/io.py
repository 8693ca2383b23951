"""The shipped grid models (``pretrained/``): five base GFlowNets and two classifiers.
Regenerate with ``python -m sculpting.domains.grid.build``."""
from __future__ import annotations

from pathlib import Path

from sculpting.gflownet.io import load_classifier, load_gflownet

__all__ = ["PRETRAINED_DIR", "load_grid_base", "load_grid_classifier", "load_grid_pair"]

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def load_grid_base(name: str, directory=None):
    return load_gflownet(Path(directory or PRETRAINED_DIR) / f"base_{name}.pt")


def load_grid_classifier(pair: str, directory=None):
    return load_classifier(Path(directory or PRETRAINED_DIR) / f"classifier_{pair}.pt")


def load_grid_pair(pair: str, directory=None, base_directory=None):
    """(bases, classifier) of a named set (``shubert_sigmoid`` or ``circles``)."""
    from sculpting.domains.grid.experiments import CLASSIFIER_SETS
    if pair not in CLASSIFIER_SETS:
        raise ValueError(f"unknown grid pair {pair!r}; choose from {sorted(CLASSIFIER_SETS)}")
    bases = [load_grid_base(n, base_directory or directory) for n in CLASSIFIER_SETS[pair]]
    return bases, load_grid_classifier(pair, directory)
