"""Sculpting diffusion models with no classifier: the bases' own path likelihoods
(``docs/classifier_free.md``).

The chain runs in the scaled variable x̃ = x / m_t on the noise levels σ̃_0 > … > σ̃_{K−1} of
:mod:`sculpting.diffusion.smc`. Every base's step from x̃ is Gaussian with the same variance,
N(μ_i, v I), μ_i = x̃ + v s̃_i(x̃), v = σ̃_k² − σ̃_{k+1}², so each particle can carry the bases'
log-likelihoods L_i of its own path. Under the slot-j prior ω^{(j)} the posterior of "which base's
chain made this path" is ρ^{(j)} = softmax(log ω^{(j)} + L), and the **path composition** is

    Π(path) ∝ P̄(path) · Π_j ρ^{(j)}_{y_j}(path)^γ,      P̄ = Σ_i ω^{(1)}_i P_i.

Per step, with the m scores (no classifier, no backward pass):

1. ρ^{(j)} for each observed slot and slot 1; s̄^{(j)} = Σ_i ρ^{(j)}_i s̃_i;
2. the proposal score s_q = s̄^{(1)} + γ Σ_j (s̃_{y_j} − s̄^{(j)}); x̃' = x̃ + v s_q + √v z;
3. e_i = log q(x̃' | x̃) − log p_i(x̃' | x̃) = √v ⟨z, s_q − s̃_i⟩ + (v/2) ‖s_q − s̃_i‖² (float64: this
   form has no d/2 · log 2πv terms to cancel);
4. log w += LSE_i(log ρ^{(1)}_i − e_i) + γ Σ_j [ −e_{y_j} − LSE_i(log ρ^{(j)}_i − e_i) ]
   (Π's growth over the proposal's density), then L_i −= e_i (L is kept relative to q: only
   differences between bases enter ρ);
5. resample when ESS < τ N.

The run starts from one prior draw shared by all bases (L = 0) with log w = γ Σ_j log ω^{(j)}_{y_j};
the last, noiseless Tweedie step x = m_t (x̃ + σ̃² s̄^{(1)}) has no density and stays out of L.
With one observation and γ = 1 the proposal is the observed base's own step and every weight stays
equal; with none (the mixture) each particle steps with one base drawn from ρ^{(1)} (the exact
transition of P̄), so every weight is 1.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from sculpting.describe import composition_text
from sculpting.diffusion.schedulers import check_schedule
from sculpting.diffusion.sde import VPSDE
from sculpting.diffusion.smc import _noise_grid, runs_at_once
from sculpting.finite import check_finite
from sculpting.smc_core import Particles, SMCRun, check_smc_options, run_smc, sample_by_runs

__all__ = [
    "DiffusionPathComposition",
    "kernel_log_ratios",
    "check_path_proposal",
    "path_smc_runs",
    "path_smc",
    "path_smc_sample",
    "mixture_paths",
]


class DiffusionPathComposition:
    """The composition that diffusion bases define by their own path likelihoods (module docs).

    Args:
        bases: m score models of one SDE and image shape (``score(x, t)``, ``sde``, ``image_shape``).
        composition: the :class:`~sculpting.algebra.Composition`.
        gamma: γ, the weight of the observations (1: the composition itself).

    Sampled by SMC only (``sc.sample(model, n, sampler="smc" or "auto", particles=N)``,
    ``sc.smc(model, N)``): the target lives on paths, no single score field exists.
    """

    targets = "path space: Π ∝ P̄ Π_j ρ_j^γ; x-space when the chains are exact reversals of one noising"

    def __init__(self, bases, composition, gamma: float = 1.0):
        if len(bases) != composition.n_bases:
            raise ValueError(f"a composition of {composition.n_bases} bases got {len(bases)} base models")
        self.bases, self.composition, self.gamma = list(bases), composition, float(gamma)
        self.sde, self.image_shape = bases[0].sde, tuple(bases[0].image_shape)

    @property
    def device(self) -> torch.device:
        return getattr(self.bases[0], "device", torch.device("cpu"))  # host: fallback for a model without .device

    def __repr__(self) -> str:
        return (
            f"DiffusionPathComposition(diffusion: {composition_text(self.composition, self.bases)}; "
            f"γ={self.gamma:g}, no classifier: {self.targets})"
        )


def kernel_log_ratios(z: torch.Tensor, var: float, s_q: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``[N, m]`` e_i = log q(x̃' | x̃) − log p_i(x̃' | x̃) for x̃' = x̃ + v s_q + √v z, from the noise
    ``z`` ``[N, *D]``, the proposal score ``s_q`` ``[N, *D]`` and the bases' scores ``[m, N, *D]``:
    √v ⟨z, s_q − s̃_i⟩ + (v/2) ‖s_q − s̃_i‖², in float64."""
    d = (s_q[None] - scores).flatten(2).double()  # [m, N, D]
    zf = z.flatten(1).double()[None]
    return (math.sqrt(var) * (zf * d).sum(-1) + 0.5 * var * (d * d).sum(-1)).T


def check_path_proposal(proposal: str, twist: str = "paths") -> None:
    """A path composition proposes from its path-posterior score and weighs by its path twist."""
    if proposal != "auto" or twist not in ("classifier", "paths"):
        raise ValueError(
            f"proposal={proposal!r}, twist={twist!r}: a path composition proposes from its path-posterior score "
            "and weighs by its path twist (docs/classifier_free.md): leave proposal='auto', twist='paths'"
        )


def _check(model):
    if not isinstance(model, DiffusionPathComposition):
        raise TypeError(f"path SMC samples a DiffusionPathComposition, got {type(model).__name__}")


@torch.no_grad()
def path_smc_runs(
    model,
    particles: int,
    runs: int = 1,
    generator=None,
    resample_threshold: float = 0.5,
    steps: int = 200,
    progress: bool = False,
    scheduler=None,
):
    """``runs`` independent path-composition SMC runs advanced together: (the finished
    :class:`~sculpting.smc_core.WeightTracker`, outputs ``[runs·N, *image_shape]``, stats).
    ``scheduler``: a diffusers ``DDPMScheduler`` whose own Gaussian kernel the chains follow
    (``steps`` of its timesteps) instead of the package's EDM-level steps."""
    tracker, out, stats, _ = _runs(
        model, particles, runs, generator, resample_threshold, steps, progress, True, scheduler
    )
    return tracker, out, stats


@torch.no_grad()
def mixture_paths(model, n: int, generator=None, steps: int = 200, progress: bool = False, scheduler=None):
    """(outputs ``[n, *image_shape]``, path log-likelihoods ``[n, m]``) of ``n`` chains of the slot-1
    mixture P̄ = Σ_i ω^{(1)}_i P_i (each step by one base drawn from ρ^{(1)}, every weight 1), each
    with every base's L_i of its path (relative to the proposal: only differences enter). With
    :meth:`~sculpting.algebra.Composition.path_log_weights` they estimate the path composition's own
    target by importance sampling, independently of its SMC."""
    _, out, _, ell = _runs(model, n, 1, generator, 0.0, steps, progress, False, scheduler)
    return out, ell


class _GridKernel:
    """The package's own chain: x̃ = x / m_t on the EDM levels σ̃_0 > … > σ̃_{K−1} of
    :mod:`sculpting.diffusion.smc`; base i steps by N(x̃ + v s̃_i, v I), v = σ̃_k² − σ̃_{k+1}²."""

    def __init__(self, sde, steps: int):
        self.sde, self.steps = sde, steps
        self.sig, self.times, self.means = _noise_grid(sde, steps)

    def prior(self, shape, generator, gdev, dev) -> torch.Tensor:
        return self.sde.prior_sample(shape, generator, device=gdev).to(dev) / self.means[0]  # x̃

    def scores(self, bases, x, k: int) -> torch.Tensor:
        """``[m, N, *D]`` s̃_i: base i's step mean is x̃ + v s̃_i."""
        tb = torch.full((len(x),), self.times[k], device=x.device)
        m_t = self.means[k]
        return torch.stack([check_finite(b.score(m_t * x, tb), b, "scores") for b in bases]) * m_t

    def var(self, k: int) -> float:
        return self.sig[k] ** 2 - self.sig[k + 1] ** 2

    def output(self, x, s_bar, k: int) -> torch.Tensor:
        return self.means[k] * (x + self.sig[k] ** 2 * s_bar)  # the Tweedie mean at the last level


class _DDPMKernel:
    """A diffusers ``DDPMScheduler``'s own kernel: at timestep t (previous t'), base i's step is
    N(μ_i, v I) with x̂_0,i = (x − √(1 − ᾱ_t) ε_i) / √ᾱ_t (clipped as the scheduler clips),
    μ_i = √ᾱ_t' β_t / (1 − ᾱ_t) · x̂_0,i + √α_t (1 − ᾱ_t') / (1 − ᾱ_t) · x, β_t = 1 − ᾱ_t / ᾱ_t',
    v = (1 − ᾱ_t') / (1 − ᾱ_t) · β_t ("fixed_small") or β_t ("fixed_large"); ε_i = −σ_t s_i(x, t).
    The step's "scores" are (μ_i − x) / v, so the path SMC's algebra is the grid kernel's; the last
    step (t' = −1, v = 0) returns the slot-1 mixture of the means, kept out of the likelihoods."""

    def __init__(self, model, scheduler, steps: int):
        c = scheduler.config
        name = type(scheduler).__name__
        if not isinstance(model.sde, VPSDE):
            raise ValueError(f"{name} samples variance-preserving bases; these have a {type(model.sde).__name__}")
        if not all(hasattr(scheduler, a) for a in ("alphas_cumprod", "previous_timestep")) or c.get(
            "variance_type", "fixed_small"
        ) not in ("fixed_small", "fixed_large"):
            raise ValueError(
                f"{name}: a path composition weighs each step by its Gaussian kernel, which a scheduler "
                "without noise (DDIM, DPM-Solver, Euler, ...) or with a learned variance does not have; "
                "use a DDPMScheduler (variance_type 'fixed_small' or 'fixed_large') or the package's own "
                "steps (scheduler=None)"
            )
        if c.get("prediction_type", "epsilon") != "epsilon" or c.get("thresholding"):
            raise ValueError(f"{name}: build it with prediction_type='epsilon' and thresholding=False")
        check_schedule(model, scheduler)
        n_train = int(c.get("num_train_timesteps", 1000))
        if not 2 <= steps <= n_train:
            raise ValueError(f"steps must lie in [2, {n_train}] (the scheduler's num_train_timesteps), got {steps}")
        scheduler.set_timesteps(steps)
        self.sde, self.n_train, self.steps = model.sde, n_train, steps
        self.clip = float(c.get("clip_sample_range", 1.0)) if c.get("clip_sample") else None
        ab = scheduler.alphas_cumprod.double()
        large = c.get("variance_type", "fixed_small") == "fixed_large"
        self.rows = []  # (t, √ᾱ_t, √(1 − ᾱ_t), c_0, c_x, v) per step
        for t in scheduler.timesteps.tolist():
            prev = int(scheduler.previous_timestep(t))
            a_t, a_p = float(ab[t]), (float(ab[prev]) if prev >= 0 else 1.0)
            beta = 1.0 - a_t / a_p
            c0, cx = math.sqrt(a_p) * beta / (1.0 - a_t), math.sqrt(1.0 - beta) * (1.0 - a_p) / (1.0 - a_t)
            v = beta if large else max((1 - a_p) / (1 - a_t) * beta, 1e-20)
            self.rows.append((t, math.sqrt(a_t), math.sqrt(1.0 - a_t), c0, cx, v if prev >= 0 else 0.0))
        self.init_sigma = float(scheduler.init_noise_sigma)

    def prior(self, shape, generator, gdev, dev) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=gdev).to(dev) * self.init_sigma

    def scores(self, bases, x, k: int) -> torch.Tensor:
        """``[m, N, *D]`` (μ_i − x) / v (at the last step μ_i − x)."""
        t, sa, s1a, c0, cx, v = self.rows[k]
        tc = torch.full((len(x),), t / (self.n_train - 1), device=x.device).clamp(min=self.sde.eps)
        std = self.sde.marginal_std(tc).to(x).reshape(-1, *[1] * (x.dim() - 1))
        out = []
        for b in bases:
            eps = -std * check_finite(b.score(x, tc), b, "scores")
            x0 = (x - s1a * eps) / sa
            if self.clip is not None:
                x0 = x0.clamp(-self.clip, self.clip)
            out.append(c0 * x0 + (cx - 1.0) * x)
        offsets = torch.stack(out)
        return offsets if v == 0.0 else offsets / v

    def var(self, k: int) -> float:
        return self.rows[k][5]

    def output(self, x, s_bar, k: int) -> torch.Tensor:
        return x + s_bar


class PathParticles(Particles):
    """The particles of the diffusion path SMC (module docs): each step scores the particles under
    every base, moves them by the proposal score and weighs them by the growth of Π over the
    proposal's density (:meth:`weigh`); the last step returns the slot-1 mixture's output and stays
    out of the path likelihoods."""

    def __init__(self, model, total: int, kernel, generator=None, observe: bool = True, progress: bool = False):
        comp = model.composition
        self.model, self.kernel, self.generator = model, kernel, generator
        self.device = dev = model.device
        self.gdev = generator.device if generator is not None else dev
        self.x = kernel.prior((total, *model.image_shape), generator, self.gdev, dev)
        self.priors = comp.log_priors(torch.float64, dev)  # [slots, m]
        self.obs = [y - 1 for y in comp.observations] if observe else []
        self.log_w0 = model.gamma * float(sum(self.priors[j, y] for j, y in enumerate(self.obs))) if self.obs else 0.0
        self.ell = torch.zeros(total, comp.n_bases, dtype=torch.float64, device=dev)  # L_i − log q, per particle
        self.stats = {"steps": 0, "score_calls": 0}
        self.out = self.x
        self.bar = tqdm(total=kernel.steps, disable=not progress, desc="path SMC")

    def weigh(self, k: int):
        model, x, priors, obs, gamma, dev = self.model, self.x, self.priors, self.obs, self.model.gamma, self.device
        m, total = model.composition.n_bases, len(x)
        shape = (m, -1) + (1,) * (x.dim() - 1)
        self.bar.update(1)
        scores = self.kernel.scores(model.bases, x, k)
        self.stats["score_calls"] += m
        log_rho1 = torch.log_softmax(priors[0] + self.ell, dim=1)  # [N, m]
        s_bar1 = (log_rho1.exp().T.to(x.dtype).reshape(shape) * scores).sum(0)
        if k == self.kernel.steps - 1:
            self.out = self.kernel.output(x, s_bar1, k)
            return None
        var = self.kernel.var(k)
        z = torch.randn(x.shape, generator=self.generator, device=self.gdev).to(dev)
        if not obs:  # the mixture: each particle steps with one base drawn from ρ⁽¹⁾, weight 1
            pick = torch.multinomial(log_rho1.exp().float(), 1, generator=self.generator).squeeze(1).to(dev)
            s_q = scores[pick, torch.arange(total, device=dev)]
            self.x = x + var * s_q + math.sqrt(var) * z
            e = kernel_log_ratios(z, var, s_q, scores)  # the path likelihoods still move
            inc = torch.zeros(total, dtype=torch.float64, device=dev)
        else:
            # slot 1 is the first observed slot: its posterior and mean score are the mixture's
            log_rho = [log_rho1] + [torch.log_softmax(priors[j] + self.ell, dim=1) for j in range(1, len(obs))]
            s_q = s_bar1.clone()
            for j, y in enumerate(obs):
                s_bar = s_bar1 if j == 0 else (log_rho[j].exp().T.to(x.dtype).reshape(shape) * scores).sum(0)
                s_q = s_q + gamma * (scores[y] - s_bar)
            self.x = x + var * s_q + math.sqrt(var) * z
            e = kernel_log_ratios(z, var, s_q, scores)  # [N, m]
            inc = torch.logsumexp(log_rho1 - e, dim=1)
            for j, y in enumerate(obs):
                inc = inc + gamma * (-e[:, y] - torch.logsumexp(log_rho[j] - e, dim=1))
        self.ell = self.ell - e
        self.stats["steps"] += 1
        return inc, None

    def may_resample(self, k: int) -> bool:
        return k < self.kernel.steps - 2

    def select(self, idx):
        self.x, self.ell = self.x[idx], self.ell[idx]

    def result(self):
        self.bar.close()
        return self.out, self.stats


def _kernel(model, particles, resample_threshold, steps, scheduler):
    """(the chain's kernel, the resampling threshold) after checking a call's options."""
    _check(model)
    _, threshold = check_smc_options(particles, resample_threshold)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer ≥ 2, got {steps!r}")
    kernel = _GridKernel(model.sde, steps) if scheduler is None else _DDPMKernel(model, scheduler, steps)
    return kernel, threshold


def _runs(model, particles, runs, generator, resample_threshold, steps, progress, observe: bool, scheduler=None):
    kernel, threshold = _kernel(model, particles, resample_threshold, steps, scheduler)
    state = PathParticles(model, particles * runs, kernel, generator, observe, progress)
    tracker, out, stats = run_smc(state, particles, runs, generator, threshold)
    return tracker, out, stats, state.ell


def path_smc(
    model,
    particles: int,
    generator=None,
    resample_threshold: float = 0.5,
    steps: int = 200,
    progress: bool = False,
    scheduler=None,
) -> SMCRun:
    """One path-composition SMC run (an :class:`~sculpting.smc_core.SMCRun`; ``states``: the outputs)."""
    tracker, out, stats = path_smc_runs(model, particles, 1, generator, resample_threshold, steps, progress, scheduler)
    return tracker.run(0, out, stats)


def path_smc_sample(
    model,
    n: int,
    steps: int = 200,
    generator=None,
    progress: bool = False,
    particles: int = 64,
    resample_threshold: float = 0.5,
    batch_size: int | None = None,
    scheduler=None,
) -> torch.Tensor:
    """``[n, *image_shape]`` equal-weight samples from ⌈n / N⌉ independent runs of N particles, each
    ending with a multinomial draw of N from its final weights (``batch_size`` images at a time;
    ``scheduler``: a ``DDPMScheduler`` whose kernel the chains follow)."""
    kernel, threshold = _kernel(model, particles, resample_threshold, steps, scheduler)
    return sample_by_runs(
        lambda r: PathParticles(model, particles * r, kernel, generator, True, progress),
        n,
        particles,
        runs_at_once(math.ceil(n / particles), particles, batch_size),
        generator,
        threshold,
    )
