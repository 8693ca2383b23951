"""Non-finite numbers are errors where they enter, never samples or silent zero weights.

A classifier, a successor head, a score network, a policy or a reward that returns NaN or an
infinity for some inputs would otherwise flow into weights (a NaN log Ẑ, a particle silently given
weight 0) or images. Each entry point makes one check per call (one reduction and one host read):

* :func:`check_log_probs` — log-probabilities ``[B, K]``: NaN or +inf anywhere, or a row with no
  finite entry (a distribution with no mass), is an error; −inf entries in a row that has finite
  ones are exact zeros and pass (masked actions, labels an oracle rules out);
* :func:`check_finite` — values that must be finite everywhere (scores, rewards, log-densities).

Both raise :class:`NonFiniteError` naming what returned the values and how many rows are bad.
"""

from __future__ import annotations

import torch

__all__ = ["NonFiniteError", "check_log_probs", "check_finite"]


class NonFiniteError(ValueError):
    """A model returned NaN or infinite values where finite ones are needed."""


def _name(source) -> str:
    if isinstance(source, str):
        return source
    return f"the {type(source).__name__}"


def check_log_probs(
    values: torch.Tensor, source, what: str = "log-probabilities", need_mass: bool = True
) -> torch.Tensor:
    """``values`` ``[B, K]`` (or ``[B]``), after refusing NaN, +inf and (``need_mass``) rows with no
    finite entry; −inf entries are exact zeros (masked actions) and pass."""
    flat = values.reshape(len(values), -1)
    bad = (torch.isnan(flat) | torch.isposinf(flat)).any(1)
    if need_mass:
        bad = bad | ~torch.isfinite(flat).any(1)
    n_bad = int(bad.sum())
    if n_bad:
        raise NonFiniteError(
            f"{_name(source)} returned non-finite {what} for {n_bad} of {len(values)} rows (NaN, "
            "+inf, or no finite entry in a row); check its inputs and weights — sculpting does "
            "not turn them into samples or zero weights"
        )
    return values


def check_finite(values: torch.Tensor, source, what: str = "values") -> torch.Tensor:
    """``values`` ``[B, ...]`` after refusing any NaN or infinity."""
    ok = torch.isfinite(values.reshape(len(values), -1)).all(1) if values.dim() else torch.isfinite(values)[None]
    n_bad = int((~ok).sum())
    if n_bad:
        raise NonFiniteError(
            f"{_name(source)} returned non-finite {what} (NaN or ±inf) for {n_bad} of "
            f"{max(1, len(values) if values.dim() else 1)} rows; check its inputs and weights"
        )
    return values
