"""The sEH docking proxy of Bengio et al. 2021 (an MPNN over atom graphs) and its reward.

Network (weights p00..p21 of the public model; layout in ``docs/molecules.md`` §13):
    x = LeakyReLU(Linear 71→64)(atom features);  h = x
    12 × { m = LeakyReLU(NNConv_mean(x, edges; edge net 4→128→4096 as 64×64, root p02, bias p03));
           x = h = GRU(m, h) }
    y = Linear 128→1 (Set2Set(x, 3 steps))
Reward (docs/molecules.md): clip(y, 1e-4, 100) / 8. Built from torch-geometric's own ops (``NNConv``,
``Set2Set``), batched over molecules. Invalid molecules (None) get 0.

Orientation of the root weight p02 (a 64 × 64 matrix, so both ways run): the reference code of
the paper, like the other public GFlowNet code using this proxy, copies p02 straight into
torch-geometric's ``conv.lin.weight``, so the network computes x @ p02ᵀ. The rewards of the
paper's figures and tables were computed that way, hence it is the default (``root="reference"``).
The pre-2.0 torch-geometric NNConv applied its root as x @ root, i.e. x @ p02; that reading is
available as ``root="transposed"`` (it differs by a few percent on ordinary molecules and by far
more near the clip floor; ``tests/test_molecules_data.py`` checks both and that they differ).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from rdkit import Chem
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import NNConv, Set2Set

from sculpting.domains.molecules.data import load_proxy_params

__all__ = ["atom_features", "mol_to_graph", "SEHProxy", "seh_reward", "load_seh_proxy", "ROOT_ORIENTATIONS"]

ROOT_ORIENTATIONS = ("reference", "transposed")

_ELEMENTS = {"H": 0, "C": 1, "N": 2, "O": 3, "F": 4}
_HYB = {Chem.HybridizationType.SP: 10, Chem.HybridizationType.SP2: 11, Chem.HybridizationType.SP3: 12}
_BONDS = {Chem.BondType.SINGLE: 0, Chem.BondType.DOUBLE: 1, Chem.BondType.TRIPLE: 2, Chem.BondType.AROMATIC: 3}


def atom_features(mol) -> torch.Tensor:
    """``[n_atoms, 71]`` (see docs/molecules.md §13 for the columns)."""
    x = torch.zeros(mol.GetNumAtoms(), 71)
    for a in mol.GetAtoms():
        i = a.GetIdx()
        x[i, _ELEMENTS.get(a.GetSymbol(), 5)] = 1
        x[i, 9] = float(a.GetIsAromatic())
        if a.GetHybridization() in _HYB:
            x[i, _HYB[a.GetHybridization()]] = 1
        x[i, 13] = a.GetTotalNumHs()
        if a.GetAtomicNum() <= 56:
            x[i, 13 + a.GetAtomicNum()] = 1
    return x


def mol_to_graph(mol) -> Data:
    src, dst, attr = [], [], []
    for b in mol.GetBonds():
        u, v = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        oh = [0.0] * 4
        oh[_BONDS.get(b.GetBondType(), 0)] = 1.0
        src += [u, v]
        dst += [v, u]
        attr += [oh, oh]
    if not src:  # a molecule without bonds: one self-edge with zero features
        src, dst, attr = [0], [0], [[0.0] * 4]
    return Data(x=atom_features(mol), edge_index=torch.tensor([src, dst]), edge_attr=torch.tensor(attr))


class SEHProxy(nn.Module):
    def __init__(self, dim: int = 64, n_steps: int = 12):
        super().__init__()
        self.n_steps = n_steps
        self.lin0 = nn.Linear(71, dim)
        edge_net = nn.Sequential(nn.Linear(4, 128), nn.LeakyReLU(), nn.Linear(128, dim * dim))
        self.conv = NNConv(dim, dim, edge_net, aggr="mean")
        self.gru = nn.GRU(dim, dim)
        self.set2set = Set2Set(dim, processing_steps=3)
        self.lin_out = nn.Linear(2 * dim, 1)

    def load_reference(self, p, root: str = "reference"):
        """Load the 22 reference arrays (numpy) into this network; ``root``: "reference"
        (``conv.lin.weight = p02``, x @ p02ᵀ, as the paper's code) or "transposed" (x @ p02)."""
        if root not in ROOT_ORIENTATIONS:
            raise ValueError(f"unknown root orientation {root!r}; choose from {ROOT_ORIENTATIONS}")
        t = [torch.from_numpy(a).float() for a in p]
        with torch.no_grad():
            self.lin0.weight.copy_(t[0])
            self.lin0.bias.copy_(t[1])  # noqa: E702
            self.conv.lin.weight.copy_(t[2] if root == "reference" else t[2].T)
            self.conv.bias.copy_(t[3])  # noqa: E702
            self.conv.nn[0].weight.copy_(t[4])
            self.conv.nn[0].bias.copy_(t[5])  # noqa: E702
            self.conv.nn[2].weight.copy_(t[6])
            self.conv.nn[2].bias.copy_(t[7])  # noqa: E702
            self.gru.weight_ih_l0.copy_(t[8])
            self.gru.weight_hh_l0.copy_(t[9])  # noqa: E702
            self.gru.bias_ih_l0.copy_(t[10])
            self.gru.bias_hh_l0.copy_(t[11])  # noqa: E702
            lstm = self.set2set.lstm
            lstm.weight_ih_l0.copy_(t[16])
            lstm.weight_hh_l0.copy_(t[17])  # noqa: E702
            lstm.bias_ih_l0.copy_(t[18])
            lstm.bias_hh_l0.copy_(t[19])  # noqa: E702
            self.lin_out.weight.copy_(t[20])
            self.lin_out.bias.copy_(t[21])  # noqa: E702
        return self

    def forward(self, batch, cache_edge_net: bool = True) -> torch.Tensor:
        """A torch-geometric batch of molecule graphs → ``[B]`` raw proxy outputs.

        The NNConv edge network depends on the bond features only, which take a handful of
        distinct values (one-hot bond types): its 64×64 matrices are computed once per batch
        for the distinct rows and reused by all 12 steps (same numbers as ``NNConv``, ≈10×
        faster on CPU; ``tests/test_molecules_data.py`` checks both against plain torch).
        """
        x = F.leaky_relu(self.lin0(batch.x))
        h = x.unsqueeze(0)
        if not cache_edge_net:  # torch-geometric's NNConv as is (reference path, for benchmarks)
            for _ in range(self.n_steps):
                m = F.leaky_relu(self.conv(x, batch.edge_index, batch.edge_attr))
                x, h = self.gru(m.unsqueeze(0), h)
                x = x.squeeze(0)
            return self.lin_out(self.set2set(x, batch.batch)).squeeze(-1)
        uniq, kind = torch.unique(batch.edge_attr, dim=0, return_inverse=True)
        weights = self.conv.nn(uniq).view(len(uniq), x.shape[1], -1)  # [K, in, out]
        src, dst = batch.edge_index
        deg = torch.bincount(dst, minlength=len(x)).clamp(min=1).to(x.dtype)[:, None]
        for _ in range(self.n_steps):
            msg = torch.einsum("nd,kdo->kno", x, weights)[kind, src]
            agg = torch.zeros(len(x), msg.shape[1], dtype=x.dtype).index_add_(0, dst, msg) / deg
            m = F.leaky_relu(agg + self.conv.lin(x) + self.conv.bias)
            x, h = self.gru(m.unsqueeze(0), h)
            x = x.squeeze(0)
        return self.lin_out(self.set2set(x, batch.batch)).squeeze(-1)


_PROXIES: dict = {}


def load_seh_proxy(root: str = "reference") -> SEHProxy:
    """The proxy (cached per orientation), weights from the data directory; ``root`` as in
    :meth:`SEHProxy.load_reference` (the default matches the paper's rewards)."""
    if root not in _PROXIES:
        _PROXIES[root] = SEHProxy().load_reference(load_proxy_params(), root).eval()
    return _PROXIES[root]


@torch.no_grad()
def as_mols(mols) -> list:
    """A list of RDKit molecules (or None) from a list of molecules, SMILES strings or None
    (unparsable SMILES become None); anything else is a ``TypeError`` naming the item."""
    from rdkit import Chem

    if mols is None or isinstance(mols, (str, bytes)) or isinstance(mols, Chem.Mol):
        raise TypeError(f"pass a list of RDKit molecules or SMILES strings, got {type(mols).__name__}")
    out = []
    for i, m in enumerate(mols):
        if m is None or isinstance(m, Chem.Mol):
            out.append(m)
        elif isinstance(m, str):
            from rdkit.rdBase import BlockLogs

            with BlockLogs():  # an unparsable SMILES is an invalid molecule, not a console message
                out.append(Chem.MolFromSmiles(m) if m else None)
        else:
            raise TypeError(f"item {i} is a {type(m).__name__}, not an RDKit molecule, a SMILES string or None")
    return out


@torch.no_grad()
def seh_reward(mols, batch_size: int = 256, root: str = "reference") -> torch.Tensor:
    """``[len(mols)]`` sEH reward clip(proxy, 1e-4, 100) / 8 of RDKit molecules or SMILES strings;
    None or an unparsable SMILES (invalid) → 0. ``root``: the proxy's root-weight orientation
    ("reference" = the paper's numbers; "transposed" = the pre-2.0 torch-geometric reading)."""
    mols = as_mols(mols)
    proxy = load_seh_proxy(root)
    out = torch.zeros(len(mols))
    valid = [i for i, m in enumerate(mols) if m is not None]
    for k in range(0, len(valid), batch_size):
        idx = valid[k : k + batch_size]
        y = proxy(Batch.from_data_list([mol_to_graph(mols[i]) for i in idx]))
        out[idx] = torch.nan_to_num(y, nan=0.0).clamp(1e-4, 100.0) / 8
    return out
