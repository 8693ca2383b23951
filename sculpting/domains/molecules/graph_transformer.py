"""Graph featurisation of fragment trees and the graph-transformer trunk (docs/molecules.md §5–§6).

Features (from the tensor states of :class:`~sculpting.domains.molecules.env.FragmentGraphEnv`):
node ``[N, F + 1]`` = one-hot fragment ⊕ "empty tree" flag (the empty tree is one flag-only
row); edges stored in both directions, ``[E, 14]`` = one-hot(source-end stem + 1, 7) ⊕
one-hot(target-end stem + 1, 7) (0 = unset).

Trunk (width w, L layers, 2 heads): node / edge / condition encoders (3 Linear, LeakyReLU);
one virtual node per graph carrying the condition embedding c, linked both ways to every node
with the constant edge embedding (1, 0, …, 0); self-loops with the mean incoming edge
embedding. Per layer (pre-norm, graph-mode LayerNorm without affine):

    h̃ = LN(h);  a = GENConv(h̃);  t = Linear(TransformerConv([h̃, a]))   (2 heads concatenated)
    (γ, b) = Linear(c);  h ← h + γ ⊙ t + b;  h ← h + FFN(LN(h))          (FFN w → 4w → w)

Outputs: node embeddings ``[N, w]`` of the real nodes and the graph embedding
``[B, 2w]`` = [mean of real nodes, virtual node].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric import nn as gnn
from torch_geometric.utils import add_self_loops

__all__ = ["GraphBatch", "featurize", "GraphTransformer", "mlp3"]


class GraphBatch:
    """Plain tensors of a batch of fragment trees.

    x ``[N, F+1]``, edge_index ``[2, E]``, edge_attr ``[E, 14]``, batch ``[N]`` (graph of each
    node), node_index ``[B, M]`` (row of node u of graph b in x, −1 if absent), n_graphs B;
    rows ``[N]``: the flat position b·M + u of each node row, edges ``[E / 2]``: the flat position
    b·(M − 1) + (v − 1) of each tree edge (its child v); ``edge_index[:, :E/2]`` are the tree edges
    parent → child, the rest the same reversed.
    """

    def __init__(self, x, edge_index, edge_attr, batch, node_index, n_graphs, rows=None, edges=None):
        self.x, self.edge_index, self.edge_attr = x, edge_index, edge_attr
        self.batch, self.node_index, self.n_graphs = batch, node_index, n_graphs
        self.rows, self.edges = rows, edges


def featurize(env, states: torch.Tensor) -> GraphBatch:
    """The :class:`GraphBatch` of ``states`` ``[B, S]``: the nodes and the edges are found by one
    ``nonzero`` each (two host reads: their counts size the batch), then gathered by index."""
    nodes, parent, su, sv = env.split(states)
    B, M = nodes.shape
    Fn = env.n_frags
    present = nodes >= 0
    empty = ~present.any(1)
    row_mask = present.clone()
    row_mask[:, 0] |= empty
    dev = states.device
    rows = row_mask.reshape(-1).nonzero().squeeze(1)  # flat b·M + u, row-major: the order of x
    k = len(rows)
    node_index = torch.full((B * M,), -1, dtype=torch.long, device=dev)
    node_index[rows] = torch.arange(k, device=dev)
    node_index = node_index.reshape(B, M)
    x = torch.zeros(k, Fn + 1, device=dev)
    f = nodes.reshape(-1)[rows]
    x[torch.arange(k, device=dev), torch.where(f >= 0, f, Fn)] = 1.0  # a fragment, or the "empty" column
    batch = torch.div(rows, M, rounding_mode="floor")
    edges = (parent >= 0).reshape(-1).nonzero().squeeze(1)  # flat b·(M − 1) + (v − 1)
    src = node_index.gather(1, parent.clamp(min=0)).reshape(-1)[edges]
    dst = node_index[:, 1:].reshape(-1)[edges]
    a, b = su.reshape(-1)[edges] + 1, sv.reshape(-1)[edges] + 1
    oh = lambda i: F.one_hot(i, 7).float()  # noqa: E731
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    edge_attr = torch.cat([torch.cat([oh(a), oh(b)], 1), torch.cat([oh(b), oh(a)], 1)])
    return GraphBatch(x, edge_index, edge_attr, batch, node_index, B, rows, edges)


def mlp3(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Linear → LeakyReLU → Linear → LeakyReLU → Linear."""
    return nn.Sequential(
        nn.Linear(d_in, d_hidden),
        nn.LeakyReLU(),
        nn.Linear(d_hidden, d_hidden),
        nn.LeakyReLU(),
        nn.Linear(d_hidden, d_out),
    )


class GraphTransformer(nn.Module):
    """The trunk. ``forward(g, cond [B, cond_dim])`` → (node emb ``[N, w]``, graph emb ``[B, 2w]``)."""

    def __init__(
        self,
        n_node_features: int,
        cond_dim: int,
        width: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        n_edge_features: int = 14,
    ):
        super().__init__()
        w = width
        self.width, self.n_layers = w, n_layers
        self.node_enc = mlp3(n_node_features, w, w)
        self.edge_enc = mlp3(n_edge_features, w, w)
        self.cond_enc = mlp3(cond_dim, w, w)
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(
                nn.ModuleDict(
                    {
                        "gen": gnn.GENConv(w, w, num_layers=1, aggr="add", norm=None),
                        "trans": gnn.TransformerConv(2 * w, w, heads=n_heads, edge_dim=w),
                        "lin": nn.Linear(n_heads * w, w),
                        "norm1": gnn.LayerNorm(w, affine=False),
                        "ff": nn.Sequential(nn.Linear(w, 4 * w), nn.LeakyReLU(), nn.Linear(4 * w, w)),
                        "norm2": gnn.LayerNorm(w, affine=False),
                        "film": nn.Linear(w, 2 * w),
                    }
                )
            )

    def forward(self, g: GraphBatch, cond: torch.Tensor):
        N, B = len(g.x), g.n_graphs
        dev = g.x.device
        h = self.node_enc(g.x)
        e = self.edge_enc(g.edge_attr)
        c = self.cond_enc(cond)  # [B, w]
        virt = torch.arange(B, device=dev) + N
        real = torch.arange(N, device=dev)
        ei = torch.cat([g.edge_index, torch.stack([real, virt[g.batch]]), torch.stack([virt[g.batch], real])], 1)
        e_v = torch.zeros(2 * N, e.shape[1], device=dev)
        e_v[:, 0] = 1.0
        ei, ea = add_self_loops(ei, torch.cat([e, e_v]), fill_value="mean", num_nodes=N + B)
        h = torch.cat([h, c])
        aug_batch = torch.cat([g.batch, torch.arange(B, device=dev)])
        c_aug = c[aug_batch]
        for layer in self.layers:
            hn = layer["norm1"](h, aug_batch)
            agg = layer["gen"](hn, ei, ea)
            t = layer["lin"](layer["trans"](torch.cat([hn, agg], 1), ei, ea))
            gamma, shift = layer["film"](c_aug).chunk(2, dim=1)
            h = h + gamma * t + shift
            h = h + layer["ff"](layer["norm2"](h, aug_batch))
        nodes = h[:N]
        mean = torch.zeros(B, self.width, device=nodes.device).index_add_(0, g.batch, nodes)
        mean = mean / torch.bincount(g.batch, minlength=B).clamp(min=1)[:, None]
        return nodes, torch.cat([mean, h[N:]], 1)
