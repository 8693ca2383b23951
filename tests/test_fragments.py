"""Invariants of the fragment environment on many random legal walks (full 72-fragment vocabulary)."""

import random

import pytest

pytest.importorskip("rdkit")
from molecule_data import needs_data  # noqa: E402
from rdkit import Chem  # noqa: E402

pytestmark = needs_data


@pytest.fixture(scope="module")
def env():
    from sculpting.domains.molecules.fragments import FragmentEnv

    return FragmentEnv(max_frags=6)


def _walks(env, n, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        s, path = env.initial_state(), []
        while True:
            acts = env.legal_actions(s)
            assert acts, f"no legal action in {s}"
            a = rng.choice(acts)
            path.append((s, a))
            if a[0] == "stop":
                break
            s = env.step(s, a)
        yield s, path


def test_random_walks_respect_the_rules(env):
    n_valid = 0
    for x, path in _walks(env, 300):
        for s, _a in path:
            for node in range(s.n):
                assert env.degree(s, node) <= env.n_stems[s.nodes[node]]
                stems = [su for u, _, su, _ in s.edges if u == node and su >= 0] + [
                    sv for _, v, _, sv in s.edges if v == node and sv >= 0
                ]
                assert len(stems) == len(set(stems))
        assert x.n <= env.max_frags and all(su >= 0 and sv >= 0 for _, _, su, sv in x.edges)
        mol = env.to_mol(x)
        n_valid += mol is not None
        if mol is not None:
            atoms = sum(env.frag_mols[f].GetNumAtoms() for f in x.nodes)
            bonds = sum(env.frag_mols[f].GetNumBonds() for f in x.nodes) + x.n - 1
            assert mol.GetNumAtoms() == atoms and mol.GetNumBonds() == bonds
    assert n_valid >= 0.97 * 300


def test_illegal_actions_are_rejected(env):
    s = env.step(env.initial_state(), ("add", 0, 1))
    with pytest.raises(ValueError, match="illegal action"):
        env.step(s, ("set", 0, 0))  # no edge yet
    with pytest.raises(ValueError, match="illegal action"):
        env.step(env.initial_state(), ("stop",))
    s = env.step(s, ("add", 0, 2))
    with pytest.raises(ValueError, match="illegal action"):
        env.step(s, ("stop",))  # stems unset
    with pytest.raises(ValueError, match="illegal action"):
        env.step(s, ("set", 0, 3))  # fragment 1 (C) has a single stem


def test_small_molecule_and_explicit_h(env):
    smi = [s for s, _ in env.fragments]
    s = env.initial_state()
    for a in (("add", 0, smi.index("C")), ("add", 0, smi.index("c1ccccc1")), ("set", 0, 0), ("set", 0, 6)):
        s = env.step(s, a)
    assert Chem.MolToSmiles(env.to_mol(s)) == "Cc1ccccc1"
    nh = [i for i, (sm, _) in enumerate(env.fragments) if "[nH]" in sm or "[NH" in sm]
    assert nh, "the vocabulary has explicit-H fragments"
    f = nh[0]
    stem_atom = env.fragments[f][1][0]
    s = env.initial_state()
    for a in (("add", 0, smi.index("C")), ("add", 0, f), ("set", 0, 0), ("set", 0, 6)):
        s = env.step(s, a)
    mol = env.to_mol(s)
    if env.frag_mols[f].GetAtomWithIdx(stem_atom).GetNumExplicitHs() > 0:
        before = env.frag_mols[f].GetAtomWithIdx(stem_atom).GetTotalNumHs()
        assert mol.GetAtomWithIdx(1 + stem_atom).GetTotalNumHs() == before - 1


def test_backward_counts_match_enumerated_inverses(env):
    """n_back(s') equals the number of (parent, forward action) pairs that lead to s' by undoing one step."""
    for _x, path in _walks(env, 60, seed=1):
        for s, a in path:
            if a[0] == "stop":
                continue
            nxt = env.step(s, a)
            parents = 0
            for k, (u, v, su, sv) in enumerate(nxt.edges):  # unset a stem
                for end, cur in ((0, su), (1, sv)):
                    if cur >= 0:
                        e = (u, v, -1, sv) if end == 0 else (u, v, su, -1)
                        par = type(nxt)(nxt.nodes, nxt.edges[:k] + (e,) + nxt.edges[k + 1 :])
                        assert env.is_legal(par, ("set", k, 6 * end + cur))
                        parents += 1
            if nxt.n == 1:
                parents += 1
            else:
                for node in range(nxt.n):
                    inc = [e for e in nxt.edges if node in e[:2]]
                    parents += len(inc) == 1 and inc[0][2:] == (-1, -1)
            assert env.n_backward(nxt) == parents
