"""Graph classifiers for sculpting molecule GFlowNets (docs/molecules.md §9).

The generic :class:`~sculpting.gflownet.classifier.SculptingClassifier` (heads, label algebra,
α-conditioning, exchangeable three-base joint) on a graph-transformer body: the trunk sees the
condition c = logit α · (1 − t) (two bases) or c = t (three bases) through its virtual node and
FiLM layers, and returns the graph embedding ``[B, 2w]`` the heads read.

β-conditional classifiers (``beta_conditioned=True``) serve every β of the β-conditional bases:
the trunk's condition is [c, thermometer(β)] (33 inputs, the bases' own β code), and training
draws β per group of trajectories from :class:`BetaRange` (the bases' training range by default).
"""

from __future__ import annotations

import torch
from torch import nn

from sculpting.domains.molecules.graph_transformer import GraphTransformer, featurize
from sculpting.domains.molecules.policy import MAX_BETA, N_BINS, thermometer
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.infrastructure.training_scaffold import seeded_init

__all__ = ["GraphBody", "make_graph_classifier", "BetaRange"]


class GraphBody(nn.Module):
    """``forward(states, cond [B, 1] or [B, 2] = (c, β))`` → graph embedding ``[B, 2·width]``."""

    def __init__(self, env, width: int = 64, n_layers: int = 2, n_heads: int = 2, beta_conditioned: bool = False):
        super().__init__()
        self.env, self.beta_conditioned = env, beta_conditioned
        self.arch = {"width": width, "n_layers": n_layers, "n_heads": n_heads}
        if beta_conditioned:
            self.arch["beta_conditioned"] = True
        self.out_dim = 2 * width
        self.trunk = GraphTransformer(env.n_frags + 1, 1 + N_BINS * beta_conditioned, width, n_layers, n_heads)

    def forward(self, states: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        cond = cond.reshape(len(states), -1).float()
        if self.beta_conditioned:
            if cond.shape[1] != 2:
                raise ValueError("a β-conditional graph classifier needs β (context=β)")
            cond = torch.cat([cond[:, :1], thermometer(cond[:, 1])], dim=1)
        _, graph = self.trunk(featurize(self.env, states), cond)
        return graph


class BetaRange:
    """β ~ U[low, high] per group of training trajectories; ``bind(base, β)`` = ``base.at_beta(β)``."""

    def __init__(self, low: float = 0.0, high: float = MAX_BETA):
        if not 0 <= low < high <= MAX_BETA:
            raise ValueError(f"need 0 ≤ low < high ≤ {MAX_BETA}, got [{low}, {high}]")
        self.low, self.high = float(low), float(high)

    def sample(self, generator) -> float:
        u = torch.rand((), generator=generator, device=generator.device)
        return self.low + (self.high - self.low) * float(u)

    @staticmethod
    def bind(base, beta: float):
        return base.at_beta(beta)


def make_graph_classifier(
    env,
    n_bases: int = 2,
    n_slots: int | None = None,
    alpha_conditioned: bool | None = None,
    exchangeable: bool | None = None,
    width: int = 64,
    n_layers: int = 2,
    n_heads: int = 2,
    beta_conditioned: bool = False,
    *,
    seed: int | None = None,
) -> SculptingClassifier:
    """Two bases: α-conditioned (slots 2); three bases: exchangeable joint over 3 slots;
    ``beta_conditioned``: β (the bases' inverse temperature) as an input. ``seed``: initial weights
    from that seed (torch's global generator untouched)."""

    n_slots = (2 if n_bases == 2 else n_bases) if n_slots is None else n_slots
    with seeded_init(seed):
        return SculptingClassifier(
            env,
            n_bases,
            n_slots,
            alpha_conditioned,
            exchangeable,
            body=GraphBody(env, width, n_layers, n_heads, beta_conditioned),
            context_conditioned=beta_conditioned,
        )
