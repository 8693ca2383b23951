"""Saving and loading base GFlowNets and sculpting classifiers (see :mod:`sculpting.infrastructure.checkpoints`)."""

from __future__ import annotations

from sculpting.infrastructure.checkpoints import (
    CheckpointError,
    fingerprint_meta,
    load_checkpoint,
    rebuild,
    register_loader,
    save_checkpoint,
)
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.gflownet.policy import GFlowNet

__all__ = ["save_gflownet", "load_gflownet", "save_classifier", "load_classifier", "make_env", "register_env"]

from sculpting.gflownet.env_kinds import ENVS, discover_kinds, register_env  # noqa: E402  (ENVS, register_env re-exported)


def _env_meta(env) -> dict:
    return {"kind": env.space["kind"], **env.config}


def make_env(meta: dict, path=None):
    meta = dict(meta)
    kind = meta.pop("kind", None)
    if kind == "torchgfn" and kind not in ENVS:  # the torchgfn adapter registers it (optional extra)
        try:
            import sculpting.adapters.torchgfn  # noqa: F401
        except ImportError as e:
            raise CheckpointError(f"{path}: its environment is a torchgfn one; install torchgfn ({e})") from e
    if kind not in ENVS:  # the registered domains declare their environment kinds: find them
        discover_kinds()
    if kind not in ENVS:
        raise CheckpointError(
            f"unknown environment kind {kind!r} in checkpoint; known: {sorted(ENVS)} "
            "(register the domain that defines it: sc.register_domain(sc.Domain(name, "
            "env_kinds={kind: EnvClass})))"
        )
    try:
        return ENVS[kind](**meta)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path or 'checkpoint'}: cannot rebuild its {kind} environment: {e}") from e


def _save(kind: str, module, path, meta: dict):
    return save_checkpoint(
        path,
        kind,
        module.state_dict(),
        {"env": _env_meta(module.env), "arch": module.arch, **fingerprint_meta(module), **meta},
    )


def _load(kind: str, cls, path):
    sd, meta = load_checkpoint(path, kind)
    if not isinstance(meta.get("env"), dict) or not isinstance(meta.get("arch"), dict):
        raise CheckpointError(f"{path}: metadata lacks its 'env' or 'arch' mapping")
    env = make_env(meta["env"], path)
    return rebuild(lambda: cls(env, **meta["arch"]), sd, meta, path)


def save_gflownet(model: GFlowNet, path, **meta):
    """``meta``: e.g. train config, seed, final exact L1 (JSON-able)."""
    return _save("gflownet", model, path, meta)


def load_gflownet(path) -> GFlowNet:
    return _load("gflownet", GFlowNet, path)


def save_classifier(classifier: SculptingClassifier, path, **meta):
    return _save("classifier", classifier, path, meta)


def load_classifier(path) -> SculptingClassifier:
    return _load("classifier", SculptingClassifier, path)


register_loader("gflownet", load_gflownet)
register_loader("classifier", load_classifier)
