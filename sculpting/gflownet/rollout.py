"""Vectorised trajectory sampling for DAG environments with tensor states.

All trajectories of a batch advance together: one ``policy.log_probs`` call per step on the
unfinished ones (no per-trajectory Python loop). ε-exploration mixes the policy with the
uniform distribution over valid actions: π_ε = (1 − ε) π + ε U.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Trajectories", "sample_trajectories"]


@dataclass
class Trajectories:
    """A padded batch of B complete trajectories.

    states:  ``[B, T+1, *S]`` s_0..s_T (after the stop the last state is repeated).
    actions: ``[B, T]`` actions (−1 after the stop).
    lengths: ``[B]`` number of actions, the stop included.
    """

    states: torch.Tensor
    actions: torch.Tensor
    lengths: torch.Tensor

    @property
    def terminal(self) -> torch.Tensor:
        """``[B, *S]`` the terminal objects x."""
        return self.states[torch.arange(len(self.lengths), device=self.lengths.device), self.lengths - 1]

    @property
    def valid(self) -> torch.Tensor:
        """``[B, T]`` True where an action was taken."""
        return self.actions >= 0


@torch.no_grad()
def sample_trajectories(
    env,
    policy,
    batch_size: int,
    epsilon: float = 0.0,
    generator: torch.Generator | None = None,
    cond=None,
    action_sampler=None,
) -> Trajectories:
    """``cond``: optional ``[B]`` per-trajectory conditioning passed as
    ``policy.log_probs(states, cond)`` (e.g. β of a β-conditional molecule GFlowNet).
    ``action_sampler(policy, states, generator) → [B]`` actions replaces sampling from
    ``policy.log_probs`` (e.g. :func:`sculpting.gflownet.rejection.rejection_sample_actions`)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if action_sampler is not None and (epsilon > 0 or cond is not None):
        raise ValueError("action_sampler draws on-policy actions: it takes neither epsilon nor cond")
    states = env.initial_states(batch_size)
    dev = states.device
    t_max = env.max_trajectory_length
    all_states = states.new_zeros((batch_size, t_max + 1, *states.shape[1:]))
    all_states[:, 0] = states
    actions = torch.full((batch_size, t_max), -1, dtype=torch.long, device=dev)
    lengths = torch.zeros(batch_size, dtype=torch.long, device=dev)
    active = torch.arange(batch_size, device=dev)
    for t in range(t_max):
        if len(active) == 0:
            break
        cur = states[active]
        if action_sampler is not None:
            a = action_sampler(policy, cur, generator)
        else:
            mask = env.action_mask(cur)
            lp = policy.log_probs(cur) if cond is None else policy.log_probs(cur, cond[active])
            probs = lp.exp().float()
            if epsilon > 0:
                probs = (1 - epsilon) * probs + epsilon * mask.float() / mask.sum(1, keepdim=True)
            probs = probs * mask
            a = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        actions[active, t] = a
        stop = a == env.stop_action
        nxt = env.step(cur, a)
        states[active] = nxt
        all_states[active, t + 1] = nxt
        lengths[active] = torch.where(stop, t + 1, lengths[active])
        active = active[(~stop).nonzero().squeeze(1)]  # the unfinished ones: the step's one host read
    if len(active):
        raise RuntimeError("trajectories exceeded env.max_trajectory_length without stopping")
    # repeat the terminal state after the stop so that ``states`` is dense
    t_idx = torch.arange(t_max + 1, device=dev)
    after = (t_idx[None] >= lengths[:, None]).reshape(batch_size, t_max + 1, *[1] * (all_states.dim() - 2))
    last = all_states[torch.arange(batch_size, device=dev), lengths - 1]
    all_states = torch.where(after, last[:, None].expand_as(all_states), all_states)
    return Trajectories(all_states, actions, lengths)


#: trajectory steps between the tabular sampler's host reads of "all stopped?"
EXIT_TEST_EVERY = 4


@torch.no_grad()
def sample_trajectories_tabular(
    env, log_pi: torch.Tensor, batch_size: int, epsilon: float = 0.0, generator: torch.Generator | None = None
) -> Trajectories:
    """Same distribution as :func:`sample_trajectories` for a policy table ``[N, A]`` on an
    enumerable environment, by inverse-CDF sampling on state indices (a few integer ops per
    step for the whole batch). Trajectories that stopped keep their index; their actions are −1.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    all_states = env.all_states()
    mask = env.action_mask(all_states)
    probs = log_pi.exp().double() * mask
    if epsilon > 0:
        probs = (1 - epsilon) * probs + epsilon * mask / mask.sum(1, keepdim=True)
    cdf = probs.cumsum(1)
    cdf = cdf / cdf[:, -1:]
    n_moves = env.n_actions - 1
    t_max = env.max_trajectory_length
    dev = log_pi.device
    u = torch.rand(
        batch_size,
        t_max,
        generator=generator,
        dtype=torch.float64,
        device=generator.device if generator is not None else dev,
    ).to(dev)
    cur = env.index(env.initial_states(batch_size))
    idx = torch.empty(batch_size, t_max + 1, dtype=torch.long, device=dev)
    idx[:, 0] = cur
    actions = torch.full((batch_size, t_max), -1, dtype=torch.long, device=dev)
    done = torch.zeros(batch_size, dtype=torch.bool, device=dev)
    lengths = torch.zeros(batch_size, dtype=torch.long, device=dev)
    child = torch.cat([env.child_index, torch.arange(env.n_states, device=dev)[:, None]], dim=1)  # stop: stay
    for t in range(t_max):
        a = (u[:, t : t + 1] > cdf[cur]).sum(1).clamp(max=env.n_actions - 1)
        a = torch.where(done, torch.full_like(a, -1), a)
        actions[:, t] = a
        stop_now = (a == n_moves) & ~done
        lengths = torch.where(stop_now, t + 1, lengths)
        done = done | stop_now
        cur = child[cur, a.clamp(min=0)].where(~done, cur)
        idx[:, t + 1] = cur
        # the exit test reads the device: every EXIT_TEST_EVERY steps (the steps after the last
        # stop change nothing: every action −1, every state kept — the same result as testing each step)
        if (t + 1) % EXIT_TEST_EVERY == 0 and bool(done.all()):
            idx[:, t + 2 :] = cur[:, None]
            break
    if not bool(done.all()):
        raise RuntimeError("trajectories exceeded env.max_trajectory_length without stopping")
    return Trajectories(all_states[idx], actions, lengths)
