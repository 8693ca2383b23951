"""What the GFlowNet samplers share: drawing trajectories in batches with an action sampler."""

from __future__ import annotations

import torch

from sculpting.gflownet.paths import PathComposition
from sculpting.gflownet.rejection import action_sampler_for
from sculpting.gflownet.rollout import sample_trajectories
from sculpting.sampling import Sampler

#: trajectories drawn at once when no batch_size is given (bounds the working memory of a large draw)
DEFAULT_BATCH = 65536


def trajectory_bytes(env) -> int | None:
    """An upper bound on the working memory of one trajectory in flight (measured on the grid:
    4–5 kB per trajectory for 63 steps of 16-byte states, base or guided; this gives 6.2 kB):
    its states, 4 copies (features, masks, successors), plus features and per-action tables."""
    try:
        s0 = env.initial_states(1)
        length = int(env.max_trajectory_length)
    except Exception:  # noqa: BLE001 (an env without these: no estimate)
        return None
    feat, acts = int(getattr(env, "feature_dim", 0) or 0), int(getattr(env, "n_actions", 0) or 0)
    return 4 * length * s0.numel() * s0.element_size() + 32 * feat + 32 * acts


class RolloutSampler(Sampler):
    """A GFlowNet sampler that rolls trajectories out step by step, choosing each action with
    :func:`~sculpting.gflownet.rejection.action_sampler_for` under :attr:`action_sampler` (None:
    the policy's own ``log_probs``), ``batch_size`` trajectories at a time (default
    :data:`DEFAULT_BATCH`)."""

    family = "gflownet"
    #: the action-sampler name of :func:`~sculpting.gflownet.rejection.action_sampler_for`
    action_sampler = "full"

    def draw(self, model, n: int, generator=None, *, steps=None, batch_size=None, progress=False) -> torch.Tensor:
        if isinstance(model, PathComposition):
            raise ValueError(
                f"sampler={self.name!r} follows a guided policy; a path composition (no classifier) "
                "has none, its target lives on trajectories: sample it with sampler='smc' (or 'auto')"
            )
        bs = batch_size or min(n, DEFAULT_BATCH)
        act = action_sampler_for(model, self.action_sampler, **self.values)
        return torch.cat(
            [
                sample_trajectories(model.env, model, min(bs, n - i), generator=generator, action_sampler=act).terminal
                for i in range(0, n, bs)
            ]
        )
