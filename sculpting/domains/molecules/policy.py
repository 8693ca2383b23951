"""β-conditional fragment GFlowNet: graph-transformer policy + log Z(β) (docs/molecules.md §6–§7).

Conditioning: log R = β · log max(r, 1e-30); β is thermometer-encoded in 32 bins
b_k = 96k/31, e_k = clip((β − b_k)/(96/31), 0, 1) (β = 0 → zeros; β = 96 → 31 ones, last 0).

Heads on the trunk (w = width): Stop Linear(2w → 1) on the graph embedding; AddNode
Linear(w → F) per node; SetEdgeAttr Linear(2w → 12) on [h_u, h_v] per edge; log Z(β) =
MLP(32 → 2w → 2w → 1). All logits of a graph are placed in the env's flat action layout and
normalised jointly over the legal ones (``log_probs`` → ``[B, A]``, −inf where illegal).
"""

from __future__ import annotations

import torch
from torch import nn

from sculpting.domains.molecules.constants import INVALID_LOG_REWARD
from sculpting.domains.molecules.graph_transformer import GraphTransformer, featurize
from sculpting.gflownet.policy import masked_log_softmax
from sculpting.infrastructure.training_scaffold import seeded_init
from sculpting.describe import model_name, n_parameters

__all__ = ["thermometer", "MoleculeGFlowNet", "FixedBeta", "PRESETS", "BetaConditioning", "MAX_BETA"]

MAX_BETA = 96.0
N_BINS = 32
PRESETS = {
    "paper": {"width": 128, "n_layers": 6, "n_heads": 2},
    "cpu": {"width": 64, "n_layers": 2, "n_heads": 2},
    "smoke": {"width": 32, "n_layers": 1, "n_heads": 2},
}


def thermometer(beta, n_bins: int = N_BINS, max_beta: float = MAX_BETA) -> torch.Tensor:
    """``[B] → [B, n_bins]`` thermometer code of β (docs/molecules.md §7)."""
    beta = (
        beta.float() if isinstance(beta, torch.Tensor) else torch.tensor(beta, dtype=torch.float32, device="cpu")
    ).reshape(-1)
    step = max_beta / (n_bins - 1)
    bins = torch.arange(n_bins, device=beta.device) * step
    return ((beta[:, None] - bins[None]) / step).clamp(0.0, 1.0)


class MoleculeGFlowNet(nn.Module):
    """Forward policy π(a | s, β) and log Z(β) of a fragment GFlowNet on ``env``."""

    def __init__(self, env, width: int = 64, n_layers: int = 2, n_heads: int = 2, *, seed: int | None = None):
        super().__init__()

        self.env = env
        self.arch = {"width": width, "n_layers": n_layers, "n_heads": n_heads}
        w = width
        with seeded_init(seed):  # seed=: initial weights from that seed, torch's generator untouched
            self.trunk = GraphTransformer(env.n_frags + 1, N_BINS, w, n_layers, n_heads)
            self.stop_head = nn.Linear(2 * w, 1)
            self.add_head = nn.Linear(w, env.n_frags)
            self.set_head = nn.Linear(2 * w, 12)
            self.log_z_net = nn.Sequential(
                nn.Linear(N_BINS, 2 * w), nn.LeakyReLU(), nn.Linear(2 * w, 2 * w), nn.LeakyReLU(), nn.Linear(2 * w, 1)
            )

    def __repr__(self) -> str:
        return f"MoleculeGFlowNet({model_name(self)}: β-conditional, {n_parameters(self)} parameters)"

    def _beta(self, beta, n):
        if beta is None:
            raise ValueError("a β-conditional model needs beta (use model.at_beta(β) for a fixed β)")
        b = self._as_tensor(beta)
        if b.numel() == 1:
            b = b.expand(n)
        if len(b) != n:
            raise ValueError(f"got {len(b)} β values for {n} states")
        if isinstance(beta, (int, float)):  # a number: checked without reading the device
            if not 0 <= beta <= MAX_BETA:
                raise ValueError(f"β must lie in [0, {MAX_BETA}]")
        elif bool(((b < 0) | (b > MAX_BETA)).any()):  # one read for a tensor of β
            raise ValueError(f"β must lie in [0, {MAX_BETA}]")
        return b

    def logits(self, states: torch.Tensor, beta) -> torch.Tensor:
        """``[B, A]`` raw logits in the flat action layout (illegal entries unmasked)."""
        env = self.env
        B, M, Fn = len(states), env.max_frags, env.n_frags
        g = featurize(env, states)
        nodes, graph = self.trunk(g, thermometer(self._beta(beta, B)))
        dev = states.device
        out = torch.zeros(B, env.n_actions, device=dev)
        add = torch.zeros(B * M, Fn, device=dev)
        add[g.rows] = self.add_head(nodes)  # node row i sits at flat position rows[i]
        out[:, : env.n_add] = add.reshape(B, -1)
        n_tree = len(g.edges)  # the first n_tree edges: parent → child, in the order of g.edges
        hu, hv = nodes[g.edge_index[0, :n_tree]], nodes[g.edge_index[1, :n_tree]]
        st = torch.zeros(B * (M - 1), 12, device=dev)
        st[g.edges] = self.set_head(torch.cat([hu, hv], 1))
        out[:, env.n_add : env.stop_action] = st.reshape(B, -1)
        out[:, env.stop_action] = self.stop_head(graph).squeeze(1)
        return out

    def log_probs(self, states: torch.Tensor, cond=None) -> torch.Tensor:
        """``[B, A]`` log π(a | s, β) (``cond`` = β, a scalar or ``[B]``)."""
        return masked_log_softmax(self.logits(states, cond), self.env.action_mask(states))

    def log_partition(self, cond) -> torch.Tensor:
        """``[B]`` log Z(β)."""
        return self.log_z_net(thermometer(self._as_tensor(cond))).squeeze(1)

    def _as_tensor(self, beta) -> torch.Tensor:
        dev = self.stop_head.weight.device
        if isinstance(beta, torch.Tensor):
            return beta.float().reshape(-1).to(dev)
        return torch.tensor(beta, dtype=torch.float32, device=dev).reshape(-1)

    def _apply(self, fn, *args, **kwargs):
        """``model.to(device)`` also moves the environment."""
        out = super()._apply(fn, *args, **kwargs)
        self.env.to(self.stop_head.weight.device)
        return out

    def at_beta(self, beta: float) -> "FixedBeta":
        return FixedBeta(self, beta)


class FixedBeta:
    """The policy of a β-conditional model at one β: ``log_probs(states)`` like any base."""

    def __init__(self, model: MoleculeGFlowNet, beta: float):
        if not 0 <= beta <= MAX_BETA:
            raise ValueError(f"β must lie in [0, {MAX_BETA}], got {beta}")
        self.model, self.beta, self.env = model, float(beta), model.env

    @torch.no_grad()
    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        return self.model.log_probs(states, self.beta)

    def __repr__(self):
        return f"FixedBeta({self.env.objective}, β={self.beta:g})"


class BetaConditioning:
    """Per-trajectory β ~ U[0, max_beta] and log R = β · log r (invalid molecules: −75)."""

    def __init__(self, max_beta: float = MAX_BETA):
        self.max_beta = max_beta

    def sample(self, n: int, generator=None) -> torch.Tensor:
        return (
            torch.rand(n, generator=generator, device=generator.device if generator is not None else "cpu")
            * self.max_beta
        )

    def log_reward(self, env, terminal: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        log_r, valid = env.log_reward_parts(terminal)
        lr = cond.double() * log_r
        return torch.where(valid, lr.clamp(min=INVALID_LOG_REWARD), torch.full_like(lr, INVALID_LOG_REWARD))
