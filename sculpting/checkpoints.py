"""Checkpoints: weights + metadata, written atomically, loaded with ``weights_only=True``.

A checkpoint ``name.pt`` holds ``{"format", "kind", "meta", "state_dict"}``; the same metadata
(config, data source, versions, seed, ...) is written beside it as ``name.json`` for humans.
Writes go to a temporary file that is then renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_into", "atomic_write", "environment_versions",
           "LOADERS", "register_loader", "load"]

#: checkpoint kind -> ``loader(path)`` rebuilding the model (registered by the modules that save the kind)
LOADERS: dict = {}


def register_loader(kind: str, loader) -> None:
    """Make :func:`load` dispatch checkpoints of ``kind`` to ``loader(path)``."""
    LOADERS[kind] = loader

FORMAT = "sculpting-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or not what the caller expects."""


def environment_versions() -> dict:
    import numpy
    import sculpting
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "sculpting": sculpting.__version__}


def atomic_write(path: Path, write):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path, kind: str, state_dict: dict, meta: dict, half: bool = False) -> Path:
    """Save ``state_dict`` (tensors) with JSON-able ``meta`` to ``path`` (+ ``.json`` beside it).

    ``half=True`` stores floating-point tensors as float16 (shipped models: half the size;
    ``load_state_dict`` casts them back to the model's float32 parameters).
    """
    path = Path(path)
    if half:
        state_dict = {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
        meta = {**meta, "stored_as": "float16"}
    meta = {**meta, "kind": kind, "versions": environment_versions()}
    json.dumps(meta)  # fail early on metadata that is not plain data
    payload = {"format": FORMAT, "kind": kind, "meta_json": json.dumps(meta),
               "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()}}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    atomic_write(path.with_suffix(".json"),
                  lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True)))
    return path


def load_checkpoint(path, kind: str | None) -> tuple[dict, dict]:
    """Return ``(state_dict, meta)``; raise :class:`CheckpointError` on any problem (``kind=None``
    accepts any kind; ``meta["kind"]`` says which)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, unsafe content, ...
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a sculpting checkpoint (format {FORMAT})")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {payload.get('kind')!r}, expected a {kind!r}")
    try:
        meta = json.loads(payload["meta_json"])
    except Exception as e:
        raise CheckpointError(f"{path} has unreadable metadata: {e}") from e
    return payload["state_dict"], meta


def load_into(module, state_dict: dict, meta: dict, path):
    """Load ``state_dict`` into ``module`` (float16-stored tensors cast back to the parameters'
    dtype), attach ``meta``, switch to eval mode; a mismatch is a :class:`CheckpointError`."""
    own = module.state_dict()
    sd = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state_dict.items()}
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match the model it describes: {e}") from e
    module.meta = meta
    return module.eval()


def load(path):
    """Any registered kind of checkpoint, rebuilt by its loader (see :data:`LOADERS`)."""
    _, meta = load_checkpoint(path, None)
    kind = meta.get("kind")
    if kind not in LOADERS:
        raise CheckpointError(f"{path}: no loader registered for checkpoint kind {kind!r} (known: {sorted(LOADERS)}); "
                              "import the module that defines it")
    return LOADERS[kind](path)
