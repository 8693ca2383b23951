"""Guided action sampling with an amortised successor head as the proposal (docs/guidance.md §6).

The guided policy is π(a | s, y) ∝ g(a | s) · w(s'_a) with 0 ≤ w ≤ 1 (:mod:`.rejection`). Plain
rejection proposes from g and needs ≈ 1 / Z(s) classifier passes per step, Z(s) = Σ_a g(a) w(s'_a),
which for the harmonic mean of molecule bases is often < 0.02. A successor head (for molecules
:class:`sculpting.domains.molecules.successor_head.SuccessorHead`) predicts w̃(s'_a) for **every**
action from one pass on s. This sampler proposes from

    r(a) ∝ g(a) · ŵ(a),   ŵ(a) = min(1, K · w̃(a))      (K = ``envelope``)

and corrects against the full classifier: the proposed successor is scored by the classifier and
accepted with probability min(1, w(s'_a) / ŵ(a)). Accepted actions have the law

    π_K(a | s) ∝ g(a) · min(w(s'_a), ŵ(a)),

which **is** the full classifier's π wherever the envelope holds (w ≤ ŵ at every action of s),
and otherwise differs only by the clipped mass Σ_a g (w − ŵ)⁺. Every scored proposal with
w > ŵ is counted (``stats.envelope_violations``), and :func:`step_deviation` computes the per-step
KL(π ‖ π_K) exactly on given states (by full scoring). No cheap certificate of w ≤ ŵ exists (w is
only known where it is scored; the only global bound is w ≤ 1, which gives plain rejection), so
this sampler trades exactness for speed by a measured amount: ``sampler="rejection"`` stays the
exact default.

States with fewer than ``min_actions`` valid actions, and states without an acceptance after
``rounds`` rounds, are drawn from the full π (every successor scored).
"""

from __future__ import annotations

import torch

from sculpting.gflownet.acceptance import SamplerStats, accept_rounds, log_weights
from sculpting.gflownet.policy import masked_log_softmax

__all__ = ["amortised_sample_actions", "head_log_weights", "sampler_law", "step_deviation"]


@torch.no_grad()
def head_log_weights(policy, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, A]`` log w̃(s'_a) predicted by ``policy.successor_head`` (−inf at illegal actions; the
    stop column from the head's terminal posterior)."""
    head, q, env = policy.successor_head, policy.q, policy.env
    if head is None:
        raise ValueError("this guided policy has no successor head (policy.successor_head = head)")
    mask = env.action_mask(states) if mask is None else mask
    rows, acts, joint, term = head(states, q.logit_alpha, q.context, mask)
    out = torch.full(mask.shape, -float("inf"), dtype=torch.float64, device=states.device)
    if len(rows):
        f, y = q.from_joint(joint)
        out[rows, acts] = log_weights(policy, f.double(), y.double())
    tf, ty = q.from_terminal(term)
    stop = env.stop_action
    out[:, stop] = torch.where(mask[:, stop], log_weights(policy, tf.double(), ty.double()), out[:, stop])
    return out.clamp(max=0.0)


def _proposal_parts(policy, states, mask, envelope):
    base_lp = policy.base_log_probs(states)
    pf, py = policy.nonterminal(states)
    log_g = torch.logsumexp(pf[:, :, None] + base_lp, dim=1) if policy.form == "paper" else base_lp[:, policy.anchor]
    log_g = masked_log_softmax(log_g, mask & torch.isfinite(log_g))
    log_env = (head_log_weights(policy, states, mask) + torch.log(torch.tensor(float(envelope)))).clamp(max=0.0)
    return base_lp, pf, py, log_g, log_env


def _full_log_weights(policy, states, mask):
    """``[B, A]`` log w(s'_a) of every legal action from the full classifier."""
    env = policy.env
    k = env.stop_action
    out = torch.full(mask.shape, -float("inf"), dtype=torch.float64, device=states.device)
    rows, acts = mask[:, :k].nonzero(as_tuple=True)
    if len(rows):
        f, y = policy.score_successors(states[rows], acts)
        out[rows, acts] = log_weights(policy, f, y)
    tf, ty = policy.q.terminal(states)
    out[:, k] = torch.where(mask[:, k], log_weights(policy, tf.double(), ty.double()), out[:, k])
    return out


@torch.no_grad()
def sampler_law(policy, states: torch.Tensor, envelope: float = 2.0):
    """(log π ``[B, A]``, log π_K ``[B, A]``, log π̃ ``[B, A]``) at ``states`` by full scoring: the
    full classifier's guided policy, this sampler's per-step law (module docs; states that the
    sampler hands to full scoring excepted) and the head used as the guidance itself (π̃ ∝ g w̃)."""
    mask = policy.env.action_mask(states)
    _, _, _, log_g, log_env = _proposal_parts(policy, states, mask, envelope)
    log_w = _full_log_weights(policy, states, mask)
    log_wt = log_env - torch.log(torch.tensor(float(envelope)))

    def law(lw):
        return masked_log_softmax(torch.nan_to_num(log_g + lw, nan=-float("inf")), mask)

    return law(log_w), law(torch.minimum(log_w, log_env)), law(log_wt)


@torch.no_grad()
def step_deviation(policy, states: torch.Tensor, envelope: float = 2.0) -> dict:
    """Per-step deviation on ``states`` (full scoring): mean KL(π ‖ π_K) of this sampler's exact
    per-step law, mean KL(π ‖ π̃) of the head used as the guidance itself, and the fraction of
    states where the envelope fails at some action (:func:`sampler_law`)."""
    pi, pi_k, pi_t = sampler_law(policy, states, envelope)
    p = pi.exp()

    def kl(other):
        return float((p * (pi - other)).nan_to_num(0.0, posinf=0.0, neginf=0.0).sum(1).mean())

    fails = ((pi_k - pi).abs() > 1e-9).any(1) & torch.isfinite(pi).any(1)
    return {
        "kl_sampler": kl(pi_k),
        "kl_head_as_guidance": kl(pi_t),
        "envelope_fails": float(fails.double().mean()),
        "states": len(states),
    }


@torch.no_grad()
def amortised_sample_actions(
    policy,
    states: torch.Tensor,
    generator=None,
    envelope: float = 2.0,
    proposals: int = 1,
    rounds: int = 8,
    acceptances: float = 1.0,
    min_actions: int = 4,
    stats: SamplerStats | None = None,
) -> torch.Tensor:
    """``[B]`` actions from π_K (module docs) for a GuidedPolicy with a ``successor_head``."""
    if not envelope > 0:
        raise ValueError(f"envelope must be > 0, got {envelope}")
    env, comp = policy.env, policy.composition
    B, dev = len(states), states.device
    stats = stats if stats is not None else SamplerStats()
    stats.states += B
    actions = torch.full((B,), -1, dtype=torch.long, device=dev)
    mask = env.action_mask(states)

    def full(rows, parts=None):
        if len(rows):
            lp = (
                policy.log_probs_given(states[rows], parts[0][rows], mask[rows], parts[1][rows], parts[2][rows])
                if parts is not None
                else policy.log_probs(states[rows])
            )
            actions[rows] = torch.multinomial(lp.exp().float(), 1, generator=generator).squeeze(1)
            stats.full_states += len(rows)
            stats.scored_rows += int(mask[rows, :-1].sum()) if comp.n_observations else 0

    if comp.n_observations == 0:
        full(torch.arange(B, device=dev))
        return actions
    base_lp, pf, py, log_g, log_env = _proposal_parts(policy, states, mask, envelope)
    n_valid = mask.sum(1)
    small = n_valid < min_actions
    full(torch.nonzero(small).squeeze(1), (base_lp, pf, py))
    log_r = masked_log_softmax(torch.nan_to_num(log_g + log_env, nan=-float("inf")), mask)
    r = log_r.exp().float()
    # expected acceptance per proposal ≈ Σ g w̃ / Σ g ŵ (w̃ = ŵ / K where unclipped)
    log_wt = log_env - torch.log(torch.tensor(float(envelope)))
    acc_hat = (
        torch.logsumexp(torch.nan_to_num(log_g + log_wt, nan=-float("inf")), 1)
        - torch.logsumexp(torch.nan_to_num(log_g + log_env, nan=-float("inf")), 1)
    ).exp()
    k_row = (acceptances / acc_hat.clamp(min=1e-3)).ceil().long().clamp(min=proposals, max=64)
    pending = torch.nonzero(~small).squeeze(1)
    pending = accept_rounds(policy, states, actions, pending, r, k_row, rounds, generator, stats, log_env=log_env)
    stats.fallback_states += len(pending)
    full(pending, (base_lp, pf, py))
    return actions
