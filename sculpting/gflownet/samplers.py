"""The GFlowNet samplers behind ``sc.sample(model, n, sampler=...)``: one interface, a module each.

Every sampler is a :class:`GFlowNetSampler`: a name, the options it declares (with defaults) and
``draw(model, n, generator, batch_size, **options) → [n, *S]`` terminal states. An option a
sampler does not declare is refused (:func:`check_options`), so a misspelt or foreign keyword
never changes what is drawn silently.

* ``"full"``: the guided policy with every successor scored (:mod:`.guidance`); exact for the
  classifier's guided policy.
* ``"rejection"``: the same law by rejection, scoring a few successors (:mod:`.rejection`).
* ``"amortised"``: proposals from a successor head, corrected by the classifier (:mod:`.amortised`).
* ``"smc"``: twisted sequential Monte Carlo (:mod:`.smc`): the composition the classifier's
  terminal head defines, exact as the particles grow; ⌈n / N⌉ independent runs of N particles,
  each ending with a multinomial draw of N from its final weights (runs advance together,
  ``batch_size`` particles at a time, default 4 096).

Without ``batch_size`` the other samplers draw :data:`DEFAULT_BATCH` trajectories at a time.
* ``"auto"``: rejection for compositions with observations on non-enumerable environments, else full.

A model that is not a composition (a base) is sampled from its own ``log_probs`` by every name
(for ``"smc"`` too: with no observation, every particle weight is 1 and SMC is the base itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["GFlowNetSampler", "GFLOWNET_SAMPLERS", "gflownet_sampler", "check_options", "draw_terminal"]


@dataclass(frozen=True)
class GFlowNetSampler:
    """A named sampler: ``options`` maps each accepted keyword to its default."""

    name: str
    options: dict = field(default_factory=dict)
    doc: str = ""

    def draw(self, model, n: int, generator=None, batch_size: int | None = None, **options) -> torch.Tensor:
        opts = check_options(self, options)
        bs = batch_size or min(n, DEFAULT_BATCH)
        if self.name == "smc" and hasattr(model, "composition"):
            from sculpting.gflownet.smc import smc_sample

            return smc_sample(model, n, generator, batch_size=batch_size, **opts)
        name = self.name
        if name == "smc":  # a base: SMC without observation is the base itself, sampled exactly
            from sculpting.gflownet.smc import PROPOSALS, TWISTS
            from sculpting.smc_core import check_smc_options

            check_smc_options(opts["particles"], opts["resample_threshold"])
            if opts["proposal"] not in ("auto",) + PROPOSALS:
                raise ValueError(f"unknown SMC proposal {opts['proposal']!r}; choose from {('auto',) + PROPOSALS}")
            if opts["twist"] not in TWISTS:
                raise ValueError(f"unknown SMC twist {opts['twist']!r}; choose from {TWISTS}")
            if opts["proposal"] == "amortised" or opts["twist"] == "head":
                raise ValueError(
                    f"proposal={opts['proposal']!r}, twist={opts['twist']!r} needs a composition with a "
                    "successor head (compose(..., successor_head=)); this is a base"
                )
            name, opts = "full", {}
        from sculpting.gflownet.rejection import action_sampler_for
        from sculpting.gflownet.sampler import sample_trajectories

        act = action_sampler_for(model, name, **opts)
        return torch.cat(
            [
                sample_trajectories(model.env, model, min(bs, n - i), generator=generator, action_sampler=act).terminal
                for i in range(0, n, bs)
            ]
        )


#: trajectories drawn at once when no batch_size is given (bounds the working memory of a large draw)
DEFAULT_BATCH = 65536


def trajectory_bytes(env) -> int | None:
    """An upper bound on the working memory of one trajectory in flight (measured on the grid:
    4–5 kB per trajectory for 63 steps of 16-byte states, base or guided; this gives 6.2 kB):
    its states, 4 copies (features, masks, successors), plus features and per-action tables."""
    try:
        s0 = env.initial_states(1)
        length = int(env.max_trajectory_length)
    except Exception:  # noqa: BLE001 (an env without these: no estimate)
        return None
    feat, acts = int(getattr(env, "feature_dim", 0) or 0), int(getattr(env, "n_actions", 0) or 0)
    return 4 * length * s0.numel() * s0.element_size() + 32 * feat + 32 * acts


def check_options(sampler: GFlowNetSampler, options: dict) -> dict:
    """The sampler's defaults updated with ``options``; an undeclared option is an error."""
    unknown = sorted(set(options) - set(sampler.options))
    if unknown:
        allowed = ", ".join(sorted(sampler.options)) or "none"
        raise TypeError(
            f"sampler={sampler.name!r} takes no option {', '.join(map(repr, unknown))} (its options: {allowed})"
        )
    for k, v in options.items():
        _check_option(k, v)
    return {**sampler.options, **options}


#: the type and range of each numeric sampler option: (integer?, low, high, low inclusive?)
_OPTION_RANGES = {
    "proposals": (True, 1, 4096, True),
    "rounds": (True, 1, 10_000, True),
    "min_actions": (True, 0, 10**9, True),
    "acceptances": (False, 0.0, 1e6, False),
    "max_fraction": (False, 0.0, 1.0, False),
    "envelope": (False, 1.0, 1e6, True),
}


def _check_option(name: str, value) -> None:
    """Refuse a sampler option of the wrong type or outside its range (never coerced)."""
    import math

    if name not in _OPTION_RANGES:
        return
    integer, low, high, closed = _OPTION_RANGES[name]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(value) or not (low <= value if closed else low < value) or value > high:
        raise ValueError(f"{name} must be {kind} in {'[' if closed else '('}{low}, {high}], got {value!r}")


_REJECTION = {"proposals": 1, "rounds": 8, "max_fraction": 1.0, "min_actions": 4, "acceptances": 1.5}
_AMORTISED = {"envelope": 2.0, "proposals": 1, "rounds": 8, "acceptances": 1.0, "min_actions": 4}
_SMC = {"particles": 64, "proposal": "auto", "resample_threshold": 0.5, "twist": "classifier"}

GFLOWNET_SAMPLERS = {
    "auto": GFlowNetSampler("auto", {}, "rejection on non-enumerable environments, else full"),
    "full": GFlowNetSampler("full", {}, "every successor scored"),
    "rejection": GFlowNetSampler("rejection", _REJECTION, "exact rejection sampling of guided actions"),
    "amortised": GFlowNetSampler("amortised", _AMORTISED, "successor-head proposals, classifier correction"),
    "smc": GFlowNetSampler("smc", _SMC, "twisted SMC: exact for the terminal-defined target as N grows"),
}


def gflownet_sampler(name) -> GFlowNetSampler:
    if not isinstance(name, str) or name not in GFLOWNET_SAMPLERS:
        raise ValueError(f"unknown GFlowNet sampler {name!r}; choose from {sorted(GFLOWNET_SAMPLERS)}")
    return GFLOWNET_SAMPLERS[name]


def draw_terminal(
    model, n: int, generator=None, sampler: str = "auto", batch_size: int | None = None, **options
) -> torch.Tensor:
    """``[n, *S]`` terminal states of ``model`` by the named sampler (module docs)."""
    return gflownet_sampler(sampler).draw(model, n, generator, batch_size, **options)
