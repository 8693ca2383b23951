"""Exact type masses of the colored-MNIST compositions and the distance of a judged sample to them.

Every base set holds the same number of digits per (digit, colour) type, and a type shared by two
bases holds the *same images* in both (same shapes, see :mod:`.data`), so the per-image masses of a
type are equal across bases and the sculpting algebra can be applied to the bases' *type*
distributions: the composition's exact type masses are ``Composition.target_log_prob`` of the
bases' uniform distributions over their types (``docs/mnist.md``). For instance M1◑M2 gives
red 0 ⅔, green 0 ⅓ at α = 0.5.

The judge turns samples into type frequencies f; the total-variation distance
TV = ½ Σ_t |f_t − p_t| measures how far a sample is from the exact composition (γ = 1).
"""

from __future__ import annotations

import math

import torch

from sculpting.algebra import Composition, parse_composition
from sculpting.domains.mnist.data import BASE_SETS

__all__ = ["TYPES", "type_key", "base_type_log_probs", "exact_type_masses", "type_tv", "binomial_se"]

#: every (digit, colour) type of the five base sets, as the judge's keys ("red 0", "green 3", ...)
TYPES = sorted(
    {f"{c} {d}" for name in ("M1", "M2", "MN1", "MN2", "MN3") for d, c in BASE_SETS[name]},
    key=lambda k: (int(k.split()[1]), k),
)


def type_key(digit: int, colour: str) -> str:
    return f"{colour} {digit}"


def base_type_log_probs(name: str) -> torch.Tensor:
    """``[T]`` log of the base's (uniform) type distribution over :data:`TYPES`."""
    if name not in BASE_SETS:
        raise ValueError(f"unknown base set {name!r}; choose from {sorted(BASE_SETS)}")
    own = {type_key(d, c) for d, c in BASE_SETS[name]}
    return torch.tensor([-math.log(len(own)) if t in own else -math.inf for t in TYPES], dtype=torch.float64)


def exact_type_masses(bases, operation, alpha: float = 0.5) -> dict:
    """{type: mass} of a composition of named bases (or of nested ``(bases, operation, alpha)``
    tuples standing for a composition used as a base); types of mass 0 are left out."""

    def log_probs(b):
        if isinstance(b, str):
            return base_type_log_probs(b)
        inner_bases, inner_op, inner_alpha = b
        comp = parse_composition(inner_op, len(inner_bases), inner_alpha)
        return comp.target_log_prob(torch.stack([log_probs(x) for x in inner_bases]))

    comp: Composition = parse_composition(operation, len(bases), alpha)
    p = comp.target_log_prob(torch.stack([log_probs(b) for b in bases])).exp()
    return {t: float(m) for t, m in zip(TYPES, p) if m > 1e-12}


def type_tv(judged: dict, masses: dict) -> float:
    """½ Σ_t |f_t − p_t| between judged counts ``{type: count}`` and exact masses ``{type: mass}``."""
    n = sum(judged.values())
    if n == 0:
        raise ValueError("no judged samples")
    keys = set(judged) | set(masses)
    return 0.5 * sum(abs(judged.get(k, 0) / n - masses.get(k, 0.0)) for k in keys)


def binomial_se(rate: float, n: int) -> float:
    """Standard error sqrt(r (1 − r) / n) of a rate estimated from n samples."""
    return math.sqrt(max(rate * (1 - rate), 0.0) / n)
