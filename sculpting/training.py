"""The scaffolding every trainer shares: configs that serialise, seeding, EMA copies, progress bars.

* :class:`TrainConfig` — a dataclass base with ``to_dict()`` (stored in checkpoint metadata).
* :func:`seeded` — seeds torch's global generator (dropout, initialisation done later) and returns a
  private CPU generator for the data stream: the same seed gives the same bytes.
* :func:`frozen_copy` / :func:`ema_update` — θ_ema ← d θ_ema + (1 − d) θ after every step.
* :func:`progress` — a tqdm range ``1..steps`` that is silent when ``enabled`` is False.
"""
from __future__ import annotations

import copy
from dataclasses import asdict

import torch
from tqdm.auto import tqdm

__all__ = ["TrainConfig", "seeded", "frozen_copy", "ema_update", "progress"]


class TrainConfig:
    """Mixin for training-config dataclasses."""

    def to_dict(self) -> dict:
        return asdict(self)


def seeded(seed: int) -> torch.Generator:
    """``torch.manual_seed(seed)`` and a fresh CPU generator seeded alike."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy without gradients (an EMA target, a frozen classifier, an EMA sampler)."""
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay · θ_ema + (1 − decay) · θ, parameter by parameter."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - decay)


def progress(steps: int, desc: str, enabled: bool = True, mininterval: float = 0.5):
    """``tqdm(range(1, steps + 1))``."""
    return tqdm(range(1, steps + 1), desc=desc, disable=not enabled, mininterval=mininterval)
