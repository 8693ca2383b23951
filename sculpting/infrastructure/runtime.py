"""Where a model computes (a leaf module)."""

from __future__ import annotations

import torch

__all__ = ["device_of"]


def device_of(model) -> torch.device:
    """Where a model computes: its ``device``, its environment's, or its parameters' (else CPU)."""
    for obj in (model, getattr(model, "env", None)):
        dev = getattr(obj, "device", None)
        if isinstance(dev, torch.device):
            return dev
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")
