"""Checkpoints: weights + metadata, written atomically, loaded with ``weights_only=True``.

A checkpoint ``name.pt`` is the single source of truth: ``{"format", "kind", "meta_json",
"state_dict", "sha256"}``, the SHA-256 covering the metadata and every tensor (name, dtype, shape,
bytes) and verified at load. ``name.json`` beside it is a copy of the metadata for humans, derived
from the ``.pt`` and never read back. Writes go to a temporary file that is renamed into place
(mode from the umask), so a crash never leaves half a file; stale temporary files of the same
target are removed by the next write.

Loading (:func:`rebuild`) builds the model its metadata describes on the ``meta`` device first
(nothing allocated) and compares every parameter's shape with the file before building it for
real, so metadata that does not match the weights (or asks for a huge network) is an error, not
an allocation. Every failure is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from sculpting.version import __version__ as _version

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "load_into",
    "atomic_write",
    "environment_versions",
    "LOADERS",
    "register_loader",
    "SAVERS",
    "register_saver",
    "load",
    "rebuild",
    "state_digest",
]

#: checkpoint kind -> ``loader(path)`` rebuilding the model (registered by the modules that save the kind)
LOADERS: dict = {}


#: model class -> ``saver(model, path, **meta)`` (registered by the modules defining models that ``sc.save``
#: stores beyond the package's own, e.g. the adapters)
SAVERS: dict = {}


def register_saver(cls, saver) -> None:
    """Make ``sc.save`` store instances of ``cls`` with ``saver(model, path, **meta)``."""
    SAVERS[cls] = saver


def register_loader(kind: str, loader) -> None:
    """Make :func:`load` dispatch checkpoints of ``kind`` to ``loader(path)``."""
    LOADERS[kind] = loader


FORMAT_PREFIX = "sculpting-checkpoint-v"
FORMAT_VERSION = 2
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or not what the caller expects."""


def environment_versions() -> dict:
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "sculpting": _version,
    }


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def atomic_write(path: Path, write, stale_after_s: float = 60.0):
    """``write(tmp_path)`` then rename onto ``path`` (file mode 0666 & ~umask). Temporary files of
    the same target older than ``stale_after_s`` (left by a killed writer) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - old.stat().st_mtime > stale_after_s:
                old.unlink()
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, (OSError, RuntimeError)) and _disk_nearly_full(path.parent):
            raise OSError(
                errno.ENOSPC,
                f"writing {path} failed: the disk holding {path.parent} is full "
                f"({type(e).__name__}: {e}); free some space and run again (any earlier {path.name} "
                "is untouched)",
            ) from e
        raise


def _disk_nearly_full(folder, margin: int = 64 * 2**20) -> bool:
    """Whether ``folder``'s file system has less than ``margin`` bytes free (a failed write's likely cause)."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def written_by_sculpting(path) -> bool:
    """Whether the file at ``path`` is one :func:`save_checkpoint` wrote: a checkpoint whose format
    tag is this package's, or a metadata sidecar (a JSON object with this package's ``kind`` and
    ``versions.sculpting`` entries). Anything else is the user's file."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        return (
            isinstance(meta, dict)
            and isinstance(meta.get("kind"), str)
            and isinstance(meta.get("versions"), dict)
            and "sculpting" in meta["versions"]
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # the tag, not the tensors
    except Exception:  # noqa: BLE001 (not a torch file, unsafe content, ...: not ours)
        return False
    fmt = payload.get("format") if isinstance(payload, dict) else None
    return isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX)


#: set by ``sc.save(..., overwrite=True)`` for the one save it makes (:func:`replacing`)
_REPLACING: contextvars.ContextVar = contextvars.ContextVar("sculpting_replacing", default=False)


@contextlib.contextmanager
def replacing(overwrite: bool):
    """Within the block, :func:`save_checkpoint` may replace files it did not write (``overwrite``)."""
    token = _REPLACING.set(bool(overwrite))
    try:
        yield
    finally:
        _REPLACING.reset(token)


def check_destination(path, overwrite: bool = False) -> Path:
    """The checkpoint path ``path`` as a :class:`Path`, after refusing what :func:`save_checkpoint`
    must not do: a folder or an empty path, a ``.json`` path (its sidecar would be the checkpoint
    itself), and — unless ``overwrite`` — replacing a checkpoint or a sidecar it did not write."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a checkpoint path is a str or a Path, got {type(path).__name__}")
    if str(path) in ("", ".", "..") or str(path).endswith(os.sep):
        raise ValueError(f"a checkpoint path names a file, e.g. 'model.pt'; got {str(path)!r}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; a checkpoint path names a file in it, e.g. {path / 'model.pt'}")
    if path.suffix == ".json":
        raise ValueError(
            f"{path}: a checkpoint's metadata is written beside it as <name>.json, so the checkpoint "
            f"itself cannot end in .json; use {path.with_suffix('.pt')}"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    if not overwrite:
        for target in (path, path.with_suffix(".json")):
            if target.exists() and not written_by_sculpting(target):
                raise FileExistsError(
                    f"{target} exists and was not written by sculpting; saving would replace it. "
                    "Choose another path, or pass overwrite=True to replace it"
                )
    return path


def save_checkpoint(path, kind: str, state_dict: dict, meta: dict, half: bool = False, overwrite: bool = False) -> Path:
    """Save ``state_dict`` (tensors) with JSON-able ``meta`` to ``path`` (+ ``.json`` beside it),
    the two files and nothing else; ``path`` is checked first (:func:`check_destination`: a file
    path not ending in ``.json``; a file there or its sidecar is replaced only where this package
    wrote it, or with ``overwrite=True``).

    ``half=True`` stores floating-point tensors as float16 (shipped models: half the size;
    ``load_state_dict`` casts them back to the model's float32 parameters).
    """
    path = check_destination(path, overwrite or _REPLACING.get())
    if half:
        state_dict = {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
        meta = {**meta, "stored_as": "float16"}
    meta = {**meta, "kind": kind, "versions": environment_versions()}
    meta_json = json.dumps(meta)  # fails early on metadata that is not plain data
    sd = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    payload = {
        "format": FORMAT,
        "kind": kind,
        "meta_json": meta_json,
        "state_dict": sd,
        "sha256": state_digest(sd, meta_json),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    atomic_write(
        path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True))
    )
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
    _check_format(payload, path)
    sd = payload.get("state_dict")
    if (
        not isinstance(sd, dict)
        or not all(isinstance(v, torch.Tensor) for v in sd.values())
        or not isinstance(payload.get("meta_json"), str)
    ):
        raise CheckpointError(f"{path} is malformed: it lacks a state_dict of tensors or its metadata")
    if payload.get("sha256") != state_digest(sd, payload["meta_json"]):
        raise CheckpointError(f"{path} is corrupt: its SHA-256 does not match its weights and metadata")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {payload.get('kind')!r}, expected a {kind!r}")
    try:
        meta = json.loads(payload["meta_json"])
    except Exception as e:
        raise CheckpointError(f"{path} has unreadable metadata: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has metadata that is not a mapping")
    _check_writer_version(meta, path)
    return sd, meta


def _check_format(payload, path) -> None:
    """The format tag is checked before anything else is read: only ``FORMAT`` loads; an older
    or newer format is named as such (no format skips the checksum)."""
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX) or not fmt[len(FORMAT_PREFIX) :].isdigit():
        raise CheckpointError(f"{path} is not a sculpting checkpoint (format {FORMAT})")
    version = int(fmt[len(FORMAT_PREFIX) :])
    if version < FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses the retired checkpoint format v{version} (this sculpting reads "
            f"v{FORMAT_VERSION} only); retrain it or regenerate it with the documented command"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in checkpoint format v{version} by a newer sculpting; this "
            f"one reads v{FORMAT_VERSION}: upgrade sculpting to load it"
        )


def _version_tuple(text: str):
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _check_writer_version(meta: dict, path) -> None:
    """A checkpoint written by a newer ``sculpting`` (``meta["versions"]["sculpting"]``) is refused."""

    versions = meta.get("versions")
    writer = versions.get("sculpting") if isinstance(versions, dict) else None
    if writer is None:
        return
    if _version_tuple(writer) > _version_tuple(_version):
        raise CheckpointError(
            f"{path} was written by sculpting {writer}, newer than this {_version}; upgrade sculpting to load it"
        )


def base_file(directory, name: str, prefix: str = "base") -> Path:
    """Where a model named ``name`` lives in ``directory``: ``name/model.pt`` (what
    ``python -m sculpting ... --out DIR/name`` writes) or ``<prefix>_<name>.pt`` (the shipped
    layout: ``base_``, ``classifier_``); a :class:`CheckpointError` naming both when neither exists."""
    d = Path(directory)
    run, flat = d / name / "model.pt", d / f"{prefix}_{name}.pt"
    if run.is_file():
        return run
    if flat.is_file():
        return flat
    raise CheckpointError(f"no base {name!r} in {d}: looked for {run} (a training run's --out {d / name}) and {flat}")


def state_digest(state_dict: dict, meta_json: str) -> str:
    """SHA-256 of the metadata and of every tensor (name, dtype, shape, bytes), in key order."""
    h = hashlib.sha256(meta_json.encode())
    for k in sorted(state_dict):
        v = state_dict[k].detach().cpu().contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def rebuild(factory, state_dict: dict, meta: dict, path):
    """``factory()`` builds the model the metadata describes. It runs first on the ``meta`` device
    (no memory) to check every parameter name and shape against ``state_dict``; only a match is
    built for real and loaded (:func:`load_into`)."""
    try:
        with torch.device("meta"):
            probe = factory()
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{path}: its metadata does not describe a valid model ({type(e).__name__}: {e})") from e
    want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    if want != got:
        keys = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
        detail = ", ".join(f"{k}: file {got.get(k)} vs metadata {want.get(k)}" for k in keys[:3])
        raise CheckpointError(f"{path} does not match the model its metadata describes ({detail})")
    return load_into(factory(), state_dict, meta, path)


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
    if isinstance(meta.get("base_fingerprints"), list):  # a classifier: the bases it was trained on
        module.base_fingerprints = meta["base_fingerprints"]
    return module.eval()


def fingerprint_meta(module) -> dict:
    """The metadata a classifier carries about the bases it was trained on (``base_fingerprints``,
    set by the trainers; ``compose`` checks it)."""
    fp = getattr(module, "base_fingerprints", None)
    return {"base_fingerprints": fp} if fp else {}


#: checkpoint kinds whose loaders live in optional adapters (imported on demand)
ADAPTER_KINDS = {"torchgfn_policy": "sculpting.adapters.torchgfn", "diffusers_base": "sculpting.adapters.diffusers"}

#: metadata keys a checkpoint's writer sets; extras passed to ``sc.save`` may not overwrite them
RESERVED_META = frozenset(
    {
        "kind",
        "versions",
        "stored_as",
        "sha256",
        "format",
        "env",
        "arch",
        "base_fingerprints",
        "sde",
        "unet",
        "preset",
        "channels",
        "recipe",
        "unet_class",
        "unet_config",
        "prediction",
        "num_train_timesteps",
        "class_label",
        "state_dict",
        "meta_json",
    }
)


def check_extra_meta(meta: dict) -> dict:
    """Refuse extras that would overwrite what a checkpoint needs to load (:data:`RESERVED_META`)."""
    clash = sorted(set(meta) & RESERVED_META)
    if clash:
        raise ValueError(
            f"metadata keys {clash} are the checkpoint's own (they describe how to rebuild the model); "
            "name your extras otherwise, e.g. note_env=..."
        )
    return meta


def load(path):
    """Any registered kind of checkpoint, rebuilt by its loader (see :data:`LOADERS`)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder; pass the checkpoint file in it "
            f"({', '.join(p.name for p in sorted(path.glob('*.pt'))[:5]) or 'it holds no .pt'})"
        )
    if path.suffix == ".json" and path.with_suffix(".pt").is_file():
        raise CheckpointError(
            f"{path} is the human-readable metadata beside a checkpoint; load {path.with_suffix('.pt')}"
        )
    _, meta = load_checkpoint(path, None)
    kind = meta.get("kind")
    if kind not in LOADERS and kind in ADAPTER_KINDS:
        import importlib

        importlib.import_module(ADAPTER_KINDS[kind])
    if kind not in LOADERS:
        raise CheckpointError(
            f"{path}: no loader registered for checkpoint kind {kind!r} (known: {sorted(LOADERS)}); "
            "import the module that defines it"
        )
    return LOADERS[kind](path)
