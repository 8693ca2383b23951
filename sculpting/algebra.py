"""The sculpting algebra: compositions of base distributions as data (no networks).

Garipov et al. 2023, "Compositional Sculpting of Iterative Generative Processes", §3.

Given m base distributions p_1..p_m over one space X and an observation model in which
each observation y_k ∈ {1..m} is drawn independently given x with

    p(y_k = i | x) = ω^k_i p_i(x) / Σ_j ω^k_j p_j(x)                 (per-observation prior ω^k)

and x drawn from the mixture p̄(x) = Σ_i ω^1_i p_i(x), the *sculpted* distribution is

    p(x | y_1..y_n) ∝ p̄(x) Π_k p(y_k | x).

An observation that is not specified is marginalised out (it contributes a factor 1).

Conventions fixed here (and used in every plot label):

* Two bases with weight α ∈ (0, 1): y_1 has the uniform prior and y_2 has the prior
  (α, 1 − α).  Hence  HM_α ∝ p1 p2 / (α p1 + (1 − α) p2),
  contrast_α ∝ p1² / (α p1 + (1 − α) p2),  reverse_α ∝ p2² / (α p1 + (1 − α) p2):
  **α is the weight of base 1 in the denominator** (α = 0.5 is the unweighted operation;
  small α subtracts more of p2).  The mixture is α p1 + (1 − α) p2.
* Three (or more) bases use uniform priors for every observation.

Everything is computed in log space (``torch.logsumexp``); tensors of base log-probabilities
have shape ``[m, N]`` (m bases, N points) or ``[..., m]`` where stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = [
    "Composition",
    "observation_log_posteriors",
    "TWO_BASE_OPERATIONS",
    "THREE_BASE_OBSERVATIONS",
    "parse_composition",
    "l1_distance",
]

#: name -> (observations, human label template) for two bases.
TWO_BASE_OPERATIONS = {
    "p1": ((1,), "p1"),
    "p2": ((2,), "p2"),
    "mixture": ((), "α p1 + (1−α) p2"),
    "harmonic": ((1, 2), "p1 ⊗ p2"),
    "contrast": ((1, 1), "p1 ◑ p2"),
    "reverse_contrast": ((2, 2), "p1 ◐ p2"),
}

#: The three-base observation sets of the paper's figure (``docs/algebra.md``).
THREE_BASE_OBSERVATIONS = [(1, 2), (1, 3), (2, 3), (1, 2, 3), (1, 1), (2, 2), (3, 3), (1, 1, 1), (2, 2, 2), (3, 3, 3)]


def _as_int(v, what: str) -> int:
    """An integer given as int (or an integral float / 0-d tensor); anything else is an error."""
    if isinstance(v, bool):
        raise ValueError(f"{what} must be an integer, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {v!r}") from None
    if not f.is_integer():
        raise ValueError(f"{what} must be an integer, got {v!r}")
    return int(f)


#: the most bases a composition takes (the joint classifier has m^n outputs)
MAX_BASES = 16


def _check_n_bases(n_bases) -> int:
    if isinstance(n_bases, bool) or not isinstance(n_bases, int):
        raise TypeError(f"the number of bases must be an integer, got {n_bases!r}")
    if not 2 <= n_bases <= MAX_BASES:
        raise ValueError(f"a composition takes 2 to {MAX_BASES} bases, got {n_bases}")
    return n_bases


def _check_alpha(alpha: float) -> float:
    import numbers

    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    if not (0.0 < alpha < 1.0) or math.isnan(alpha):
        raise ValueError(f"alpha must lie strictly inside (0, 1), got {alpha}")
    return alpha


@dataclass(frozen=True)
class Composition:
    """A sculpted distribution p(x | y) of ``n_bases`` bases.

    Attributes:
        n_bases: m ≥ 2.
        observations: the specified labels (y_1, .., y_k), each in 1..m (1-based, as in the
            paper); ``()`` is the plain mixture.
        priors: one prior over the bases per observation slot, shape ``[n_slots, m]``
            (rows sum to 1).  Slot 0 is also the mixture weight ω of p̄.
        alpha: the two-base weight this composition was built with (or None).
        name: an operation name for display ("harmonic", "contrast", "y=123", ...).

    Examples:
        >>> from sculpting import Composition
        >>> c = Composition.two_base("contrast", alpha=0.05)
        >>> c.label(), c.observations
        ('p1 ◑ p2 (α=0.05)', (1, 1))
    """

    n_bases: int
    observations: tuple
    priors: tuple = field(default=None)
    alpha: float | None = None
    name: str = ""

    def __post_init__(self):
        m = _as_int(self.n_bases, "n_bases")
        if m < 2:
            raise ValueError(f"a composition needs at least 2 bases, got {m}")
        if m > MAX_BASES:
            raise ValueError(
                f"a composition takes 2 to {MAX_BASES} bases (its joint classifier has m^n outputs), got {m}"
            )
        object.__setattr__(self, "n_bases", m)
        if not isinstance(self.observations, (tuple, list)):
            raise TypeError(f"observations must be a tuple of labels, got {self.observations!r}")
        if len(self.observations) > 8:
            raise ValueError(f"at most 8 observed labels, got {len(self.observations)}")
        obs = tuple(_as_int(y, "an observation label") for y in self.observations)
        for y in obs:
            if not 1 <= y <= m:
                raise ValueError(f"observation label {y} is outside 1..{m}")
        object.__setattr__(self, "observations", obs)
        n_slots = max(len(obs), 1)
        priors = self.priors
        alpha = None if self.alpha is None else _check_alpha(self.alpha)
        alpha_slot = 1 if obs else 0  # the two-base weight is slot 2's prior (slot 1's for the mixture)
        if alpha is not None and m != 2:
            raise ValueError(f"alpha is the weight of two-base compositions; with {m} bases give priors instead")
        if priors is None:
            priors = tuple((1.0 / m,) * m for _ in range(max(n_slots, alpha_slot + 1 if alpha is not None else 0)))
            if alpha is not None:  # α lives in the priors, once
                priors = priors[:alpha_slot] + ((alpha, 1 - alpha),) + priors[alpha_slot + 1 :]
        elif alpha is not None:
            rows = tuple(priors)
            if len(rows) <= alpha_slot or len(rows[alpha_slot]) != 2 or abs(float(rows[alpha_slot][0]) - alpha) > 1e-9:
                said = rows[alpha_slot][0] if len(rows) > alpha_slot and len(rows[alpha_slot]) else None
                raise ValueError(
                    f"alpha={alpha:g} disagrees with the priors (slot {alpha_slot + 1} gives weight "
                    f"{said}): α is the first weight of that slot's prior; pass one of the two"
                )
        priors = tuple(tuple(float(p) for p in row) for row in priors)
        if len(priors) < n_slots:
            raise ValueError(f"{len(priors)} priors given for {n_slots} observations")
        for row in priors:
            if len(row) != m or not all(math.isfinite(p) and p > 0 for p in row) or abs(sum(row) - 1) > 1e-6:
                raise ValueError(f"each prior must be {m} positive weights summing to 1, got {row}")
        object.__setattr__(self, "priors", priors)
        object.__setattr__(self, "alpha", alpha)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def two_base(cls, operation: str, alpha: float = 0.5) -> "Composition":
        """One of :data:`TWO_BASE_OPERATIONS` at weight α (see module docstring)."""
        if operation not in TWO_BASE_OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; choose from {sorted(TWO_BASE_OPERATIONS)}")
        alpha = _check_alpha(alpha)
        obs, _ = TWO_BASE_OPERATIONS[operation]
        return cls(2, obs, None, alpha=alpha, name=operation)  # the priors from α: built in __post_init__ only

    @classmethod
    def uniform(cls, n_bases: int, observations, name: str | None = None) -> "Composition":
        """Uniform priors for every observation (the three-base compositions)."""
        obs = tuple(observations)
        return cls(n_bases, obs, None, name=name or ("y=" + "".join(map(str, obs)) if obs else "mixture"))

    # ------------------------------------------------------------------ maths
    @property
    def n_observations(self) -> int:
        return len(self.observations)

    def log_priors(self, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """``[n_slots, m]`` log prior of every observation slot."""
        return torch.tensor(self.priors, dtype=dtype, device=device).log()

    def path_log_weights(self, path_log_likelihoods: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
        """``[K]`` log of the path composition's density over the slot-1 mixture's, log Π(τ) / P̄(τ)
        = γ Σ_j log ρ^{(j)}_{y_j}(τ) with ρ^{(j)} = softmax(log ω^{(j)} + L(τ)), for paths τ drawn from
        P̄ = Σ_i ω^{(1)}_i P_i (``docs/classifier_free.md``): importance weights that estimate the path
        composition's own target from the bases' chains, independently of SMC.

        Args:
            path_log_likelihoods: ``[K, m]`` L_i(τ), each base's log-likelihood of each path (a
                shift shared by the bases of one path cancels).
        """
        ell = torch.as_tensor(path_log_likelihoods)
        if ell.dim() != 2 or ell.shape[1] != self.n_bases:
            raise ValueError(f"path log-likelihoods must be [K, {self.n_bases}], got {tuple(ell.shape)}")
        ell = ell.double()
        log_w = self.log_priors(torch.float64, ell.device)
        out = torch.zeros(len(ell), dtype=torch.float64, device=ell.device)
        for k, y in enumerate(self.observations):
            out = out + gamma * torch.log_softmax(log_w[k] + ell, dim=1)[:, y - 1]
        return out

    def target_log_prob(self, base_log_probs: torch.Tensor) -> torch.Tensor:
        """Exact normalised log p(x | y) from base log-probabilities.

        Args:
            base_log_probs: ``[m, N]`` log p_i(x) on an enumerable space of N points.
        Returns:
            ``[N]`` log p(x | y) = log p̄(x) + Σ_k log p(y_k | x) − log Z.
        """
        lp = self._check_base(base_log_probs)
        log_w = self.log_priors(lp.dtype, lp.device)
        log_mix = torch.logsumexp(lp + log_w[0][:, None], dim=0)
        out = log_mix.clone()
        for k, y in enumerate(self.observations):
            out = out + observation_log_posteriors(lp, log_w[k])[y - 1]
        out = out.masked_fill(torch.isneginf(log_mix), -float("inf"))  # points no base can produce
        z = torch.logsumexp(out, dim=0)
        if not torch.isfinite(z):
            raise ValueError(
                f"{self.label()} has no support: the bases it multiplies share no point "
                "(every x has p_i(x) = 0 for some observed base)"
            )
        return out - z

    def observation_log_likelihood(self, base_log_probs: torch.Tensor, skip_first: bool = False) -> torch.Tensor:
        """``[N]`` Σ_k log p(y_k | x) (from k = 2 on when ``skip_first``)."""
        lp = self._check_base(base_log_probs)
        log_w = self.log_priors(lp.dtype, lp.device)
        out = torch.zeros(lp.shape[1], dtype=lp.dtype, device=lp.device)
        for k, y in enumerate(self.observations):
            if skip_first and k == 0:
                continue
            out = out + observation_log_posteriors(lp, log_w[k])[y - 1]
        return out

    def _check_base(self, base_log_probs: torch.Tensor) -> torch.Tensor:
        """Shape ``[m, N]``, floating point, no NaN or +inf, every base with some mass."""
        lp = base_log_probs if isinstance(base_log_probs, torch.Tensor) else torch.as_tensor(base_log_probs)
        if lp.dim() != 2 or lp.shape[0] != self.n_bases:
            raise ValueError(f"expected base log-probabilities of shape [{self.n_bases}, N], got {tuple(lp.shape)}")
        if not lp.is_floating_point():
            raise ValueError(f"base log-probabilities must be floating point, got {lp.dtype}")
        if torch.isnan(lp).any() or torch.isposinf(lp).any():
            raise ValueError("base log-probabilities contain NaN or +inf")
        dead = torch.isneginf(lp).all(dim=1)
        if dead.any():
            raise ValueError(
                f"base(s) {(dead.nonzero().flatten() + 1).tolist()} have no mass (all log-probabilities −inf)"
            )
        return lp

    # ------------------------------------------------------------------ labels
    def label(self, base_names=None) -> str:
        """A plot label with the ⊗ ◑ ◐ symbols and the weight, e.g. ``p1 ⊗ p2 (α=0.5)`` or ``y=123``."""
        names = list(base_names or [f"p{i + 1}" for i in range(self.n_bases)])
        sub = "" if self.alpha is None else f" (α={self.alpha:g})"
        if self.n_bases == 2 and self.name in TWO_BASE_OPERATIONS:
            a, b = names
            return {
                "p1": a,
                "p2": b,
                "mixture": f"{self.alpha:g}·{a} + {1 - self.alpha:g}·{b}" if self.alpha is not None else f"{a} + {b}",
                "harmonic": f"{a} ⊗ {b}{sub}",
                "contrast": f"{a} ◑ {b}{sub}",
                "reverse_contrast": f"{a} ◐ {b}{sub}",
            }[self.name]
        return "y=" + "".join(str(y) for y in self.observations) if self.observations else "mixture"


def observation_log_posteriors(base_log_probs: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """True observation posterior log p(y = i | x) = log ω_i p_i(x) − log Σ_j ω_j p_j(x).

    Args:
        base_log_probs: ``[m, N]``.
        log_prior: ``[m]`` log ω.
    Returns:
        ``[m, N]``.
    """
    joint = base_log_probs + log_prior.to(base_log_probs.dtype)[:, None]
    return joint - torch.logsumexp(joint, dim=0, keepdim=True)


def parse_composition(spec, n_bases: int, alpha: float = 0.5) -> Composition:
    """The one parser of composition names (used by :func:`sculpting.compose` and every domain).

    ``spec``: a :class:`Composition` (checked against ``n_bases``); a two-base name of
    :data:`TWO_BASE_OPERATIONS` (at weight ``alpha``); "mixture" (weights (α, 1 − α) for two
    bases, uniform for more); observed labels "y=123" or a tuple ``(1, 2, 3)``. For two bases,
    observed labels use the priors of the named operations (slot 2: (α, 1 − α)), so "y=12" is
    the harmonic mean; for m ≥ 3 every slot has the uniform prior.

    Examples:
        >>> import sculpting as sc
        >>> sc.parse_composition("harmonic", 2, alpha=0.3).label()
        'p1 ⊗ p2 (α=0.3)'
        >>> sc.parse_composition("y=123", 3).label()
        'y=123'
    """
    m = _check_n_bases(n_bases)
    if m > 2:
        a = _check_alpha(alpha)
        if a != 0.5:
            raise ValueError(
                f"alpha is the weight of two-base compositions; with {m} bases leave it at 0.5 "
                "(or pass a Composition with its own priors)"
            )
    if isinstance(spec, Composition):
        if spec.n_bases != m:
            raise ValueError(f"composition is of {spec.n_bases} bases, got {m}")
        if m == 2 and _check_alpha(alpha) != 0.5:
            raise ValueError(
                f"alpha={alpha} with a Composition: a Composition carries its own priors (weights), "
                "so alpha would be ignored; build the Composition with the weights you want, or pass "
                "an operation name with alpha="
            )
        return spec
    if isinstance(spec, str):
        s = spec.strip()
        if s == "mixture" and m != 2:
            return Composition.uniform(m, (), name="mixture")
        if s in TWO_BASE_OPERATIONS:
            if m != 2:
                raise ValueError(f"{s!r} is a two-base operation; for {m} bases use observed labels like 'y=123'")
            return Composition.two_base(s, alpha)
        if not s.startswith("y=") or not (s[2:] == "" or (s[2:].isascii() and s[2:].isdigit())):
            raise ValueError(
                f"unknown composition {spec!r}; use one of {sorted(TWO_BASE_OPERATIONS)}, "
                "'y=<labels>' (e.g. 'y=12') or a tuple of labels"
            )
        obs = tuple(int(c) for c in s[2:])
    else:
        if not isinstance(spec, (tuple, list)):
            raise TypeError(f"a composition is a name, a tuple of labels or a Composition, got {spec!r}")
        obs = tuple(spec)
        for y in obs:
            if isinstance(y, bool) or not isinstance(y, int):
                raise TypeError(f"observation labels must be integers, got {y!r}")
    if len(obs) > 8:
        raise ValueError(f"at most 8 observed labels, got {len(obs)}")
    if m == 2:
        a = _check_alpha(alpha)  # the priors, (α, 1 − α) on slot 2, are built by Composition itself
        return Composition(2, obs, None, alpha=a, name="y=" + "".join(map(str, obs)) if obs else "mixture")
    return Composition.uniform(m, obs)


def l1_distance(p_log: torch.Tensor, q_log: torch.Tensor) -> float:
    """Σ_x |p(x) − q(x)| between two distributions given as log-probabilities (range [0, 2]).

    Examples:
        >>> import torch, sculpting as sc
        >>> p, q = torch.tensor([0.5, 0.5]).log(), torch.tensor([0.9, 0.1]).log()
        >>> round(float(sc.l1_distance(p, q)), 6)
        0.8
    """
    if not (isinstance(p_log, torch.Tensor) and isinstance(q_log, torch.Tensor)):
        raise TypeError("l1_distance takes two tensors of log-probabilities")
    if p_log.shape != q_log.shape:
        raise ValueError(
            f"l1_distance of distributions of different shapes {tuple(p_log.shape)} and {tuple(q_log.shape)}"
        )
    return float((p_log.double().exp() - q_log.double().exp()).abs().sum())
