"""Twisted sequential Monte Carlo for composed diffusion models (``docs/smc.md``).

The target is the composition that the time classifier defines at the last noise level,

    target(x) ∝ p̄(x) · Q_ε(y | x)^γ,     p̄ = Σ_i ω_i p_i under the discretised reverse processes,

with ω slot 1's prior (the mixture weights). The chain runs in the scaled variable x̃ = x / m_t,
whose forward process is a pure noising with level σ̃_t = σ_t / m_t (VE: m_t = 1), on the noise
levels σ̃_0 > … > σ̃_{K−1} of the EDM sampler (ρ = 7, from σ̃_1 to σ̃_ε; ``steps`` = K levels).
Each step is the ancestral ("reverse diffusion") Gaussian transition

    x̃' = x̃ + Δ s̃(x̃) + √Δ z,   Δ = σ̃_k² − σ̃_{k+1}²,   s̃(x̃) = m_t s(m_t x̃, t)

(exact for Gaussian data; far more accurate per step than Euler–Maruyama on a uniform time grid),
and the output is the Tweedie mean x̃ + σ̃² s̃ at the last level, times m_t.

* Base transition: the mixture of the bases' own chains. Each particle carries running
  log-likelihoods ℓ_i = log ω_i + Σ log N(x̃_{k+1}; μ_i(x̃_k), Δ_k I) with μ_i = x̃ + Δ s̃_i, so its
  next-step density is the Gaussian mixture Σ_i softmax(ℓ)_i N(μ_i, Δ_k I) (exactly the path
  mixture, whatever the classifier).
* Proposal ``"guided"``: N(μ̄ + γ Δ ∇_x̃ log Q_t(y | m_t x̃), Δ_k I), μ̄ = Σ_i softmax(ℓ)_i μ_i (the guided
  step); ``"base"``: N(μ̄, Δ_k I).
* Twist ψ_k(x̃) = Q_{t_k}(y | m_{t_k} x̃)^γ; the classifier value at the new point is the next step's call.

Weight increment: p_base(x̃_{k+1} | x̃_k) ψ_{k+1}(x̃_{k+1}) / (q(x̃_{k+1} | x̃_k) ψ_k(x̃_k)); the first
weight is ψ_0(x̃_0) (x̃_0 from the prior), so Ẑ estimates E_p̄[Q_ε(y | x)^γ]. Langevin correctors
have no transition density and are left out. Costs per step: the m base scores and one classifier
forward–backward pass, as a guided step.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.sde import edm_noise_levels
from sculpting.diffusion.sde import noise_level_table as _noise_level_table
from sculpting.finite import check_finite
from sculpting.smc_core import Particles, SMCRun, check_smc_options, run_smc, sample_by_runs

__all__ = ["diffusion_smc", "diffusion_smc_runs", "smc_sample", "DIFFUSION_PROPOSALS"]

DIFFUSION_PROPOSALS = ("guided", "base")


def _log_q_and_grad(q, x, t, need_grad: bool):
    if q.composition.n_observations == 0:
        return torch.zeros(len(x), dtype=torch.float64, device=x.device), torch.zeros_like(x)
    if not need_grad:
        with torch.no_grad():
            return q.log_q_y(x, t).double(), None
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        lq = q.log_q_y(xg, t)
        (grad,) = torch.autograd.grad(lq.sum(), xg)
    return lq.detach().double(), grad


def _noise_grid(sde, steps: int, rho: float = 7.0):
    """(σ̃_k, t_k, m_{t_k}) for k < ``steps``: the EDM levels from σ̃_1 down to σ̃_ε (Python floats)."""

    t_tab, s_tab = _noise_level_table(sde)
    s_min, s_max = float(s_tab[0]), float(s_tab[-1])
    sig = edm_noise_levels(s_min, s_max, steps, rho)
    sig[0], sig[-1] = s_max, s_min
    i = torch.searchsorted(s_tab, sig).clamp(1, len(s_tab) - 1)
    w = (sig - s_tab[i - 1]) / (s_tab[i] - s_tab[i - 1])
    t = t_tab[i - 1] + w * (t_tab[i] - t_tab[i - 1])
    m = sde.mean_coef(t.float()).double()
    return sig.tolist(), t.tolist(), m.tolist()


def _gauss(x, mu, var):
    """``[B]`` log N(x; mu, var I) over the non-batch dimensions, in float64."""
    d = x[0].numel()
    r = (x - mu).reshape(len(x), -1).double()
    return -0.5 * (r * r).sum(1) / var - 0.5 * d * math.log(2 * math.pi * var)


def diffusion_smc(
    model,
    particles: int,
    generator=None,
    proposal: str = "guided",
    resample_threshold: float = 0.5,
    steps: int = 200,
    progress: bool = False,
) -> SMCRun:
    """One SMC run of ``particles`` particles of a :class:`~sculpting.diffusion.composition.ComposedScore`
    (module docs). ``states`` ``[N, *image_shape]``: the outputs (the last step's mean)."""
    tracker, out, stats = diffusion_smc_runs(
        model, particles, 1, generator, proposal, resample_threshold, steps, progress
    )
    return tracker.run(0, out, stats)


class ComposedParticles(Particles):
    """The particles of a composed score's twisted SMC (module docs), in x̃ = x / m_t on the EDM
    levels: per step the twist increment ψ(x_k) / ψ(x_{k−1}) (:meth:`weigh`), resampling, then the
    move by the guided (or base) proposal weighed by p̄(x' | x) / q(x' | x) (:meth:`move`); the last
    level ends with the noiseless Tweedie mean."""

    def __init__(self, model, total: int, proposal: str, steps: int, generator=None, progress: bool = False):
        self.model, self.proposal, self.steps, self.generator = model, proposal, steps, generator
        self.device = dev = model.device
        self.gdev = generator.device if generator is not None else dev
        self.sig, self.times, self.means = _noise_grid(model.sde, steps)
        self.x = model.sde.prior_sample((total, *model.image_shape), generator, device=self.gdev).to(dev)
        self.x = self.x / self.means[0]  # x̃
        comp = model.composition
        self.ell = comp.log_priors(torch.float64, dev)[0].expand(total, comp.n_bases).clone()
        self.log_psi = torch.zeros(total, dtype=torch.float64, device=dev)
        self.stats = {"steps": 0, "score_calls": 0, "classifier_rows": 0}
        self.out = self.x
        self.bar = tqdm(total=steps, disable=not progress, desc="SMC")

    def weigh(self, k: int):
        model, stats = self.model, self.stats
        self.bar.update(1)
        self.tb = torch.full((len(self.x),), self.times[k], device=self.device)
        last = k == self.steps - 1
        need_grad = self.proposal == "guided" and not last and model.gamma > 0
        lq, self.grad = _log_q_and_grad(model.q, self.means[k] * self.x, self.tb, need_grad=need_grad)
        if self.grad is not None:
            check_finite(self.grad, model.classifier, "guidance gradients ∇ log Q(y | x_t)")
        stats["classifier_rows"] += len(self.x) if model.composition.n_observations else 0
        new_psi = model.gamma * lq
        inc = new_psi - self.log_psi
        self.log_psi = new_psi
        return inc, None

    def may_resample(self, k: int) -> bool:
        return k != self.steps - 1

    def select(self, idx):
        self.x, self.ell, self.log_psi = self.x[idx], self.ell[idx], self.log_psi[idx]
        self.grad = self.grad[idx] if self.grad is not None else None

    def move(self, k: int):
        model, x, m_t, dev = self.model, self.x, self.means[k], self.device
        m = model.composition.n_bases
        scores = torch.stack([check_finite(b.score(m_t * x, self.tb), b, "scores") for b in model.bases]) * m_t
        self.stats["score_calls"] += len(model.bases)
        post = torch.softmax(self.ell, dim=1).to(x.dtype)  # [N, m]
        s_bar = (post.T.reshape(m, *((-1,) + (1,) * (x.dim() - 1))) * scores).sum(0)
        if k == self.steps - 1:
            self.out = m_t * (x + self.sig[k] ** 2 * s_bar)  # the Tweedie mean at the last level
            self.finished = True
            return None
        var = self.sig[k] ** 2 - self.sig[k + 1] ** 2
        mus = x[None] + var * scores
        mu_bar = x + var * s_bar
        mu_q = mu_bar if self.grad is None else mu_bar + model.gamma * var * m_t * self.grad
        x_new = mu_q + math.sqrt(var) * torch.randn(x.shape, generator=self.generator, device=self.gdev).to(dev)
        each = torch.stack([_gauss(x_new, mus[i], var) for i in range(m)], dim=1)  # [N, m]
        log_p = torch.logsumexp(torch.log_softmax(self.ell, dim=1) + each, dim=1)
        self.ell = self.ell + each
        self.x = x_new
        self.stats["steps"] += 1
        return log_p - _gauss(x_new, mu_q, var)

    def result(self):
        self.bar.close()
        return self.out, self.stats


def diffusion_smc_runs(
    model,
    particles: int,
    runs: int = 1,
    generator=None,
    proposal: str = "guided",
    resample_threshold: float = 0.5,
    steps: int = 200,
    progress: bool = False,
):
    """``runs`` independent SMC runs advanced together (one batch of runs·N images) by
    :func:`~sculpting.smc_core.run_smc`: (the finished :class:`~sculpting.smc_core.WeightTracker`,
    outputs ``[runs·N, *image_shape]``, stats)."""
    with torch.no_grad():
        threshold, proposal = _check_call(model, particles, resample_threshold, proposal, steps)
        state = ComposedParticles(model, particles * runs, proposal, steps, generator, progress)
        return run_smc(state, particles, runs, generator, threshold)


def _check_call(model, particles, resample_threshold, proposal, steps):
    """(threshold, proposal) of one SMC call, after checking its options."""
    if not isinstance(model, ComposedScore):
        raise TypeError(f"SMC samples a composition (sc.compose), got {type(model).__name__}")
    _, threshold = check_smc_options(particles, resample_threshold)
    if proposal == "auto":
        proposal = "guided"
    if proposal not in DIFFUSION_PROPOSALS:
        raise ValueError(f"unknown diffusion SMC proposal {proposal!r}; choose from {('auto',) + DIFFUSION_PROPOSALS}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer ≥ 2, got {steps!r}")
    return threshold, proposal


def runs_at_once(n_runs: int, particles: int, batch_size: int | None) -> int:
    """How many runs :func:`smc_sample` advances together: all of them, or ``batch_size`` images."""
    return n_runs if batch_size is None else max(1, batch_size // particles)


def smc_sample(
    model,
    n: int,
    steps: int = 200,
    generator=None,
    progress: bool = False,
    particles: int = 64,
    proposal: str = "auto",
    resample_threshold: float = 0.5,
    batch_size: int | None = None,
) -> torch.Tensor:
    """``[n, *image_shape]`` equal-weight samples from ⌈n / N⌉ independent runs of N = ``particles``
    (:func:`diffusion_smc`), each ending with a multinomial draw of N from its final weights; the
    runs advance together, ``batch_size`` images at a time (default: all runs at once)."""
    threshold, proposal = _check_call(model, particles, resample_threshold, proposal, steps)
    return sample_by_runs(
        lambda r: ComposedParticles(model, particles * r, proposal, steps, generator, progress),
        n,
        particles,
        runs_at_once(math.ceil(n / particles), particles, batch_size),
        generator,
        threshold,
    )
