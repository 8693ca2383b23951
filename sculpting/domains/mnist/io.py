"""The shipped colored-MNIST models (``pretrained/``): five 16×16 score models, the time-conditioned
classifiers and the (digit, colour) judge. Regenerate with ``python -m sculpting.domains.mnist.build``."""

from __future__ import annotations

from pathlib import Path

from sculpting.diffusion.io import load_score_model, load_time_classifier
from sculpting.domains.mnist.experiments import CLASSIFIER_SETS, MNIST_BASES
from sculpting.domains.mnist.judge import load_judge

__all__ = ["PRETRAINED_DIR", "load_mnist_models"]

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def load_mnist_models(directory=None) -> dict:
    """{"bases": {name: ScoreModel}, "classifiers": {set: TimeClassifier}, "judge": DigitColourJudge};
    ``classifiers["nested"]`` is included when present."""

    d = Path(directory) if directory else PRETRAINED_DIR
    out = {
        "bases": {n: load_score_model(d / f"base_{n}.pt") for n in MNIST_BASES},
        "classifiers": {s: load_time_classifier(d / f"classifier_{s}.pt") for s in CLASSIFIER_SETS},
        "judge": load_judge(d / "judge.pt"),
    }
    if (d / "classifier_nested.pt").is_file():
        out["classifiers"]["nested"] = load_time_classifier(d / "classifier_nested.pt")
    return out
