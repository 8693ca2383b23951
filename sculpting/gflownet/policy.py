"""Forward policies: the MLP estimator of a base GFlowNet and a tabular policy.

Every policy exposes ``log_probs(states) -> [B, A]``: masked, normalised log π(a | s)
(−inf on invalid actions). This is the one interface the sampler, the exact DP
(:func:`policy_table`) and the guided policy use, so a guided policy is itself a policy.
"""

from __future__ import annotations

import torch
from torch import nn

from sculpting.infrastructure.bounds import MAX_LAYERS, check_count, check_parameter_memory, check_width
from sculpting.infrastructure.training_scaffold import seeded_init
from sculpting.describe import model_name, n_parameters

__all__ = ["MLP", "GFlowNet", "TabularPolicy", "masked_log_softmax", "policy_table"]


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log_softmax over the valid entries of the last dim; invalid entries are −inf."""
    return torch.log_softmax(logits.masked_fill(~mask, -float("inf")), dim=-1)


class MLP(nn.Sequential):
    """``in_dim → hidden × n_layers (LeakyReLU) → out_dim``."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, n_layers: int = 2):
        check_width("hidden", hidden)
        check_count("n_layers", n_layers, 1, MAX_LAYERS)
        check_parameter_memory("this MLP", in_dim * hidden + (n_layers - 1) * hidden * hidden + hidden * out_dim)
        layers, d = [], in_dim
        for _ in range(n_layers):
            layers += [nn.Linear(d, hidden), nn.LeakyReLU()]
            d = hidden
        layers.append(nn.Linear(d, out_dim))
        super().__init__(*layers)


class GFlowNet(nn.Module):
    """A base GFlowNet: forward-policy estimator on ``env.encode(s)`` and a learned log Z.

    The backward policy is the environment's uniform one (P_B = 1 / #parents), so only the
    forward logits are learned (docs/grid.md: one-hot state 64 → 256 → 256 → 3 on the 32×32 grid).
    """

    def __init__(self, env, hidden: int = 256, n_layers: int = 2, seed: int | None = None):
        super().__init__()
        self.env = env
        self.arch = {"hidden": hidden, "n_layers": n_layers}
        with seeded_init(seed):  # seed=: initial weights from that seed, torch's generator untouched
            self.net = MLP(env.feature_dim, env.n_actions, hidden, n_layers)
        self.log_z = nn.Parameter(torch.zeros(()))

    def __repr__(self) -> str:
        return f"GFlowNet({model_name(self)}: {type(self.env).__name__}, {n_parameters(self)} parameters)"

    def _apply(self, fn, *args, **kwargs):
        """``model.to(device)`` also moves the environment's tables (when it has ``to``)."""
        out = super()._apply(fn, *args, **kwargs)
        if hasattr(self.env, "to"):
            self.env.to(self.log_z.device)
        return out

    def log_probs(self, states: torch.Tensor, cond=None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("this GFlowNet is not conditional")
        logits = self.net(self.env.encode(states))
        return masked_log_softmax(logits, self.env.action_mask(states))

    def log_partition(self, cond=None) -> torch.Tensor:
        """log Z (a scalar; unconditional)."""
        return self.log_z


class TabularPolicy:
    """A policy given as a table ``[N, A]`` over an enumerable environment's states."""

    def __init__(self, env, log_pi: torch.Tensor):
        if log_pi.shape != (env.n_states, env.n_actions):
            raise ValueError(f"table must be [{env.n_states}, {env.n_actions}], got {tuple(log_pi.shape)}")
        self.env, self.table = env, log_pi

    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        return self.table[self.env.index(states)]


@torch.no_grad()
def policy_table(env, policy) -> torch.Tensor:
    """``[N, A]`` float64 table of a policy on every state of an enumerable environment, each row
    renormalised in float64 (a float32 network's rows sum to 1 only within ~1e-7)."""
    if isinstance(policy, TabularPolicy):
        table = policy.table.double()
    elif hasattr(policy, "table_on"):
        table = policy.table_on(env).double()
    else:
        table = policy.log_probs(env.all_states()).double()
    norm = torch.logsumexp(table, dim=-1, keepdim=True)
    return table - torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))
