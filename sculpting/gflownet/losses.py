"""Training objectives of base GFlowNets.

Trajectory balance (Malkin et al. 2022), per trajectory τ = (s_0 → … → s_T → x):

    L_TB(τ) = ( log Z + Σ_t log P_F(s_{t+1} | s_t) − log R(x) − Σ_t log P_B(s_t | s_{t+1}) )²

with the environment's uniform backward policy P_B = 1 / #parents.
"""

from __future__ import annotations

import torch

__all__ = ["trajectory_balance_loss", "trajectory_log_pb"]


def trajectory_balance_loss(
    log_z: torch.Tensor, log_pf: torch.Tensor, log_pb: torch.Tensor, log_reward: torch.Tensor
) -> torch.Tensor:
    """Mean TB loss; ``log_pf``, ``log_pb``, ``log_reward`` are ``[B]`` sums per trajectory."""
    return (log_z + log_pf - log_reward - log_pb).pow(2).mean()


def trajectory_log_pb(env, traj) -> torch.Tensor:
    """``[B]`` Σ_t log P_B(s_t | s_{t+1}) over the move transitions (the stop has P_B = 1)."""
    moved = traj.valid & (traj.actions != env.stop_action)  # [B, T]
    nxt = traj.states[:, 1:]
    b, t = moved.shape
    lpb = -env.log_n_parents(nxt.reshape(b * t, *nxt.shape[2:])).reshape(b, t)
    return (lpb * moved).sum(1)
