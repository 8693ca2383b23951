"""Sequential Monte Carlo bookkeeping shared by both model families (``docs/smc.md``).

A run moves N particles one step at a time; each step multiplies a particle's weight by its
*increment* (for the GFlowNet and diffusion cases see :mod:`sculpting.gflownet.smc` and
:mod:`sculpting.diffusion.smc`)

    w ← w · p_base(next | current) ψ(next) / ( q(next | current) ψ(current) ),

and the particles are resampled (systematic resampling) when the effective sample size

    ESS = (Σ_i w_i)² / Σ_i w_i²

falls below ``resample_threshold · N``. Between resamplings the **un-normalised** log-weights
accumulate; a resampling closes an *epoch* and adds log mean_i w_i to the running estimate

    log Ẑ = Σ_epochs log( (1/N) Σ_i w_i ),

whose exponential is an unbiased estimate of the target's normalising constant. After a
resampling every weight is 1 (log-weight 0). :class:`SMCRun` is what one run returns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = ["SMCRun", "WeightTracker", "systematic_resample", "effective_sample_size", "multinomial_pick",
           "check_smc_options"]


def effective_sample_size(log_w: torch.Tensor) -> float:
    """ESS = (Σ w)² / Σ w² of ``[N]`` log-weights (N where they are equal, 1 where one dominates)."""
    lw = log_w.double()
    return float(torch.exp(2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)))


def systematic_resample(log_w: torch.Tensor, generator=None) -> torch.Tensor:
    """``[N]`` ancestor indices by systematic resampling of ``[N]`` log-weights: one uniform
    u ~ U[0, 1/N), positions u + k/N, each ancestor i taken ⌊N w_i⌋ or ⌈N w_i⌉ times."""
    n = len(log_w)
    w = torch.softmax(log_w.double(), 0)
    gdev = generator.device if generator is not None else w.device
    u = torch.rand(1, generator=generator, dtype=torch.float64, device=gdev).to(w.device)
    pos = (u + torch.arange(n, dtype=torch.float64, device=w.device)) / n
    cdf = torch.cumsum(w, 0)
    cdf[-1] = 1.0 + 1e-12  # round-off: the last position always finds an ancestor
    return torch.searchsorted(cdf, pos).clamp(max=n - 1)


def multinomial_pick(log_w: torch.Tensor, k: int, generator=None) -> torch.Tensor:
    """``[k]`` indices drawn i.i.d. from the normalised ``[N]`` log-weights."""
    w = torch.softmax(log_w.double(), 0).float()
    return torch.multinomial(w, k, replacement=True, generator=generator)


def check_smc_options(particles, resample_threshold) -> tuple[int, float]:
    """Validated (particles, resample_threshold): an integer ≥ 1 and a number in [0, 1]."""
    if isinstance(particles, bool) or not isinstance(particles, int):
        raise TypeError(f"particles must be a positive integer, got {particles!r}")
    if particles < 1:
        raise ValueError(f"particles must be ≥ 1, got {particles}")
    if isinstance(resample_threshold, bool) or not isinstance(resample_threshold, (int, float)):
        raise TypeError(f"resample_threshold must be a number in [0, 1], got {resample_threshold!r}")
    if not 0.0 <= float(resample_threshold) <= 1.0:
        raise ValueError(f"resample_threshold must lie in [0, 1], got {resample_threshold}")
    return particles, float(resample_threshold)


class WeightTracker:
    """Accumulates log-weights of N particles, resamples by ESS and keeps log Ẑ.

    ``add(increment, rows)`` adds ``[K]`` log-increments to the particles ``rows`` (the others,
    e.g. finished GFlowNet trajectories, keep theirs); ``maybe_resample(step)`` returns ancestor
    indices ``[N]`` (the caller reorders its particle state with them) or ``None``.
    """

    def __init__(self, n: int, threshold: float, generator=None, device="cpu", log_w0: float = 0.0):
        self.n, self.threshold, self.generator = n, threshold, generator
        self.log_w = torch.full((n,), float(log_w0), dtype=torch.float64, device=device)
        self.log_z = 0.0
        self.ess: list[float] = []
        self.resampled_at: list[int] = []

    def add(self, increment: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        inc = increment.double().to(self.log_w.device)
        if rows is None:
            self.log_w += inc
        else:
            self.log_w[rows] += inc

    def _close_epoch(self) -> None:
        if bool(torch.isneginf(self.log_w).all()):
            self.log_z = -math.inf
        else:
            self.log_z += float(torch.logsumexp(self.log_w, 0)) - math.log(self.n)

    def maybe_resample(self, step: int, allow: bool = True) -> torch.Tensor | None:
        """Record the ESS after ``step``; resample (and return the ancestors) when it is below
        ``threshold · N`` and ``allow``."""
        if bool(torch.isneginf(self.log_w).all()):
            raise FloatingPointError("every particle has weight 0: the proposal put all particles where the "
                                     "target has no mass (a classifier or proposal with the wrong support)")
        ess = effective_sample_size(self.log_w)
        self.ess.append(ess)
        if not allow or ess >= self.threshold * self.n:
            return None
        self._close_epoch()
        idx = systematic_resample(self.log_w, self.generator)
        self.log_w = torch.zeros_like(self.log_w)
        self.resampled_at.append(step)
        return idx

    def finish(self) -> tuple[torch.Tensor, float]:
        """(normalised log-weights ``[N]``, log Ẑ) at the end of the run."""
        self._close_epoch()
        return self.log_w - torch.logsumexp(self.log_w, 0), self.log_z


@dataclass
class SMCRun:
    """One SMC run of N particles.

    states: ``[N, *S]`` the particles at the end (GFlowNet terminal states, or images).
    log_weights: ``[N]`` normalised log-weights (logsumexp = 0).
    log_z: log Ẑ, the log normalising-constant estimate (its exponential is unbiased).
    ess: the ESS after every step (before any resampling at that step), a list of floats.
    resampled_at: the steps (0-based) after which the particles were resampled.
    stats: counters (classifier rows scored per kind, steps).
    """

    states: torch.Tensor
    log_weights: torch.Tensor
    log_z: float
    ess: list
    resampled_at: list
    stats: dict = field(default_factory=dict)

    @property
    def particles(self) -> int:
        return len(self.log_weights)

    @property
    def final_ess(self) -> float:
        return effective_sample_size(self.log_weights)

    def draw(self, k: int | None = None, generator=None) -> torch.Tensor:
        """``[k, *S]`` equal-weight samples: a multinomial draw from the final weights (k = N by default)."""
        k = self.particles if k is None else k
        return self.states[multinomial_pick(self.log_weights, k, generator).to(self.states.device)]
