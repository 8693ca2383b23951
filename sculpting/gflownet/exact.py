"""Exact dynamic programmes on enumerable DAG environments (e.g. :class:`GridEnv`).

All quantities are log-space tables over the N states of the environment, computed one
*level* (anti-diagonal on the grid) at a time, vectorised over the states of a level and over
any leading batch dimensions (e.g. several base policies at once). A policy table has shape
``[*, N, A]`` with log π(a | s) (−inf for invalid actions); the stop action is ``env.stop_action``
and move action k leads from s to ``env.child_index[s, k]``.

* :func:`log_visit_probs`   — log P(s): probability that a trajectory passes through s.
* :func:`terminal_log_probs` — log p(x) = log P(x) + log π(stop | x).
* :func:`log_expectation`    — log E[f(x) | s] under the policy's completions from s.
* :func:`exact_policy_from_reward` — the GFlowNet forward policy of a reward with the uniform
  backward policy: F(s) = R(s) + Σ_{s'} F(s') / #parents(s'), π(s'|s) = F(s')/(#par(s') F(s)),
  π(stop|s) = R(s)/F(s).
"""

from __future__ import annotations

import torch

from sculpting.gflownet.policy import policy_table

__all__ = [
    "reward_log_distribution",
    "log_visit_probs",
    "terminal_log_probs",
    "log_expectation",
    "exact_policy_from_reward",
    "base_tables",
]


def _pad(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Append one −inf slice along ``dim`` (the padding index N)."""
    shape = list(t.shape)
    shape[dim] = 1
    return torch.cat([t, torch.full(shape, -float("inf"), dtype=t.dtype, device=t.device)], dim=dim)


def _check_table(env, log_pi: torch.Tensor):
    if log_pi.shape[-2:] != (env.n_states, env.n_actions):
        raise ValueError(f"policy table must end in [{env.n_states}, {env.n_actions}], got {tuple(log_pi.shape)}")


def log_visit_probs(env, log_pi: torch.Tensor) -> torch.Tensor:
    """``[*, N, A]`` policy table → ``[*, N]`` log P(s visited)."""
    _check_table(env, log_pi)
    n, d = env.n_states, env.n_actions - 1
    moves = _pad(log_pi[..., :d], -2)  # [*, N+1, d]
    log_p = torch.full((*log_pi.shape[:-2], n + 1), -float("inf"), dtype=log_pi.dtype, device=log_pi.device)
    log_p[..., env.levels[0]] = 0.0
    ar = torch.arange(d, device=log_pi.device)
    for states in env.levels[1:]:
        par = env.parent_index[states]  # [n_l, d]
        terms = log_p[..., par] + moves[..., par, ar]  # [*, n_l, d]
        log_p[..., states] = torch.logsumexp(terms, dim=-1)
    return log_p[..., :n]


def terminal_log_probs(env, log_pi: torch.Tensor) -> torch.Tensor:
    """``[*, N, A]`` policy table → ``[*, N]`` exact terminal log-distribution."""
    return log_visit_probs(env, log_pi) + log_pi[..., env.stop_action]


def log_expectation(env, log_pi: torch.Tensor, log_f: torch.Tensor) -> torch.Tensor:
    """log E[f(x) | s] for every state s, under completions of the policy started at s.

    Args:
        log_pi: ``[*, N, A]`` policy table.
        log_f: ``[*, N, K]`` log f(x) for K functions at once (broadcast over ``*``).
    Returns:
        ``[*, N, K]``: V(s) = π(stop|s) f(s) + Σ_k π(k|s) V(child_k(s)), in log space.
    """
    _check_table(env, log_pi)
    n, d = env.n_states, env.n_actions - 1
    batch = torch.broadcast_shapes(log_pi.shape[:-2], log_f.shape[:-2])
    log_pi = log_pi.expand(*batch, *log_pi.shape[-2:])
    log_f = log_f.expand(*batch, *log_f.shape[-2:])
    log_v = torch.full((*batch, n + 1, log_f.shape[-1]), -float("inf"), dtype=log_f.dtype, device=log_f.device)
    for states in reversed(env.levels):
        ch = env.child_index[states]  # [n_l, d]
        stop = log_pi[..., states, env.stop_action, None] + log_f[..., states, :]  # [*, n_l, K]
        move = log_pi[..., states, :d, None] + log_v[..., ch, :]  # [*, n_l, d, K]
        log_v[..., states, :] = torch.logsumexp(torch.cat([stop[..., None, :], move], dim=-2), dim=-2)
    return log_v[..., :n, :]


def exact_policy_from_reward(env, log_reward: torch.Tensor) -> torch.Tensor:
    """``[N]`` log R → ``[N, A]`` the exact GFlowNet policy for the uniform backward policy."""
    n = env.n_states
    log_reward = log_reward.double()
    log_f = torch.full((n + 1,), -float("inf"), dtype=torch.float64, device=log_reward.device)
    log_pb = torch.cat(
        [env.state_log_n_parents.double(), torch.zeros(1, dtype=torch.float64, device=log_reward.device)]
    )
    for states in reversed(env.levels):
        ch = env.child_index[states]
        inflow = log_f[ch] - log_pb[ch]  # [n_l, d]
        log_f[states] = torch.logsumexp(torch.cat([log_reward[states, None], inflow], dim=1), dim=1)
    ch = env.child_index  # [N, d]
    log_pi = torch.cat([log_f[ch] - log_pb[ch], log_reward[:, None]], dim=1) - log_f[:n, None]
    return log_pi


@torch.no_grad()
def base_tables(bases) -> torch.Tensor:
    """``[m, N, A]`` float64 policy tables of policies that share one enumerable environment."""

    env = bases[0].env
    for b in bases:
        if b.env.space != env.space:
            raise ValueError(f"bases live on different spaces: {b.env.space} vs {env.space}")
    return torch.stack([policy_table(env, b) for b in bases])


def reward_log_distribution(env) -> torch.Tensor:
    """``[N]`` float64 log R(x)/Z over ``env.all_states()``: the environment's own
    ``reward_log_distribution()`` when it has one, else ``env.log_reward`` on every state that can
    stop (−∞ elsewhere), normalised."""
    own = getattr(env, "reward_log_distribution", None)
    if callable(own):
        return own()
    states = env.all_states()
    log_r = env.log_reward(states).double()
    log_r = log_r.masked_fill(~env.action_mask(states)[:, env.stop_action], -float("inf"))
    return log_r - torch.logsumexp(log_r, 0)
