"""Fingerprints: short, stable descriptions of what decides a result.

* :func:`weights_sha256` — SHA-256 of a model's weights (every tensor's name, dtype, shape and
  bytes, in key order). A classifier records those of the bases it was trained on, and
  :func:`sculpting.compose` refuses other bases (:func:`check_bases`).
* :func:`describe` — a JSON-able description of a model, an environment or a dataset that a resume
  file stores beside the training config: a run never continues another run's state
  (:class:`sculpting.infrastructure.training_scaffold.Resumable`).

A user reward function is described by its qualified name and, where Python can read it, the
SHA-256 of its source (else of its bytecode).
"""

from __future__ import annotations

import hashlib
import inspect
import json

import torch

__all__ = [
    "weights_sha256",
    "describe",
    "base_fingerprints",
    "check_bases",
    "function_fingerprint",
    "tensor_sha256",
    "diff_fields",
]


def tensor_sha256(t: torch.Tensor) -> str:
    """SHA-256 of one tensor's dtype, shape and bytes."""
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _tensors(obj, prefix: str, out: dict, depth: int = 0) -> None:
    """Collect the tensors that define ``obj`` (its state_dict, or those of its attributes)."""
    if depth > 4 or obj is None:
        return
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
        return
    sd = getattr(obj, "state_dict", None)
    if isinstance(obj, torch.nn.Module) and callable(sd):
        for k, v in sd().items():
            out[f"{prefix}{k}"] = v
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _tensors(v, f"{prefix}{i}.", out, depth + 1)
        return
    if isinstance(obj, (int, float, str, bool)):
        out[prefix] = repr(obj).encode()  # plain values by their text (no tensor is created)
        return
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        for k in sorted(attrs):
            if not k.startswith("_") and k != "env":
                _tensors(attrs[k], f"{prefix}{k}.", out, depth + 1)


def weights_sha256(model) -> str:
    """SHA-256 over the tensors defining ``model`` (a module's state_dict; for a wrapper such as a
    β-fixed molecule policy, those of its attributes), in key order. Floating-point tensors are
    hashed as float16, so a model and its float16-stored checkpoint (shipped models) agree. A model's
    ``fingerprint_extra()`` (a JSON-able dict: a class label, a schedule) is hashed too."""
    tensors: dict = {}
    _tensors(model, "", tensors)
    extra = getattr(model, "fingerprint_extra", None)
    if callable(extra):  # what else decides the model (a class-conditional base's label, its schedule)
        tensors["<fingerprint_extra>"] = json.dumps(_plain(extra()), sort_keys=True).encode()
    h = hashlib.sha256(type(model).__qualname__.encode())
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}|".encode())
        if isinstance(t, bytes):
            h.update(hashlib.sha256(t).hexdigest().encode())
        elif t.is_meta:
            raise ValueError(f"cannot fingerprint {type(model).__name__}: its weights are on the meta device")
        else:
            h.update(tensor_sha256(t.detach().half() if t.is_floating_point() else t).encode())
    return h.hexdigest()


def function_fingerprint(fn) -> dict:
    """``{"function": module.qualname, "sha256": of its source (or bytecode)}``."""
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    try:
        payload = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        payload = code.co_code + repr(code.co_consts).encode() if code is not None else repr(fn).encode()
    return {"function": name, "sha256": hashlib.sha256(payload).hexdigest()}


def _plain(value):
    """JSON-able form of a config value (callables by fingerprint, tensors by hash)."""
    if callable(value) and not isinstance(value, type):
        return function_fingerprint(value)
    if isinstance(value, torch.Tensor):
        return {"tensor": tensor_sha256(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return repr(value)


def describe(obj) -> dict:
    """What a resume file records about a model, an environment or a dataset.

    * environment: ``env.fingerprint()`` when it has one, else its class, ``space`` and ``config``;
    * model: its class, the names and shapes of its parameters and buffers (the architecture)
      and its environment;
    * tensor (a dataset): dtype, shape and SHA-256;
    * list: each element.
    """
    if isinstance(obj, torch.Tensor):
        return {"tensor": tensor_sha256(obj), "shape": list(obj.shape)}
    if isinstance(obj, (list, tuple)):
        return {"items": [describe(o) for o in obj]}
    own = getattr(obj, "fingerprint", None)
    if callable(own) and not isinstance(obj, torch.nn.Module):
        return _plain(own())
    if isinstance(obj, torch.nn.Module):
        arch = {k: [str(v.dtype), list(v.shape)] for k, v in obj.state_dict().items()}
        out = {
            "class": type(obj).__qualname__,
            "architecture": hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest(),
        }
        env = getattr(obj, "env", None)
        if env is not None:
            out["env"] = describe(env)
        return out
    out = {"class": type(obj).__qualname__}
    for attr in ("space", "config"):
        value = getattr(obj, attr, None)
        if value is not None:
            out[attr] = _plain(value)
    return out


def base_fingerprints(bases) -> list[dict]:
    """``[{"class", "sha256"}]`` of each base, in label order."""
    return [{"class": type(b).__qualname__, "sha256": weights_sha256(b)} for b in bases]


def check_bases(classifier, bases) -> None:
    """Raise ``ValueError`` when ``classifier`` records the fingerprints of other bases than
    ``bases`` (a classifier without a record is not checked)."""
    want = getattr(classifier, "base_fingerprints", None)
    if not want:
        return
    got = base_fingerprints(bases)
    if len(want) != len(got):
        raise ValueError(f"this classifier was trained on {len(want)} bases, got {len(got)}")
    bad = [i + 1 for i, (w, g) in enumerate(zip(want, got)) if w.get("sha256") != g["sha256"]]
    if bad:
        raise ValueError(
            f"this classifier was trained on other bases: base(s) {bad} (label order) have other "
            "weights than the ones it was fitted to. Pass the bases it was trained with (in label "
            "order), refit it with sc.fit_classifier, or pass check=False to compose anyway"
        )


def diff_fields(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ between two JSON-able dicts."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_fields(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k} ({_short(a)} → {_short(b)})")
    return out


def _short(v) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."
