"""Bounds on the sizes a user passes, checked before anything is allocated.

* :func:`check_width` / :func:`check_count`: an integer in a documented range (a ``TypeError`` for a
  non-integer, a ``ValueError`` naming the range otherwise);
* :func:`check_parameter_memory`: a network of ``n_params`` float32 parameters must fit, with its
  gradients and Adam's two moments (16 bytes per parameter), in a quarter of this machine's memory.

The documented bounds: hidden widths 1 .. :data:`MAX_WIDTH`, layers 1 .. :data:`MAX_LAYERS`, bases
2 .. 16 (:data:`sculpting.algebra.MAX_BASES`), observation slots 1 .. 8, sampling steps 1 ..
:data:`MAX_STEPS`, workers 1 .. :data:`MAX_WORKERS`, SMC particles 1 .. 2^22
(:data:`sculpting.smc_core.MAX_PARTICLES`), guidance γ in [0, 100]
(:data:`sculpting.diffusion.composition.MAX_GAMMA`), corrector SNR in [0, 1]; the samples of one
``sample`` call (and a pipeline batch) must fit in :func:`memory_limit`.
"""

from __future__ import annotations

import os

__all__ = [
    "MAX_WIDTH",
    "MAX_LAYERS",
    "MAX_SLOTS",
    "MAX_STEPS",
    "MAX_WORKERS",
    "check_width",
    "check_count",
    "check_parameter_memory",
    "check_memory",
    "memory_limit",
]

#: the widest hidden layer a network of this package takes
MAX_WIDTH = 16384
#: the most hidden layers
MAX_LAYERS = 64
#: the most observation slots of a classifier (m^n joint outputs)
MAX_SLOTS = 8
#: the most sampling steps (diffusion grids are allocated up front)
MAX_STEPS = 100_000
#: the most worker processes of one ``sample`` call
MAX_WORKERS = 64


def check_count(name: str, value, low: int, high: int) -> int:
    """``value`` as an int in [low, high] (bool and non-integers refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def check_width(name: str, value) -> int:
    """A hidden width in [1, :data:`MAX_WIDTH`]."""
    return check_count(name, value, 1, MAX_WIDTH)


def memory_limit() -> int:
    """A quarter of this machine's physical memory, in bytes (8 GB where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def check_parameter_memory(what: str, n_params: int) -> None:
    """Refuse a network whose training state (16 bytes per parameter) exceeds :func:`memory_limit`."""
    need, limit = 16 * int(n_params), memory_limit()
    if need > limit:
        raise ValueError(
            f"{what} would have {n_params:.3g} parameters, about {need / 2**30:.1f} GB to train with "
            f"Adam, more than the {limit / 2**30:.1f} GB allowed (a quarter of this machine's "
            "memory); choose a smaller width or fewer bases / slots"
        )


def check_memory(model, family, n: int, batch_size=None, in_flight: int | None = None, what: str = "sample") -> None:
    """Refuse, before allocating, a draw of ``n`` samples (``in_flight`` of them, or of the SMC
    particles, worked on at once) that would take more than :func:`memory_limit` at its peak (the
    family's estimate: :meth:`~sculpting.families.ModelFamily.memory_need`)."""
    need, limit = family.memory_need(model, n, batch_size, in_flight), memory_limit()
    if need is None:
        return
    if need > limit:
        raise ValueError(
            f"{what}(n={n}{'' if in_flight is None else f', {in_flight} in flight'}) would need about "
            f"{need / 2**30:.1f} GB, more than the {limit / 2**30:.1f} GB allowed (a quarter of this "
            "machine's memory); draw it in several calls, or with fewer particles / a smaller batch_size"
        )
