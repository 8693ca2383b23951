"""Saving and loading base GFlowNets and sculpting classifiers (see :mod:`sculpting.checkpoints`)."""
from __future__ import annotations

from ..checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from ..envs.grid import GridEnv
from .classifier import SculptingClassifier
from .policy import GFlowNet

__all__ = ["save_gflownet", "load_gflownet", "save_classifier", "load_classifier", "make_env"]

ENVS = {"grid": GridEnv}


def _env_meta(env) -> dict:
    return {"kind": env.space["kind"], **env.config}


def make_env(meta: dict):
    meta = dict(meta)
    kind = meta.pop("kind", None)
    if kind not in ENVS:
        raise CheckpointError(f"unknown environment kind {kind!r} in checkpoint")
    return ENVS[kind](**meta)


def _load_into(module, state_dict, path):
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match the model it describes: {e}") from e


def save_gflownet(model: GFlowNet, path, **meta):
    """``meta``: e.g. train config, seed, final exact L1 (JSON-able)."""
    return save_checkpoint(path, "gflownet", model.state_dict(),
                           {"env": _env_meta(model.env), "arch": model.arch, **meta})


def load_gflownet(path) -> GFlowNet:
    sd, meta = load_checkpoint(path, "gflownet")
    model = GFlowNet(make_env(meta["env"]), **meta["arch"])
    _load_into(model, sd, path)
    model.meta = meta
    return model.eval()


def save_classifier(classifier: SculptingClassifier, path, **meta):
    return save_checkpoint(path, "classifier", classifier.state_dict(),
                           {"env": _env_meta(classifier.env), "arch": classifier.arch, **meta})


def load_classifier(path) -> SculptingClassifier:
    sd, meta = load_checkpoint(path, "classifier")
    clf = SculptingClassifier(make_env(meta["env"]), **meta["arch"])
    _load_into(clf, sd, path)
    clf.meta = meta
    return clf.eval()
