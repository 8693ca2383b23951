"""Graph classifiers for sculpting molecule GFlowNets (docs/molecules.md §9).

The generic :class:`~sculpting.gflownet.classifier.SculptingClassifier` (heads, label algebra,
α-conditioning, exchangeable three-base joint) on a graph-transformer body: the trunk sees the
condition c = logit α · (1 − t) (two bases) or c = t (three bases) through its virtual node and
FiLM layers, and returns the graph embedding ``[B, 2w]`` the heads read.
"""
from __future__ import annotations

import torch
from torch import nn

from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.domains.molecules.graph_transformer import GraphTransformer, featurize

__all__ = ["GraphBody", "make_graph_classifier"]


class GraphBody(nn.Module):
    """``forward(states, cond [B, 1])`` → graph embedding ``[B, 2·width]``."""

    def __init__(self, env, width: int = 64, n_layers: int = 2, n_heads: int = 2):
        super().__init__()
        self.env = env
        self.arch = {"width": width, "n_layers": n_layers, "n_heads": n_heads}
        self.out_dim = 2 * width
        self.trunk = GraphTransformer(env.n_frags + 1, 1, width, n_layers, n_heads)

    def forward(self, states: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        _, graph = self.trunk(featurize(self.env, states), cond.reshape(-1, 1).float())
        return graph


def make_graph_classifier(env, n_bases: int = 2, n_slots: int | None = None, alpha_conditioned: bool | None = None,
                          exchangeable: bool | None = None, width: int = 64, n_layers: int = 2,
                          n_heads: int = 2) -> SculptingClassifier:
    """Two bases: α-conditioned (slots 2); three bases: exchangeable joint over 3 slots."""
    n_slots = (2 if n_bases == 2 else n_bases) if n_slots is None else n_slots
    return SculptingClassifier(env, n_bases, n_slots, alpha_conditioned, exchangeable,
                               body=GraphBody(env, width, n_layers, n_heads))
