"""Saving and loading score models, time classifiers and judges (see :mod:`sculpting.infrastructure.checkpoints`)."""

from __future__ import annotations

from sculpting.infrastructure.checkpoints import (
    CheckpointError,
    fingerprint_meta,
    load_checkpoint,
    rebuild,
    register_loader,
    save_checkpoint,
)
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.model import ScoreModel
from sculpting.diffusion.sde import sde_from_config

__all__ = ["save_score_model", "load_score_model", "save_time_classifier", "load_time_classifier"]


def save_score_model(model: ScoreModel, path, half: bool = False, **meta):
    return save_checkpoint(
        path,
        "score_model",
        model.state_dict(),
        {"unet": model.unet.config, "preset": model.preset, "sde": model.sde.config, **meta},
        half,
    )


def load_score_model(path) -> ScoreModel:
    sd, meta = load_checkpoint(path, "score_model")
    try:
        cfg = dict(meta["unet"])
        channels = cfg.pop("channels")
        cfg["widths"] = tuple(cfg["widths"])
        sde = sde_from_config(meta["sde"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable score-model metadata ({type(e).__name__}: {e})") from e
    return rebuild(lambda: ScoreModel(channels, meta["preset"], sde, **cfg), sd, meta, path)


def save_time_classifier(clf: TimeClassifier, path, half: bool = False, **meta):
    return save_checkpoint(
        path, "time_classifier", clf.state_dict(), {"arch": clf.config, **fingerprint_meta(clf), **meta}, half
    )


def load_time_classifier(path) -> TimeClassifier:
    sd, meta = load_checkpoint(path, "time_classifier")
    return rebuild(lambda: TimeClassifier(**meta["arch"]), sd, meta, path)


register_loader("score_model", load_score_model)
register_loader("time_classifier", load_time_classifier)
