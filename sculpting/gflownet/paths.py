"""Sculpting GFlowNets with no classifier: the bases' own path likelihoods (``docs/classifier_free.md``).

A GFlowNet that is generating a trajectory τ = (s_0, a_0, …, s_t) knows each base's likelihood of
it: L_i(τ) = Σ_{k<t} log P_F^i(a_k | s_k). Under the slot-j prior ω^{(j)}, the posterior of "which
base generated τ" is ρ^{(j)}(τ) = softmax(log ω^{(j)} + L(τ)). The **path composition** of bases
P_1..P_m for the observations y_1..y_n is the law on complete trajectories

    Π(τ) ∝ P̄(τ) · Π_j ρ^{(j)}_{y_j}(τ),        P̄ = Σ_i ω^{(1)}_i P_i   (the slot-1 mixture);

its terminal marginal is the x-space composition p̄(x) Π_j p(y_j | x) exactly when every base's
path law factorises as P_i(τ) = p_i(x) · B(τ | x) with one backward law B shared by all (GFlowNets
trained to the same fixed backward policy, e.g. the uniform one, and fitted exactly).

Π is sampled by **fully adapted SMC**. Along τ, Π's unnormalised prefix weight γ_t(τ_{0:t}) =
P̄(τ_{0:t}) Π_j ρ^{(j)}_{y_j}(τ_{0:t}) grows at the action a by

    G(a) = P̄^{(1)}(a) · Π_j P_{y_j}(a | s) / P̄^{(j)}(a),     P̄^{(j)}(a) = Σ_i ρ^{(j)}_i P_i(a | s),

so each particle's weight is multiplied by Σ_b G(b) (independent of the action: the particles are
resampled *before* they move) and the action is drawn from G / Σ_b G. The run starts from
γ_0 = Π_j ω^{(j)}_{y_j}, so exp(log Ẑ) is unbiased for Z = Σ_τ Π̃(τ). Stopped particles keep their
weight. Cost: one policy pass per base per particle-step; no classifier, no backward pass. With no
observation (the mixture) G = P̄^{(1)} sums to 1: every weight stays 1 and the draw is the plain
mixture of the bases' chains.
"""

from __future__ import annotations

import math

import torch

from sculpting.describe import composition_text
from sculpting.finite import check_log_probs
from sculpting.gflownet.policy import masked_log_softmax
from sculpting.gflownet.smc import runs_at_once
from sculpting.smc_core import Particles, SMCRun, check_smc_options, run_smc, sample_by_runs

__all__ = [
    "PathComposition",
    "check_path_options",
    "path_smc_runs",
    "path_smc",
    "path_smc_sample",
    "path_target",
    "mixture_paths",
]


class PathComposition:
    """The composition that GFlowNet bases define by their own path likelihoods (module docs).

    Args:
        bases: m policies over one environment (``log_probs(states) → [B, A]``, ``env``).
        composition: the :class:`~sculpting.algebra.Composition` (observations and slot priors).

    Sampled by SMC only (``sc.sample(model, n, sampler="smc" or "auto", particles=N)``,
    ``sc.smc(model, N)``): no per-state guided policy exists, the target lives on trajectories.
    """

    #: what it targets, for its repr and the docs
    targets = "path space: Π(τ) ∝ P̄(τ) Π_j ρ_j(τ); x-space when the bases share one backward policy"

    def __init__(self, bases, composition):
        if len(bases) != composition.n_bases:
            raise ValueError(f"a composition of {composition.n_bases} bases got {len(bases)} base policies")
        self.env = bases[0].env
        for b in bases:
            if b.env.space != self.env.space:
                raise ValueError(f"bases live on different spaces: {b.env.space} vs {self.env.space}")
        self.bases, self.composition = list(bases), composition

    def __repr__(self) -> str:
        what = composition_text(self.composition, self.bases)
        return f"PathComposition(gflownet: {what}; no classifier: {self.targets})"


def check_path_options(model, proposal: str, twist: str) -> None:
    """Refuse SMC options that a path composition (or ``twist="paths"``) cannot honour: its
    proposal is the fully adapted G (``proposal="auto"``) and its twist the path posteriors."""
    if twist not in ("classifier", "paths") or (twist == "classifier" and not isinstance(model, PathComposition)):
        raise ValueError(f"twist={twist!r} is not a twist of a path composition (it takes twist='paths')")
    if proposal != "auto":
        raise ValueError(
            f"proposal={proposal!r}: with the path twist SMC proposes from the fully adapted G(a) "
            "(docs/classifier_free.md); leave proposal='auto'"
        )
    if not hasattr(model, "bases") or not hasattr(model, "composition"):
        raise TypeError(f"twist='paths' samples a composition, got {type(model).__name__}")


def _slot_log_priors(composition, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(log ω of slot 1 ``[m]`` — the mixture —, log ω^{(j)} of each observed slot ``[n, m]``)."""
    lp = composition.log_priors(torch.float64, device)
    n = composition.n_observations
    return lp[0], lp[:n]


def _log_g(each, ell, mix_prior, obs_priors, obs) -> torch.Tensor:
    """``[K, A]`` log G(a) (module docs) from the bases' log P_i(a | s) ``each`` ``[K, m, A]`` and
    the running path log-likelihoods ``ell`` ``[K, m]`` (float64)."""
    log_rho1 = torch.log_softmax(mix_prior + ell, dim=1)  # [K, m]
    log_mix = torch.logsumexp(log_rho1[:, :, None] + each, dim=1)  # log P̄^{(1)}(a)
    out = log_mix
    for j, y in enumerate(obs):  # slot 1 is the first observed slot: its P̄^{(1)} is the mixture's
        log_bar = (
            log_mix
            if j == 0
            else torch.logsumexp(torch.log_softmax(obs_priors[j] + ell, dim=1)[:, :, None] + each, dim=1)
        )
        out = out + each[:, y] - log_bar
    return torch.nan_to_num(out, nan=-math.inf)  # an action no base takes: −inf − (−inf)


@torch.no_grad()
def path_smc_runs(model, particles: int, runs: int = 1, generator=None, resample_threshold: float = 0.5):
    """``runs`` independent path-composition SMC runs advanced together: (the finished
    :class:`~sculpting.smc_core.WeightTracker`, terminal states ``[runs·N, *S]``, stats).
    ``model``: a :class:`PathComposition` or anything with ``bases``, ``env`` and ``composition``
    (a classifier composition: its classifier is not used)."""
    tracker, states, stats, _ = _runs(model, particles, runs, generator, resample_threshold, observe=True)
    return tracker, states, stats


@torch.no_grad()
def mixture_paths(model, n: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(terminal states ``[n, *S]``, path log-likelihoods ``[n, m]``) of ``n`` trajectories of the
    slot-1 mixture P̄ = Σ_i ω^{(1)}_i P_i (the bases' own chains, every weight 1), each with every
    base's L_i(τ). With :meth:`~sculpting.algebra.Composition.path_log_weights` they estimate the
    path composition's own target by importance sampling, independently of its SMC."""
    _, states, _, ell = _runs(model, n, 1, generator, 0.0, observe=False)
    return states, ell


class PathParticles(Particles):
    """The particles of the fully adapted path SMC (module docs): each step weighs by Σ_a G(a)
    *before* the particles move (the increment does not depend on the action), so resampling comes
    first and the move draws a ~ G / Σ G from the resampled particles' own G."""

    def __init__(self, model, total: int, generator=None, observe: bool = True):
        env, comp = model.env, model.composition
        self.model, self.generator = model, generator
        self.states = env.initial_states(total)
        self.device = dev = self.states.device
        self.mix_prior, self.obs_priors = _slot_log_priors(comp, dev)
        self.obs = [y - 1 for y in comp.observations] if observe else []
        self.log_w0 = float(sum(self.obs_priors[j, y] for j, y in enumerate(self.obs))) if self.obs else 0.0
        self.ell = torch.zeros(total, comp.n_bases, dtype=torch.float64, device=dev)  # L_i(τ), running
        self.done = torch.zeros(total, dtype=torch.bool, device=dev)
        self.stats = {"steps": 0, "particle_steps": 0, "policy_rows": 0}

    def weigh(self, t: int):
        model, env, m = self.model, self.model.env, self.model.composition.n_bases
        if t > env.max_trajectory_length:
            return None
        active = (~self.done).nonzero().squeeze(1)
        if len(active) == 0:
            return None
        cur = self.states[active]
        mask = env.action_mask(cur)
        each = torch.stack([b.log_probs(cur).double() for b in model.bases], dim=1)  # [K, m, A]
        each = each.masked_fill(~mask[:, None, :], -math.inf)
        for i in range(m):
            check_log_probs(each[:, i], model.bases[i], "action log-probabilities")
        self.stats["policy_rows"] += m * len(active)
        self._log_g = _log_g(each, self.ell[active], self.mix_prior, self.obs_priors, self.obs)
        self._each = each
        self._row = torch.full((len(self.done),), -1, dtype=torch.long, device=self.device)  # particle → its row
        self._row[active] = torch.arange(len(active), device=self.device)
        return torch.logsumexp(self._log_g, dim=1), active  # the increment, whatever the action

    def select(self, idx):
        self.states, self.ell, self.done, self._row = self.states[idx], self.ell[idx], self.done[idx], self._row[idx]

    def move(self, t: int):
        env, m = self.model.env, self.model.composition.n_bases
        active = (~self.done).nonzero().squeeze(1)
        cur, log_g, each = self.states[active], self._log_g[self._row[active]], self._each[self._row[active]]
        log_q = masked_log_softmax(log_g, torch.isfinite(log_g))
        a = torch.multinomial(log_q.exp().float(), 1, generator=self.generator).squeeze(1)
        self.ell[active] += each.gather(2, a[:, None, None].expand(-1, m, 1)).squeeze(2)
        self.states[active] = env.step(cur, a)
        self.done[active[a == env.stop_action]] = True
        self.stats["steps"] += 1
        self.stats["particle_steps"] += len(active)
        return None

    def result(self):
        if not bool(self.done.all()):
            raise RuntimeError("particles exceeded env.max_trajectory_length without stopping")
        return self.states, self.stats


def _runs(model, particles, runs, generator, resample_threshold, observe: bool):
    n, threshold = check_smc_options(particles, resample_threshold)
    state = PathParticles(model, n * runs, generator, observe)
    tracker, states, stats = run_smc(state, n, runs, generator, threshold)
    return tracker, states, stats, state.ell


def path_smc(model, particles: int, generator=None, resample_threshold: float = 0.5) -> SMCRun:
    """One path-composition SMC run of ``particles`` particles (an :class:`~sculpting.smc_core.SMCRun`)."""
    tracker, states, stats = path_smc_runs(model, particles, 1, generator, resample_threshold)
    return tracker.run(0, states, stats)


def path_smc_sample(
    model, n: int, generator=None, particles: int = 64, resample_threshold: float = 0.5, batch_size=None
) -> torch.Tensor:
    """``[n, *S]``: ⌈n / N⌉ independent runs of N particles, each ending with a multinomial draw of
    N from its final weights (``batch_size`` particles advanced at a time, default 4 096)."""
    _, threshold = check_smc_options(particles, resample_threshold)
    return sample_by_runs(
        lambda r: PathParticles(model, particles * r, generator),
        n,
        particles,
        runs_at_once(particles, batch_size),
        generator,
        threshold,
    )


@torch.no_grad()
def path_target(model) -> tuple[torch.Tensor, float]:
    """(log Π(x) ``[N]`` normalised over the environment's states, log Z) of the path composition on
    an enumerable environment, exactly: every trajectory enumerated (depth-first, in batches per
    depth), Π(τ) = P̄(τ) Π_j ρ^{(j)}_{y_j}(τ) summed per terminal state. Not a DP: P̄(τ) does not
    factorise over states. For small environments (tests, benchmarks)."""
    env, comp = model.env, model.composition
    states = env.initial_states(1)
    dev = states.device
    mix_prior, obs_priors = _slot_log_priors(comp, dev)
    obs = [y - 1 for y in comp.observations]
    ell = torch.zeros(1, comp.n_bases, dtype=torch.float64, device=dev)
    acc = torch.full((env.n_states,), -math.inf, dtype=torch.float64, device=dev)
    for _ in range(env.max_trajectory_length + 1):
        if len(states) == 0:
            break
        mask = env.action_mask(states)
        each = torch.stack([b.log_probs(states).double() for b in model.bases], dim=1).masked_fill(
            ~mask[:, None, :], -math.inf
        )
        rows, acts = mask.nonzero(as_tuple=True)
        new_ell = ell[rows] + each[rows, :, acts]
        stop = acts == env.stop_action
        if stop.any():
            le = new_ell[stop]
            log_pi = torch.logsumexp(mix_prior + le, dim=1)
            for j, y in enumerate(obs):
                log_pi = log_pi + obs_priors[j, y] + le[:, y] - torch.logsumexp(obs_priors[j] + le, dim=1)
            idx = env.index(env.step(states[rows[stop]], acts[stop]))
            top = log_pi.max()  # sum per terminal state (repeated indices) in linear scale, shifted
            lin = torch.zeros_like(acc).index_add_(0, idx, (log_pi - top).exp())
            acc = torch.logaddexp(acc, lin.log() + top)
        go = ~stop
        states, ell = env.step(states[rows[go]], acts[go]), new_ell[go]
    log_z = torch.logsumexp(acc, 0)
    return acc - log_z, float(log_z)
