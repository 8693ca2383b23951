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

from sculpting.infrastructure.bounds import memory_limit

__all__ = [
    "SMCRun",
    "WeightTracker",
    "systematic_resample",
    "effective_sample_size",
    "multinomial_pick",
    "draw_from_runs",
    "check_smc_options",
    "Particles",
    "run_smc",
]


def effective_sample_size(log_w: torch.Tensor):
    """ESS = (Σ w)² / Σ w² of ``[N]`` log-weights (a float: N where they are equal, 1 where one
    dominates), or of ``[R, N]`` (a ``[R]`` tensor, one per run)."""
    lw = log_w.double()
    ess = torch.exp(2 * torch.logsumexp(lw, -1) - torch.logsumexp(2 * lw, -1))
    return float(ess) if lw.dim() == 1 else ess


def systematic_resample(log_w: torch.Tensor, generator=None) -> torch.Tensor:
    """Ancestor indices by systematic resampling: ``[N]`` log-weights → ``[N]`` indices, or
    ``[R, N]`` → ``[R, N]`` (each row on its own). One uniform u ~ U[0, 1/N) per row, positions
    u + k/N; ancestor i is taken ⌊N w_i⌋ or ⌈N w_i⌉ times."""
    rows = log_w.reshape(-1, log_w.shape[-1])
    r, n = rows.shape
    w = torch.softmax(rows.double(), -1)
    gdev = generator.device if generator is not None else w.device
    u = torch.rand(r, 1, generator=generator, dtype=torch.float64, device=gdev).to(w.device)
    pos = (u + torch.arange(n, dtype=torch.float64, device=w.device)) / n
    cdf = torch.cumsum(w, -1)
    cdf[:, -1] = 1.0 + 1e-12  # round-off: the last position always finds an ancestor
    return torch.searchsorted(cdf, pos).clamp(max=n - 1).reshape(log_w.shape)


def multinomial_pick(log_w: torch.Tensor, k: int, generator=None) -> torch.Tensor:
    """``[k]`` indices drawn i.i.d. from the normalised ``[N]`` log-weights."""
    w = torch.softmax(log_w.double(), 0).float()
    return torch.multinomial(w, k, replacement=True, generator=generator)


def draw_from_runs(log_w: torch.Tensor, generator=None) -> torch.Tensor:
    """``[R·N]`` flat particle indices: for each of R runs, a multinomial draw of N from its
    ``[R, N]`` log-weights (equal-weight samples, run by run)."""
    r, n = log_w.shape
    w = torch.softmax(log_w.double(), -1).float()
    pick = torch.multinomial(w, n, replacement=True, generator=generator)  # [R, N]
    return (pick + torch.arange(r, device=pick.device)[:, None] * n).reshape(-1)


def sample_by_runs(
    make, n: int, particles: int, runs_per_batch: int, generator=None, threshold: float = 0.5
) -> torch.Tensor:
    """``[n, *S]`` equal-weight samples from ⌈n / N⌉ independent runs of N = ``particles``, advanced
    ``runs_per_batch`` at a time by :func:`run_smc` on ``make(r)`` (the :class:`Particles` of r runs),
    each run ending with a multinomial draw of N from its final weights."""
    out, left = [], math.ceil(n / particles)
    with torch.no_grad():
        while left > 0:
            r = min(runs_per_batch, left)
            tracker, states, _ = run_smc(make(r), particles, r, generator, threshold)
            out.append(states[draw_from_runs(tracker.log_w, generator).to(states.device)])
            left -= r
    return torch.cat(out)[:n]


#: the most particles one SMC run takes (its weights alone: 8 bytes each per run)
MAX_PARTICLES = 2**22


def check_smc_options(particles, resample_threshold) -> tuple[int, float]:
    """Validated (particles, resample_threshold): an integer ≥ 1 and a number in [0, 1]."""
    if isinstance(particles, bool) or not isinstance(particles, int):
        raise TypeError(f"particles must be a positive integer, got {particles!r}")
    if not 1 <= particles <= MAX_PARTICLES:
        raise ValueError(f"particles must lie in [1, {MAX_PARTICLES}], got {particles}")
    if isinstance(resample_threshold, bool) or not isinstance(resample_threshold, (int, float)):
        raise TypeError(f"resample_threshold must be a number in [0, 1], got {resample_threshold!r}")
    if not 0.0 <= float(resample_threshold) <= 1.0:
        raise ValueError(f"resample_threshold must lie in [0, 1], got {resample_threshold}")
    return particles, float(resample_threshold)


class WeightTracker:
    """Accumulates the log-weights of R independent runs of N particles each (particle j of run r
    is row r·N + j of the caller's tensors), resamples each run by its own ESS and keeps its log Ẑ.

    ``add(increment, rows)`` adds ``[K]`` log-increments to the particles ``rows`` (flat indices;
    the others, e.g. finished GFlowNet trajectories, keep theirs); ``maybe_resample(step)`` returns
    flat ancestor indices ``[R·N]`` (identity in the runs that did not resample; the caller
    reorders its particle state with them) or ``None``.
    """

    def __init__(self, n: int, threshold: float, generator=None, device="cpu", log_w0=0.0, runs: int = 1):
        self.n, self.runs, self.threshold, self.generator = n, runs, threshold, generator
        self.log_w = torch.zeros(runs, n, dtype=torch.float64, device=device)
        self.log_w += (
            torch.as_tensor(log_w0, dtype=torch.float64, device=device).reshape(-1, 1)
            if isinstance(log_w0, torch.Tensor)
            else float(log_w0)
        )
        self.log_z = torch.zeros(runs, dtype=torch.float64, device=device)
        self.ess: list = []  # per step: [R] tensor
        self.resampled: list = []  # per step: [R] bool tensor

    def add(self, increment: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        inc = increment.double().to(self.log_w.device)
        flat = self.log_w.view(-1)
        if rows is None:
            flat += inc
        else:
            flat[rows] += inc

    def _log_mean(self, which) -> torch.Tensor:
        lw = self.log_w[which]
        return torch.logsumexp(lw, -1) - math.log(self.n)

    def maybe_resample(self, step: int, allow: bool = True) -> torch.Tensor | None:
        """Record each run's ESS after ``step``; resample the runs whose ESS is below
        ``threshold · N`` (when ``allow``) and return the flat ancestors, or None."""
        dead = torch.isneginf(self.log_w).all(-1)
        if bool(dead.any()):
            raise FloatingPointError(
                "every particle of a run has weight 0: the proposal put all particles where "
                "the target has no mass (a classifier or proposal with the wrong support)"
            )
        ess = effective_sample_size(self.log_w)
        self.ess.append(ess)
        which = (ess < self.threshold * self.n) if allow else torch.zeros_like(ess, dtype=torch.bool)
        self.resampled.append(which)
        if not bool(which.any()):
            return None
        self.log_z[which] += self._log_mean(which)
        idx = systematic_resample(self.log_w[which], self.generator)  # [G, N]
        base = torch.arange(self.runs * self.n, device=self.log_w.device).reshape(self.runs, self.n)
        ranks = which.nonzero().squeeze(1)
        base[ranks] = idx + (ranks * self.n)[:, None]
        self.log_w[which] = 0.0
        return base.reshape(-1)

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised log-weights ``[R, N]``, log Ẑ ``[R]``) at the end of the runs."""
        self.log_z = self.log_z + self._log_mean(slice(None))
        return self.log_w - torch.logsumexp(self.log_w, -1, keepdim=True), self.log_z

    def run(self, r: int, states: torch.Tensor, stats: dict) -> "SMCRun":
        """Run ``r``'s :class:`SMCRun` (after :meth:`finish`), its particles ``states[r·N:(r+1)·N]``."""
        log_w = self.log_w[r] - torch.logsumexp(self.log_w[r], 0)
        return SMCRun(
            states[r * self.n : (r + 1) * self.n],
            log_w,
            float(self.log_z[r]),
            [float(e[r]) for e in self.ess],
            [t for t, w in enumerate(self.resampled) if bool(w[r])],
            stats,
        )


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
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"draw(k): k must be a positive integer, got {k!r}")

        need = 2 * k * (self.states[0].numel() * self.states[0].element_size() + 8)
        if need > memory_limit():
            raise ValueError(
                f"draw({k}) would take about {need / 2**30:.1f} GB, more than the "
                f"{memory_limit() / 2**30:.1f} GB allowed (a quarter of this machine's memory); draw "
                "fewer samples at a time"
            )
        return self.states[multinomial_pick(self.log_weights, k, generator).to(self.states.device)]


class Particles:
    """What :func:`run_smc` drives: R runs of N particles of one sampler, their twist and proposal.

    Per step t the driver asks :meth:`weigh` for the log-weight increments ``[K]`` of the rows it
    returns (None: all rows), lets the :class:`WeightTracker` resample where :meth:`may_resample`
    allows (:meth:`select` reorders the particles by the ancestors), then calls :meth:`move`, which
    may add increments of its own; the run ends when :meth:`weigh` returns None or :attr:`finished`
    is set. A proposal that looks ahead (the fully adapted GFlowNet path SMC) weighs before it moves,
    so resampling precedes its move; one that does not moves inside :meth:`weigh`.

    Subclasses set ``device``, ``log_w0`` (the runs' initial log-weight) and ``stats``."""

    device = "cpu"
    log_w0 = 0.0
    finished = False

    def weigh(self, t: int):  # -> (increment [K], rows [K] or None) | None
        raise NotImplementedError

    def may_resample(self, t: int) -> bool:
        return True

    def select(self, idx: torch.Tensor) -> None:
        raise NotImplementedError

    def move(self, t: int):  # -> increment [R·N] | None
        return None

    def result(self):  # -> (outputs [R·N, *S], stats)
        raise NotImplementedError


def run_smc(particles: Particles, n: int, runs: int, generator, threshold: float):
    """One SMC driver for every sampler: ``runs`` independent runs of ``n`` particles advanced
    together (:class:`Particles`); returns (the finished :class:`WeightTracker`, outputs, stats)."""
    tracker = WeightTracker(n, threshold, generator, particles.device, log_w0=particles.log_w0, runs=runs)
    t = 0
    while True:
        step = particles.weigh(t)
        if step is None:
            break
        tracker.add(*step)
        idx = tracker.maybe_resample(t, allow=particles.may_resample(t))
        if idx is not None:
            particles.select(idx)
        inc = particles.move(t)
        if inc is not None:
            tracker.add(inc)
        if particles.finished:
            break
        t += 1
    outputs, stats = particles.result()
    tracker.finish()
    return tracker, outputs, stats
