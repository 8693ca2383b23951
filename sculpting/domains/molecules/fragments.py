"""The fragment environment of Bengio et al. 2021 (docs/molecules.md §1–§4): trees of fragments.

A state is a :class:`FragTree`: nodes are fragment indices in insertion order; edge k joins
(u, v) with u < v (v grew from u) and carries the stem used at each end (−1 while unset).
Actions, as tuples:

* ``("stop",)`` — legal iff n ≥ 1 and every edge has both stems set;
* ``("add", u, f)`` — add node n (fragment f) joined to u; legal iff n < max_frags and
  deg(u) < #stems(frag(u)); on the empty tree only ``("add", 0, f)`` for every f;
* ``("set", k, c)`` — c < 6 sets u's stem c on edge k, c ≥ 6 sets v's stem c − 6; legal iff that
  end is unset, the stem exists on that fragment and the node uses it on no other edge.

Backward policy: uniform over backward actions, n_back(s) = #set stems + #leaves whose edge has
both stems unset + [n = 1] (no idempotency correction, as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdkit import Chem

from sculpting.domains.molecules.data import load_fragments

__all__ = ["FragTree", "FragmentEnv"]

STOP, ADD, SET = "stop", "add", "set"


@dataclass(frozen=True)
class FragTree:
    nodes: tuple = ()
    edges: tuple = field(default=())  # ((u, v, stem_u, stem_v), ...)

    @property
    def n(self) -> int:
        return len(self.nodes)


class FragmentEnv:
    def __init__(self, max_frags: int = 9, fragments=None):
        if max_frags < 1:
            raise ValueError(f"max_frags must be ≥ 1, got {max_frags}")
        self.max_frags = max_frags
        self.fragments = list(fragments) if fragments is not None else load_fragments()
        self.frag_mols = [Chem.MolFromSmiles(s) for s, _ in self.fragments]
        self.n_stems = [len(a) for _, a in self.fragments]
        if any(m is None for m in self.frag_mols):
            raise ValueError("a fragment SMILES does not parse")

    # ------------------------------------------------------------------ forward
    def initial_state(self) -> FragTree:
        return FragTree()

    def _used_stems(self, s: FragTree, node: int, skip_edge: int = -1) -> set:
        used = set()
        for k, (u, v, su, sv) in enumerate(s.edges):
            if k != skip_edge:
                if u == node and su >= 0:
                    used.add(su)
                if v == node and sv >= 0:
                    used.add(sv)
        return used

    def degree(self, s: FragTree, node: int) -> int:
        return sum(node in (u, v) for u, v, _, _ in s.edges)

    def legal_actions(self, s: FragTree) -> list:
        acts = []
        if s.n >= 1 and all(su >= 0 and sv >= 0 for _, _, su, sv in s.edges):
            acts.append((STOP,))
        if s.n == 0:
            acts += [(ADD, 0, f) for f in range(len(self.fragments))]
        elif s.n < self.max_frags:
            for u in range(s.n):
                if self.degree(s, u) < self.n_stems[s.nodes[u]]:
                    acts += [(ADD, u, f) for f in range(len(self.fragments))]
        for k, (u, v, su, sv) in enumerate(s.edges):
            for end, node, cur in ((0, u, su), (1, v, sv)):
                if cur >= 0:
                    continue
                used = self._used_stems(s, node)
                acts += [(SET, k, 6 * end + c) for c in range(self.n_stems[s.nodes[node]]) if c not in used]
        return acts

    def is_legal(self, s: FragTree, a) -> bool:
        return a in set(self.legal_actions(s))

    def step(self, s: FragTree, a) -> FragTree:
        if not self.is_legal(s, a):
            raise ValueError(f"illegal action {a} in state {s}")
        if a[0] == ADD:
            _, u, f = a
            if s.n == 0:
                return FragTree((f,), ())
            return FragTree(s.nodes + (f,), s.edges + ((u, s.n, -1, -1),))
        if a[0] == SET:
            _, k, c = a
            u, v, su, sv = s.edges[k]
            e = (u, v, c, sv) if c < 6 else (u, v, su, c - 6)
            return FragTree(s.nodes, s.edges[:k] + (e,) + s.edges[k + 1 :])
        return s  # stop: the terminal object is the tree itself

    # ------------------------------------------------------------------ backward
    def n_backward(self, s: FragTree) -> int:
        """Number of backward actions from s (uniform P_B = 1 / n_back)."""
        if s.n == 0:
            return 0
        if s.n == 1:
            return 1
        set_stems = sum((su >= 0) + (sv >= 0) for _, _, su, sv in s.edges)
        leaves = 0
        for node in range(s.n):
            inc = [(su, sv) for u, v, su, sv in s.edges if node in (u, v)]
            if len(inc) == 1 and inc[0] == (-1, -1):
                leaves += 1
        return set_stems + leaves

    # ------------------------------------------------------------------ chemistry
    def to_mol(self, s: FragTree):
        """The RDKit molecule of a tree, or None if it does not sanitise (invalid)."""
        if s.n == 0:
            return None
        mol = Chem.RWMol()
        offsets = []
        for f in s.nodes:
            offsets.append(mol.GetNumAtoms())
            for atom in self.frag_mols[f].GetAtoms():
                mol.AddAtom(Chem.Atom(atom))
            for b in self.frag_mols[f].GetBonds():
                mol.AddBond(offsets[-1] + b.GetBeginAtomIdx(), offsets[-1] + b.GetEndAtomIdx(), b.GetBondType())
        for u, v, su, sv in s.edges:
            if su < 0 or sv < 0:
                continue
            a = offsets[u] + self.fragments[s.nodes[u]][1][su]
            b = offsets[v] + self.fragments[s.nodes[v]][1][sv]
            mol.AddBond(a, b, Chem.BondType.SINGLE)
            for idx in (a, b):
                atom = mol.GetAtomWithIdx(idx)
                if atom.GetNumExplicitHs() > 0:
                    atom.SetNumExplicitHs(atom.GetNumExplicitHs() - 1)
        try:
            m = mol.GetMol()
            Chem.SanitizeMol(m)
            smi = Chem.MolToSmiles(m)
            return m if Chem.MolFromSmiles(smi) is not None else None
        except Exception:
            return None
