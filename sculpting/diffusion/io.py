"""Saving and loading score models, time classifiers and judges (see :mod:`sculpting.checkpoints`)."""
from __future__ import annotations

from ..checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .classifier import TimeClassifier
from .judge import DigitColourJudge
from .model import ScoreModel
from .sde import VESDE

__all__ = ["save_score_model", "load_score_model", "save_time_classifier", "load_time_classifier",
           "save_judge", "load_judge"]


def _load_into(module, sd, path):
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match the model it describes: {e}") from e
    module.eval()


def save_score_model(model: ScoreModel, path, half: bool = False, **meta):
    return save_checkpoint(path, "score_model", model.state_dict(),
                           {"unet": model.unet.config, "preset": model.preset,
                            "sde": {"sigma": model.sde.sigma, "eps": model.sde.eps}, **meta}, half)


def load_score_model(path) -> ScoreModel:
    sd, meta = load_checkpoint(path, "score_model")
    cfg = dict(meta["unet"])
    channels = cfg.pop("channels")
    cfg["widths"] = tuple(cfg["widths"])
    model = ScoreModel(channels, meta["preset"], VESDE(**meta["sde"]), **cfg)
    _load_into(model, sd, path)
    model.meta = meta
    return model


def save_time_classifier(clf: TimeClassifier, path, half: bool = False, **meta):
    return save_checkpoint(path, "time_classifier", clf.state_dict(), {"arch": clf.config, **meta}, half)


def load_time_classifier(path) -> TimeClassifier:
    sd, meta = load_checkpoint(path, "time_classifier")
    clf = TimeClassifier(**meta["arch"])
    _load_into(clf, sd, path)
    clf.meta = meta
    return clf


def save_judge(judge: DigitColourJudge, path, half: bool = False, **meta):
    return save_checkpoint(path, "judge", judge.state_dict(), {"arch": judge.config, **meta}, half)


def load_judge(path) -> DigitColourJudge:
    sd, meta = load_checkpoint(path, "judge")
    judge = DigitColourJudge(**meta["arch"])
    _load_into(judge, sd, path)
    judge.meta = meta
    return judge
