"""Molecule data directory, converters and the sEH proxy (needs SCULPTING_DATA_DIR, as in CI)."""

import gzip
import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sculpting.domains.molecules import data as mdata

rdkit = pytest.importorskip("rdkit")
from molecule_data import HAVE_DATA, needs_data  # noqa: E402,F401  (the one rule)
from rdkit import Chem  # noqa: E402


def test_missing_data_names_the_variable_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SCULPTING_DATA_DIR", str(tmp_path))
    with pytest.raises(
        mdata.MissingDataError, match="SCULPTING_DATA_DIR.*python -m sculpting.domains.molecules.data download"
    ):
        mdata.load_fragments()


def test_proxy_pickle_converter_accepts_arrays_only():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(22)]
    npz = np.load(io.BytesIO(mdata.convert_proxy_pickle(gzip.compress(pickle.dumps(arrays)))))
    assert np.array_equal(npz["p05"], arrays[5])

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        mdata.convert_proxy_pickle(gzip.compress(pickle.dumps([Evil()])))


def test_fragment_source_is_read_literally_never_executed(tmp_path):
    marker = tmp_path / "executed"
    src = f"import os\nos.system('touch {marker}')\nFRAGMENTS = [['C', [0]], ['c1ccccc1', [0, 1, 2, 3, 4, 5]]]\n"
    out = json.loads(mdata.convert_fragment_source(src))
    assert out == [
        {"smiles": "C", "attachment_atoms": [0]},
        {"smiles": "c1ccccc1", "attachment_atoms": [0, 1, 2, 3, 4, 5]},
    ]
    assert not marker.exists()
    with pytest.raises(ValueError, match="no FRAGMENTS"):
        mdata.convert_fragment_source("X = 1")


@needs_data
def test_vocabulary_matches_the_reference():
    import hashlib

    frags = mdata.load_fragments()
    assert len(frags) == 72 and sum(len(a) for _, a in frags) == 127
    assert all(Chem.MolFromSmiles(s) is not None for s, _ in frags)
    assert (
        hashlib.sha256(mdata.fragments_path().read_bytes()).hexdigest()
        == mdata.SOURCES["fragments"]["converted_sha256"]
    )


def _plain_torch_proxy(p, mol, root="reference"):
    """Independent re-computation with plain tensor ops (no torch-geometric). ``root="reference"``:
    the paper's code, which copies p02 into torch-geometric's ``lin.weight`` (x @ p02ᵀ);
    "transposed": x @ p02."""
    from sculpting.domains.molecules.proxy import atom_features

    t = [torch.from_numpy(a).double() for a in p]
    x = F.leaky_relu(atom_features(mol).double() @ t[0].T + t[1])
    src, dst, ea = [], [], []
    for b in mol.GetBonds():
        oh = torch.zeros(4, dtype=torch.float64)
        oh[{Chem.BondType.DOUBLE: 1, Chem.BondType.TRIPLE: 2, Chem.BondType.AROMATIC: 3}.get(b.GetBondType(), 0)] = 1
        for u, v in ((b.GetBeginAtomIdx(), b.GetEndAtomIdx()), (b.GetEndAtomIdx(), b.GetBeginAtomIdx())):
            src.append(u), dst.append(v), ea.append(oh)
    if not src:
        src, dst, ea = [0], [0], [torch.zeros(4, dtype=torch.float64)]
    ea = torch.stack(ea)
    W = (F.leaky_relu(ea @ t[4].T + t[5]) @ t[6].T + t[7]).reshape(-1, 64, 64)
    n = x.shape[0]
    h = x
    for _ in range(12):
        agg = torch.zeros(n, 64, dtype=torch.float64)
        cnt = torch.zeros(n, dtype=torch.float64)
        for e, (u, v) in enumerate(zip(src, dst)):
            agg[v] += x[u] @ W[e]
            cnt[v] += 1
        m = F.leaky_relu(agg / cnt.clamp(min=1)[:, None] + x @ (t[2].T if root == "reference" else t[2]) + t[3])
        gi, gh = m @ t[8].T + t[10], h @ t[9].T + t[11]
        r = torch.sigmoid(gi[:, :64] + gh[:, :64])
        z = torch.sigmoid(gi[:, 64:128] + gh[:, 64:128])
        c = torch.tanh(gi[:, 128:] + r * gh[:, 128:])
        h = (1 - z) * c + z * h
        x = h
    q_star = torch.zeros(128, dtype=torch.float64)
    hl, cl = torch.zeros(64, dtype=torch.float64), torch.zeros(64, dtype=torch.float64)
    for _ in range(3):
        g = q_star @ t[16].T + t[18] + hl @ t[17].T + t[19]
        i, f, gg, o = g[:64].sigmoid(), g[64:128].sigmoid(), g[128:192].tanh(), g[192:].sigmoid()
        cl = f * cl + i * gg
        hl = o * cl.tanh()
        a = torch.softmax(x @ hl, 0)
        q_star = torch.cat([hl, (a[:, None] * x).sum(0)])
    return float(q_star @ t[20][0] + t[21][0])


@needs_data
@pytest.mark.parametrize("root", ["reference", "transposed"])
def test_seh_proxy_matches_plain_torch_recomputation_and_batches(root):
    from torch_geometric.data import Batch

    from sculpting.domains.molecules.proxy import load_seh_proxy, mol_to_graph, seh_reward

    smiles = ["c1ccccc1", "CCO", "O=C(O)c1ccc(N)cc1", "C", "Cc1ccc2[nH]c(-c3ccncc3)nc2c1", "C#N"]
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    p = mdata.load_proxy_params()
    batch = Batch.from_data_list([mol_to_graph(m) for m in mols])
    with torch.no_grad():
        y = load_seh_proxy(root)(batch)
        y_nnconv = load_seh_proxy(root)(batch, cache_edge_net=False)  # torch-geometric's NNConv as is
    ref = torch.tensor([_plain_torch_proxy(p, m, root) for m in mols], dtype=torch.float32)
    assert torch.allclose(y, ref, rtol=1e-4, atol=1e-4), (y, ref)
    assert torch.allclose(y_nnconv, ref, rtol=1e-4, atol=1e-4), (y_nnconv, ref)
    r = seh_reward(mols + [None], root=root)
    assert torch.allclose(r[:-1], ref.clamp(1e-4, 100) / 8, atol=1e-4) and r[-1] == 0
    one_by_one = torch.cat([seh_reward([m], root=root) for m in mols])
    assert torch.allclose(r[:-1], one_by_one, atol=1e-5)


@needs_data
def test_the_two_root_orientations_differ_and_the_default_is_the_reference():
    """A regression to the transposed reading must be caught: the two orientations give clearly
    different rewards on drug-like molecules, and the default is the paper's (x @ p02ᵀ)."""
    from sculpting.domains.molecules.proxy import seh_reward

    smiles = ["O=C(O)c1ccc(N)cc1", "Cc1ccc2[nH]c(-c3ccncc3)nc2c1", "CC(=O)Nc1ccc(O)cc1", "c1ccc2ccccc2c1"]
    ref, tr = seh_reward(smiles), seh_reward(smiles, root="transposed")
    assert (ref - tr).abs().max() > 0.01 * ref.abs().max(), (ref, tr)
    plain = torch.tensor([_plain_torch_proxy(mdata.load_proxy_params(), Chem.MolFromSmiles(s)) for s in smiles])
    assert torch.allclose(ref, plain.float().clamp(1e-4, 100) / 8, atol=1e-4)
    with pytest.raises(ValueError, match="orientation"):
        seh_reward(smiles, root="sideways")


def test_qed_sa_mw_rewards():
    from sculpting.domains.molecules.rewards import compute_rewards

    mols = [Chem.MolFromSmiles("c1ccccc1"), Chem.MolFromSmiles("CC(C)Cc1ccc(C(C)C(=O)O)cc1"), None]
    r = compute_rewards(mols, ("qed", "sa", "mw"))
    assert 0 < r["qed"][1] < 1 and r["qed"][2] == 0
    assert 0.7 < r["sa"][0] <= 1 and r["sa"][2] == 0  # benzene is easy to make; failure → SA score 10
    assert r["mw"][0] == 1 and r["mw"][2] == 0
    with pytest.raises(ValueError, match="unknown molecule rewards"):
        compute_rewards(mols, ("logp",))
