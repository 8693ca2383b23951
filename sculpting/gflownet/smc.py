"""Twisted sequential Monte Carlo for guided GFlowNet policies (``docs/smc.md``).

The target of a :class:`~sculpting.gflownet.guidance.GuidedPolicy` is the composition that its
classifier's **terminal** head defines:

* anchored form (anchor b = y_1):  target(x) ∝ p_b(x) · h_T(x),  h_T(x) = Π_{k≥2} p_T(y_k | x);
  path measure p_base(τ) = Π_t π_b(a_t | s_t), twist ψ(s) = h(s) = Q(y | s) / Q(y_1 = b | s);
* paper form:  target(x) ∝ p̄(x) · Π_k p_T(y_k | x),  p̄ = Σ_i ω_i p_i (ω = slot 1's prior);
  p_base(τ) is the ω-mixture of the bases' path measures, whose next-action probability is
  Σ_i softmax(ℓ)_i π_i(a | s) with ℓ_i = log ω_i + Σ_{k<t} log π_i(a_k | s_k) (the running
  trajectory log-likelihoods); twist ψ(s) = Q(y | s);
* the mixture (no observation): p̄ itself (ψ = 1).

Each particle moves by a proposal q (``"base"``: p_base; ``"guided"``: the guided policy with every
successor scored; ``"amortised"``: r(a) ∝ g(a) · w̃(a) from the policy's successor head in one
pass) and its weight is multiplied by

    p_base(a | s) · ψ(s') / ( q(a | s) · ψ(s) )      (at the stop: ψ(s') → the terminal potential),

scoring only the chosen successor (``twist="classifier"``), or, with ``twist="head"``, using the
successor head's own prediction at the chosen action as ψ(s') (no classifier call until the
stop; with ``proposal="base"`` the head is evaluated at the chosen action only). The run starts with log-weight
log ψ(s_0), so Ẑ estimates the exact normaliser
Z = Σ_x p_base(x) · potential(x) (:func:`terminal_target`). Particles that stop keep their weight
and wait; resampling draws among all particles (a copied stopped particle stays stopped).
"""

from __future__ import annotations

import math

import torch

from sculpting.finite import check_log_probs
from sculpting.gflownet.amortised import head_log_weights
from sculpting.gflownet.exact import terminal_log_probs
from sculpting.gflownet.guidance import GuidedPolicy
from sculpting.gflownet.policy import masked_log_softmax, policy_table
from sculpting.protocols import is_enumerable
from sculpting.smc_core import Particles, SMCRun, check_smc_options, run_smc, sample_by_runs

__all__ = [
    "PROPOSALS",
    "TWISTS",
    "gflownet_smc",
    "gflownet_smc_runs",
    "smc_sample",
    "default_proposal",
    "terminal_target",
]

PROPOSALS = ("base", "guided", "amortised")
TWISTS = ("classifier", "head")
#: "auto" proposes from the guided policy (every successor scored) up to this many actions (the
#: enumerated fragment world has 34; the base proposal there collapses on rare harmonic targets)
GUIDED_MAX_ACTIONS = 64


def _uses_mixture(policy) -> bool:
    return policy.form == "paper" or policy.anchor is None


def default_proposal(policy) -> str:
    """The best proposal ``policy`` offers: its successor head where it has one, else the guided
    policy where the action space is small (≤ 64 actions), else the base."""
    if getattr(policy, "successor_head", None) is not None:
        return "amortised"
    return "guided" if policy.env.n_actions <= GUIDED_MAX_ACTIONS else "base"


def _log_twist(policy, f, y):
    """log ψ from (log Q(y_1 = i | ·) ``[K, m]``, log Q(y | ·) ``[K]``): h = Q(y)/Q(y_1 = b) anchored,
    Q(y) in the paper form, 0 for the mixture."""
    if policy.composition.n_observations == 0:
        return torch.zeros_like(y, dtype=torch.float64)
    return (y if policy.form == "paper" else y - f[..., policy.anchor]).double()


@torch.no_grad()
def terminal_target(policy):
    """(log target ``[N]`` normalised, log Z) of the composition the classifier's terminal head
    defines, on an enumerable environment, exactly (DP for p_b / p̄, the terminal head on every
    state): what :func:`gflownet_smc` converges to, and the normaliser Ẑ estimates."""

    env = policy.env
    if not is_enumerable(env):
        raise ValueError(f"terminal_target needs an enumerable environment, not {type(env).__name__}")
    states = env.all_states()
    c = policy.composition
    if _uses_mixture(policy):
        tables = torch.stack([policy_table(env, b) for b in policy.bases])
        log_w = c.log_priors(torch.float64, tables.device)[0]
        log_base = torch.logsumexp(terminal_log_probs(env, tables) + log_w[:, None], 0)
    else:
        log_base = terminal_log_probs(env, policy_table(env, policy.bases[policy.anchor]))
    f, y = policy.q.terminal(states)
    log_pot = _log_twist(policy, f.double(), y.double())
    can_stop = env.action_mask(states)[:, env.stop_action]
    joint = torch.where(can_stop & torch.isfinite(log_base), log_base + log_pot, torch.full_like(log_base, -math.inf))
    log_z = torch.logsumexp(joint, 0)
    return joint - log_z, float(log_z)


def _head_log_weights(policy, states, mask):
    return head_log_weights(policy, states, mask)


def gflownet_smc(
    policy,
    particles: int,
    generator=None,
    proposal: str = "auto",
    resample_threshold: float = 0.5,
    twist: str = "classifier",
) -> SMCRun:
    """One SMC run of ``particles`` particles for a GuidedPolicy (module docs).

    Returns an :class:`~sculpting.smc_core.SMCRun` with ``states`` ``[N, *S]`` (terminal), the normalised
    log-weights, log Ẑ, the ESS after every step and the resampling steps; ``stats`` counts the
    classifier rows scored for the twist and for the proposal (score-cache hits included).
    """
    tracker, states, stats = gflownet_smc_runs(policy, particles, 1, generator, proposal, resample_threshold, twist)
    return tracker.run(0, states, stats)


def runs_at_once(particles: int, batch_size: int | None) -> int:
    """How many runs :func:`smc_sample` advances together: ``batch_size`` particles (default 4 096),
    at least one run."""
    return max(1, (batch_size or 4096) // particles)


def smc_sample(
    policy,
    n: int,
    generator=None,
    particles: int = 64,
    proposal: str = "auto",
    resample_threshold: float = 0.5,
    twist: str = "classifier",
    batch_size: int | None = None,
):
    """``[n, *S]`` equal-weight samples from ⌈n / N⌉ independent runs of N particles, each ending
    with a multinomial draw of N from its final weights; runs advance together, ``batch_size``
    particles at a time (default 4 096, at least one run)."""
    _, threshold, proposal, _ = _check_call(policy, particles, resample_threshold, proposal, twist)
    return sample_by_runs(
        lambda r: GuidedParticles(policy, particles * r, proposal, twist, generator),
        n,
        particles,
        runs_at_once(particles, batch_size),
        generator,
        threshold,
    )


def _check_call(policy, particles, resample_threshold, proposal, twist):
    """Validated (N, threshold, proposal, successor head or None) of one :func:`gflownet_smc_runs` call."""
    if not isinstance(policy, GuidedPolicy):
        raise TypeError(
            f"SMC samples a composition (sc.compose), got {type(policy).__name__}; a base is "
            "sampled exactly by sc.sample"
        )
    n, threshold = check_smc_options(particles, resample_threshold)
    if proposal == "auto":
        proposal = default_proposal(policy)
    if proposal not in PROPOSALS:
        raise ValueError(f"unknown SMC proposal {proposal!r}; choose from {('auto',) + PROPOSALS}")
    if twist not in TWISTS:
        raise ValueError(f"unknown SMC twist {twist!r}; choose from {TWISTS + ('paths', 'flows')}")
    head = getattr(policy, "successor_head", None)
    if (proposal == "amortised" or twist == "head") and head is None:
        raise ValueError(
            f"proposal={proposal!r}, twist={twist!r} needs a successor head (compose(..., successor_head=))"
        )
    return n, threshold, proposal, head


def _base_step(policy, cur, mask, ell, mix: bool):
    """(log p_base(a | s) ``[K, A]``, the bases' log π_i(a | s) ``[K, m, A]`` or None): the ω-mixture
    weighted by the running path posteriors softmax(``ell``) (paper form, mixture), else base y_1."""
    each = None
    if mix:
        each = torch.stack([b.log_probs(cur).double() for b in policy.bases], dim=1)  # [K, m, A]
        post = torch.log_softmax(ell, dim=1)
        log_p = torch.logsumexp(post[:, :, None] + each, dim=1)
    else:
        log_p = policy.bases[policy.anchor].log_probs(cur).double()
    check_log_probs(log_p.masked_fill(~mask, -math.inf), "the base policies", "action log-probabilities")
    return masked_log_softmax(log_p, mask & torch.isfinite(log_p)), each


def _proposal(policy, proposal: str, cur, mask, log_p, stats):
    """(log q(a | s) ``[K, A]``, the successor head's log w̃ ``[K, A]`` where it was evaluated, else None)."""
    if proposal == "base" or policy.composition.n_observations == 0:
        return log_p, None
    if proposal == "guided":
        stats["proposal_rows"] += int(mask[:, : policy.env.stop_action].sum()) + 2 * len(cur)
        return policy.log_probs(cur).double(), None
    head_lw = _head_log_weights(policy, cur, mask)  # [K, A] log w̃, one pass
    check_log_probs(
        head_lw.masked_fill(~mask, -math.inf), policy.successor_head, "successor-head log-weights", need_mass=False
    )
    stats["head_rows"] = stats.get("head_rows", 0) + len(cur)
    return masked_log_softmax(log_p + head_lw.clamp(min=-30.0), mask & torch.isfinite(log_p)), head_lw


def _twist_at(policy, twist: str, cur, nxt, a, mask, head_lw, stats) -> torch.Tensor:
    """``[K]`` log ψ at the particles' new states: the terminal potential where they stopped; where
    they moved on, the classifier at the successor, or the successor head's prediction at the chosen
    action (``twist="head"``: read off ``head_lw`` when the proposal computed it, else evaluated at
    that action only)."""
    dev = cur.device
    is_stop = a == policy.env.stop_action
    new_psi = torch.zeros(len(cur), dtype=torch.float64, device=dev)
    if is_stop.any():
        f, y = policy.q.terminal(cur[is_stop])
        new_psi[is_stop] = _log_twist(policy, f.double(), y.double())
        stats["twist_rows"] += int(is_stop.sum())
    go = ~is_stop
    if go.any():
        if twist == "head" and head_lw is not None:
            new_psi[go] = head_lw[go, a[go]]
        elif twist == "head":  # the head at the chosen successor only (a one-action mask)
            one = torch.zeros_like(mask)
            one[go.nonzero().squeeze(1), a[go]] = True
            new_psi[go] = _head_log_weights(policy, cur[go], one[go])[torch.arange(int(go.sum()), device=dev), a[go]]
            stats["head_rows"] = stats.get("head_rows", 0) + int(go.sum())
        else:
            f, y = policy.nonterminal(nxt[go])
            new_psi[go] = _log_twist(policy, f, y)
            stats["twist_rows"] += int(go.sum())
    return new_psi


class GuidedParticles(Particles):
    """The particles of a guided policy's SMC (module docs): per step the base step
    (:func:`_base_step`), the proposal (:func:`_proposal`), the twist at the new states
    (:func:`_twist_at`) and the weight p_base(a | s) ψ(s') / (q(a | s) ψ(s)); stopped particles keep
    their weight and wait."""

    def __init__(self, policy, total: int, proposal: str, twist: str, generator=None):
        self.policy, self.proposal, self.twist, self.generator = policy, proposal, twist, generator
        env, comp = policy.env, policy.composition
        self.mix = _uses_mixture(policy)
        self.states = env.initial_states(total)
        self.device = dev = self.states.device
        self.stats = {"steps": 0, "twist_rows": 0, "proposal_rows": 0, "particle_steps": 0}
        if comp.n_observations:
            f0, y0 = policy.nonterminal(self.states[:1])
            self.stats["twist_rows"] += 1
            self.log_w0 = float(_log_twist(policy, f0, y0)[0])
        else:
            self.log_w0 = 0.0
        self.log_psi = torch.full((total,), self.log_w0, dtype=torch.float64, device=dev)
        m = comp.n_bases
        # the running log ω_i p_i(τ) of the paper form's mixture
        self.ell = comp.log_priors(torch.float64, dev)[0].expand(total, m).clone() if self.mix else None
        self.done = torch.zeros(total, dtype=torch.bool, device=dev)

    def weigh(self, t: int):
        policy, env, stats = self.policy, self.policy.env, self.stats
        if t >= env.max_trajectory_length:
            return None
        active = (~self.done).nonzero().squeeze(1)
        if len(active) == 0:
            return None
        cur = self.states[active]
        k = len(active)
        mask = env.action_mask(cur)
        log_p, each = _base_step(policy, cur, mask, self.ell[active] if self.mix else None, self.mix)
        log_q, head_lw = _proposal(policy, self.proposal, cur, mask, log_p, stats)
        a = torch.multinomial(log_q.exp().float(), 1, generator=self.generator).squeeze(1)
        nxt = env.step(cur, a)
        if policy.composition.n_observations:
            new_psi = _twist_at(policy, self.twist, cur, nxt, a, mask, head_lw, stats)
        else:
            new_psi = torch.zeros(k, dtype=torch.float64, device=self.device)
        ar = torch.arange(k, device=self.device)
        inc = log_p[ar, a] - log_q[ar, a] + new_psi - self.log_psi[active]
        if self.mix:
            self.ell[active] += each[ar, :, a]
        self.log_psi[active] = new_psi
        self.states[active] = nxt
        self.done[active[a == env.stop_action]] = True
        stats["steps"] += 1
        stats["particle_steps"] += k
        return torch.nan_to_num(inc, nan=-math.inf), active

    def may_resample(self, t: int) -> bool:
        return not bool(self.done.all())

    def select(self, idx):
        self.states, self.log_psi, self.done = self.states[idx], self.log_psi[idx], self.done[idx]
        if self.mix:
            self.ell = self.ell[idx]

    def result(self):
        if not bool(self.done.all()):
            raise RuntimeError("particles exceeded env.max_trajectory_length without stopping")
        return self.states, self.stats


def gflownet_smc_runs(
    policy,
    particles: int,
    runs: int = 1,
    generator=None,
    proposal: str = "auto",
    resample_threshold: float = 0.5,
    twist: str = "classifier",
):
    """``runs`` independent SMC runs advanced together by :func:`~sculpting.smc_core.run_smc`: (the
    finished :class:`~sculpting.smc_core.WeightTracker`, terminal states ``[runs·N, *S]``, stats)."""
    with torch.no_grad():
        n, threshold, proposal, _ = _check_call(policy, particles, resample_threshold, proposal, twist)
        return run_smc(GuidedParticles(policy, n * runs, proposal, twist, generator), n, runs, generator, threshold)
