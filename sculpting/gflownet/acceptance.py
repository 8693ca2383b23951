"""The propose / score / accept loop shared by the exact rejection sampler (:mod:`.rejection`) and
the amortised sampler (:mod:`.amortised`).

Both write the guided policy as π(a | s, y) ∝ g(a | s) · w(s'_a), 0 ≤ w ≤ 1, and draw actions by
rounds: each pending state proposes k actions from its proposal r (``probs``), the distinct
successors are scored once with the classifier (the stop action by the terminal head), and a
proposal is accepted with probability exp(log w − log e(a)), where e is the envelope of the
proposal (rejection: r = g, e = 1; amortised: r ∝ g · ŵ, e = ŵ). The first accepted proposal of a
state is its action; states without one after ``rounds`` rounds are returned for an exact draw.
"""

from __future__ import annotations

import torch

__all__ = ["SamplerStats", "log_weights", "accept_rounds"]


class SamplerStats:
    """Counters of a sampling run: states, states fully scored (up front / after the rounds),
    classifier rows scored (successors), proposals made, envelope violations (amortised: scored
    proposals with w > ŵ)."""

    def __init__(self):
        self.states = self.full_states = self.fallback_states = self.scored_rows = self.proposals = 0
        self.envelope_violations = 0


def log_weights(policy, f, y):
    """log w from (log Q(y_1 = i | ·) ``[..., m]``, log Q(y | ·) ``[...]``): Q(y | ·) in the paper form,
    h = Q(y | ·) / Q(y_1 = b | ·) anchored."""
    return y if policy.form == "paper" else y - f[..., policy.anchor]


@torch.no_grad()
def accept_rounds(
    policy,
    states,
    actions,
    pending,
    probs,
    k_row,
    rounds: int,
    generator,
    stats: SamplerStats,
    log_env: torch.Tensor | None = None,
    max_log_w: float | None = None,
) -> torch.Tensor:
    """Fill ``actions[pending]`` by at most ``rounds`` rounds of ``k_row[state]`` proposals from
    ``probs`` ``[B, A]`` (float); ``log_env`` ``[B, A]`` the envelope (None: 1). Returns the states
    still pending. ``max_log_w``: raise if a scored log w exceeds it (a classifier whose joint is not
    a probability would bias the rejection sampler)."""
    env, A, dev = policy.env, policy.env.n_actions, states.device
    stop = env.stop_action
    for _ in range(rounds):
        if len(pending) == 0:
            break
        k = k_row[pending]
        prop = torch.multinomial(probs[pending], int(k.max()), replacement=True, generator=generator)  # [P, K]
        u = torch.rand(
            prop.shape,
            generator=generator,
            dtype=torch.float64,
            device=generator.device if generator is not None else dev,
        ).to(dev)
        live = torch.arange(prop.shape[1], device=dev)[None] < k[:, None]  # [P, K] proposals made
        u = u.masked_fill(~live, 2.0)  # never accepted
        key = (pending[:, None] * A + prop)[live]
        uniq, inv_live = torch.unique(key, return_inverse=True)
        inv = torch.zeros(prop.shape, dtype=torch.long, device=dev)
        inv[live] = inv_live
        rows, acts = uniq // A, uniq % A
        log_w = torch.empty(len(uniq), dtype=torch.float64, device=dev)
        is_stop = acts == stop
        if is_stop.any():
            f, y = policy.q.terminal(states[rows[is_stop]])
            log_w[is_stop] = log_weights(policy, f.double(), y.double())
        if (~is_stop).any():
            f, y = policy.score_successors(states[rows[~is_stop]], acts[~is_stop])
            log_w[~is_stop] = log_weights(policy, f, y)
        stats.scored_rows += len(uniq)
        stats.proposals += int(live.sum())
        if max_log_w is not None and bool((log_w > max_log_w).any()):
            raise ValueError(
                f"guidance weight w = {float(log_w.max().exp()):.6f} > 1: the classifier's joint is "
                "not a probability, rejection sampling would be biased (use sampler='full')"
            )
        if log_env is not None:
            log_e = log_env[rows, acts]
            stats.envelope_violations += int((log_w > log_e + 1e-9).sum())
            log_w = log_w - log_e
        accept = torch.log(u) < log_w[inv].reshape(prop.shape)  # [P, K]
        any_acc = accept.any(1)
        first = accept.float().argmax(1)
        actions[pending[any_acc]] = prop[any_acc, first[any_acc]]
        pending = pending[~any_acc]
    return pending
