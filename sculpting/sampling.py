"""Samplers: one class per sampler, the same for every model family (``docs/architecture.md``).

A sampler is a subclass of :class:`Sampler` that declares

* ``name``: what ``sc.sample(model, n, sampler=name)`` calls it;
* ``family``: the model family it draws from (``"gflownet"`` or ``"diffusion"``);
* ``options``: every keyword it accepts, with its default (anything else is refused);

and implements ``draw(model, n, generator, *, steps, batch_size, progress) → [n, *S]``. Defining
the subclass registers it (``__init_subclass__``): a new sampler is one new file, imported before
use; the package's own live one per file in ``sculpting/gflownet/samplers/`` and
``sculpting/diffusion/samplers/``, which import every file of their folder.

``sc.sample(..., sampler=)`` takes a registered name (with the options as keywords) or an instance
(``RejectionSampler(rounds=16)``), which carries its options itself.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

__all__ = ["Sampler", "SamplerError", "registered", "resolve", "check_option"]

FAMILY_NAMES = {"gflownet": "GFlowNet", "diffusion": "diffusion"}

#: the type and range of each numeric sampler option: (integer?, low, high, low inclusive?)
OPTION_RANGES = {
    "proposals": (True, 1, 4096, True),
    "rounds": (True, 1, 10_000, True),
    "min_actions": (True, 0, 10**9, True),
    "acceptances": (False, 0.0, 1e6, False),
    "max_fraction": (False, 0.0, 1.0, False),
    "envelope": (False, 1.0, 1e6, True),
}

_REGISTRY: dict = {}  # family → {name → Sampler subclass}


class SamplerError(ValueError):
    """An unknown sampler name, or a sampler of another family."""


class Sampler:
    """The base of every sampler (module docs). ``self.values``: the options in effect (the declared
    defaults updated with what the constructor was given)."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    options: ClassVar[dict] = {}
    #: one line for listings (the panels' menus, ``docs``)
    summary: ClassVar[str] = ""
    #: options without a usable default (the caller must pass them, e.g. a scheduler instance)
    required: ClassVar[tuple] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.name:  # an abstract intermediate class
            return
        if cls.family not in FAMILY_NAMES:
            raise TypeError(f"{cls.__name__}.family must be one of {sorted(FAMILY_NAMES)}, got {cls.family!r}")
        _REGISTRY.setdefault(cls.family, {})[cls.name] = cls

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise TypeError(
                f"sampler={self.name!r} takes no option {', '.join(map(repr, unknown))} (its options: {allowed})"
            )
        for k, v in options.items():
            check_option(k, v)
        self.values = {**self.options, **options}

    def draw(self, model, n: int, generator=None, *, steps=None, batch_size=None, progress=False) -> torch.Tensor:
        """``[n, *S]`` samples of ``model`` (``steps``: diffusion grid points; ``batch_size``: samples
        worked on at once, None for the sampler's default)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.values.items() if v != self.options[k])
        return f"{type(self).__name__}({opts})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.values == self.values

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.values.items(), key=lambda kv: kv[0]))))


def registered(family: str) -> dict:
    """``{name: Sampler subclass}`` of ``family`` (the live registry: read it, do not change it)."""
    _load(family)
    return _REGISTRY.setdefault(family, {})


def resolve(family: str, sampler, options: dict | None = None) -> Sampler:
    """The sampler instance that ``sc.sample(..., sampler=sampler, **options)`` means for ``family``:
    a registered name built with ``options``, or an instance (then ``options`` must be empty)."""
    options = dict(options or {})
    if isinstance(sampler, Sampler):
        if sampler.family != family:
            raise SamplerError(
                f"{type(sampler).__name__} samples {FAMILY_NAMES[sampler.family]} models, not "
                f"{FAMILY_NAMES.get(family, family)} models"
            )
        if options:
            raise TypeError(
                f"sampler={sampler!r} is an instance: give its options to its constructor, not "
                f"{', '.join(map(repr, sorted(options)))}"
            )
        return sampler
    names = registered(family)
    if not isinstance(sampler, str) or sampler not in names:
        raise SamplerError(
            f"unknown {FAMILY_NAMES.get(family, family)} sampler {sampler!r}; choose from {sorted(names)}"
        )
    return names[sampler](**options)


def check_option(name: str, value) -> None:
    """Refuse a sampler option of the wrong type or outside its range (never coerced)."""
    if name not in OPTION_RANGES:
        return
    integer, low, high, closed = OPTION_RANGES[name]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(value) or not (low <= value if closed else low < value) or value > high:
        raise ValueError(f"{name} must be {kind} in {'[' if closed else '('}{low}, {high}], got {value!r}")


def _load(family: str) -> None:
    """Import the package's own samplers of ``family`` (their folder imports each of its files)."""
    import importlib

    importlib.import_module(f"sculpting.{family}.samplers")
