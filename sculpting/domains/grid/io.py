"""The shipped grid models (``pretrained/``): five base GFlowNets and two classifiers.
Regenerate with ``python -m sculpting.domains.grid.build``."""

from __future__ import annotations

from pathlib import Path

from sculpting.infrastructure.checkpoints import CheckpointError, base_file
from sculpting.domains.grid.experiments import CLASSIFIER_SETS, GRID_BASES
from sculpting.gflownet.io import load_classifier, load_gflownet

__all__ = ["PRETRAINED_DIR", "load_grid_base", "load_grid_classifier", "load_grid_pair"]

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def load_grid_base(name: str, directory=None):
    """The named grid base (:data:`~sculpting.domains.grid.experiments.GRID_BASES`) from ``directory``
    (``name/model.pt`` or ``base_<name>.pt``; default: shipped), checked to be that base's reward
    and temperature."""

    path = base_file(directory or PRETRAINED_DIR, name)
    model = load_gflownet(path)
    if name in GRID_BASES:
        want = GRID_BASES[name]
        got = (model.env.reward_name, model.env.temperature)
        if got != want:
            raise CheckpointError(
                f"{path} holds a base of reward {got[0]!r} at T = {got[1]:g}; base {name!r} is "
                f"reward {want[0]!r} at T = {want[1]:g}"
            )
    return model


def load_grid_classifier(pair: str, directory=None):
    """The classifier of a set from ``directory`` (``<set>/model.pt`` or ``classifier_<set>.pt``)."""

    return load_classifier(base_file(directory or PRETRAINED_DIR, pair, "classifier"))


def load_grid_pair(pair: str, directory=None, base_directory=None):
    """(bases, classifier) of a named set (``shubert_sigmoid`` or ``circles``)."""

    if pair not in CLASSIFIER_SETS:
        raise ValueError(f"unknown grid pair {pair!r}; choose from {sorted(CLASSIFIER_SETS)}")
    bases = [load_grid_base(n, base_directory or directory) for n in CLASSIFIER_SETS[pair]]
    return bases, load_grid_classifier(pair, directory)
