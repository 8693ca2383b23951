"""A torchgfn forward policy on its ``HyperGrid`` as a sculpting GFlowNet base (extra: ``torchgfn``).

torchgfn's HyperGrid and :class:`~sculpting.domains.grid.GridEnv` share the state layout (integer
coordinates ``[B, d]`` from the origin) and the action layout (action k < d adds 1 to coordinate k,
action d stops), so the adapter only converts states and masks the estimator's logits:

    log π(a | s) = log_softmax over the legal a of ``estimator(states_from_tensor(s))``.

The adapter's ``env`` is a ``GridEnv`` of the same size whose reward is torchgfn's log-reward,
registered under ``torchgfn_<reward_fn_str>_<height>x<ndim>`` (so exact DP, the oracle classifier and
every sampler of this package apply).
"""
from __future__ import annotations

import warnings

import torch

# torch-geometric (imported by torchgfn) calls torch.jit.script at import time, which torch ≥ 2.10 deprecates
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

from sculpting.domains.grid.env import GridEnv
from sculpting.domains.grid.rewards import USER_REWARDS, register_reward
from sculpting.gflownet.policy import masked_log_softmax

__all__ = ["TorchGFNPolicy", "grid_env_for"]


def grid_env_for(gfn_env) -> GridEnv:
    """The :class:`GridEnv` mirroring a torchgfn ``HyperGrid`` (its reward registered by name)."""
    for attr in ("height", "ndim", "states_from_tensor", "log_reward"):
        if not hasattr(gfn_env, attr):
            raise TypeError(f"expected a torchgfn HyperGrid, got {type(gfn_env).__name__} (no {attr})")
    tag = getattr(gfn_env, "reward_fn_str", None) or type(getattr(gfn_env, "reward_fn", gfn_env)).__name__
    name = f"torchgfn_{tag}_{gfn_env.height}x{gfn_env.ndim}"

    @torch.no_grad()
    def log_reward(z: torch.Tensor) -> torch.Tensor:
        return gfn_env.log_reward(gfn_env.states_from_tensor(z.to(gfn_env.device))).double().cpu()

    USER_REWARDS.pop(name, None)  # one torchgfn env per name in a process: the latest wins
    register_reward(name, log_reward)
    return GridEnv(gfn_env.height, gfn_env.ndim, name)


class TorchGFNPolicy(torch.nn.Module):
    """Wrap ``estimator`` (a torchgfn ``DiscretePolicyEstimator``, forward) trained on ``gfn_env``.

    ``log_probs(states)`` ``[B, d + 1]`` with states ``[B, d]`` int64 (this package's layout).
    """

    def __init__(self, estimator, gfn_env):
        super().__init__()
        if getattr(estimator, "is_backward", False):
            raise ValueError("wrap the forward policy estimator (is_backward=False)")
        self.estimator, self.gfn_env = estimator, gfn_env
        self.env = grid_env_for(gfn_env)

    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        s = self.gfn_env.states_from_tensor(states.to(self.gfn_env.device))
        logits = self.estimator(s).to(states.device).float()
        return masked_log_softmax(logits, self.env.action_mask(states))
