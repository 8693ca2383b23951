"""Small pretrained models shipped with the package.

Grid domain (``pretrained/grid/``): five base GFlowNets (``shubert``, ``sigmoid``, ``circle1``,
``circle2``, ``circle3``) and two classifiers (``shubert_sigmoid``: α-conditioned two-base;
``circles``: exchangeable three-base). Regenerate them, with the settings pinned in
:mod:`sculpting.pretrained.build_grid`, by::

    .venv/bin/python -m sculpting.pretrained.build_grid
"""
from __future__ import annotations

from pathlib import Path

from ..gflownet.io import load_classifier, load_gflownet

__all__ = ["PRETRAINED_DIR", "load_grid_base", "load_grid_classifier", "load_grid_pair", "load_mnist_models",
           "load_molecule_models"]

PRETRAINED_DIR = Path(__file__).resolve().parent


def load_grid_base(name: str, directory=None):
    d = Path(directory) if directory else PRETRAINED_DIR / "grid"
    return load_gflownet(d / f"base_{name}.pt")


def load_grid_classifier(pair: str, directory=None):
    d = Path(directory) if directory else PRETRAINED_DIR / "grid"
    return load_classifier(d / f"classifier_{pair}.pt")


def load_grid_pair(pair: str, directory=None, base_directory=None):
    """(bases, classifier) of a named pair (``shubert_sigmoid`` or ``circles``)."""
    from ..grid_experiments import GRID_PAIRS
    if pair not in GRID_PAIRS:
        raise ValueError(f"unknown grid pair {pair!r}; choose from {sorted(GRID_PAIRS)}")
    bases = [load_grid_base(n, base_directory or directory) for n in GRID_PAIRS[pair]]
    return bases, load_grid_classifier(pair, directory)


def load_mnist_models(directory=None) -> dict:
    """The colored-MNIST models: {"bases": {name: ScoreModel}, "classifiers": {set: TimeClassifier},
    "judge": DigitColourJudge}; ``classifier_nested`` is included when present."""
    from ..diffusion.experiments import CLASSIFIER_SETS, MNIST_BASES
    from ..diffusion.io import load_judge, load_score_model, load_time_classifier
    d = Path(directory) if directory else PRETRAINED_DIR / "mnist"
    out = {"bases": {n: load_score_model(d / f"base_{n}.pt") for n in MNIST_BASES},
           "classifiers": {s: load_time_classifier(d / f"classifier_{s}.pt") for s in CLASSIFIER_SETS},
           "judge": load_judge(d / "judge.pt")}
    if (d / "classifier_nested.pt").is_file():
        out["classifiers"]["nested"] = load_time_classifier(d / "classifier_nested.pt")
    return out


def load_molecule_models(directory=None, objectives=("seh", "sa", "qed")) -> dict:
    """The fragment-molecule models: {"bases": {objective: MoleculeGFlowNet},
    "classifiers": {set: graph SculptingClassifier}} (classifiers present in the folder).
    Regenerate with ``python -m sculpting.pretrained.build_molecules`` (needs the molecule data)."""
    from ..molecules.classifier_sets import CLASSIFIER_SETS
    from ..molecules.io import load_graph_classifier, load_molecule_gflownet
    d = Path(directory) if directory else PRETRAINED_DIR / "molecules"
    out = {"bases": {o: load_molecule_gflownet(d / f"base_{o}.pt") for o in objectives}, "classifiers": {}}
    for name in CLASSIFIER_SETS:
        if (d / f"classifier_{name}.pt").is_file():
            out["classifiers"][name] = load_graph_classifier(d / f"classifier_{name}.pt")
    return out
