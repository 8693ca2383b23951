"""The fragment environment as a batched tensor environment (docs/molecules.md §2–§5).

Same rules as the readable reference :class:`~sculpting.domains.molecules.fragments.FragmentEnv`, but
states are fixed-size integer tensors so the generic GFlowNet machinery (sampler, trajectory
balance, classifier training, guided policy) runs on molecules unchanged. With M = max_frags:

    state [S = 4M − 3] = nodes[M] (fragment index, −1 absent; nodes in insertion order)
                       ⊕ parent[M−1] (edge k joins parent[k] < k + 1 and node k + 1; −1 absent)
                       ⊕ stem_u[M−1] (stem on the parent end, −1 unset)
                       ⊕ stem_v[M−1] (stem on the child end, −1 unset)

Flat action index (F = #fragments, A = M·F + 12(M − 1) + 1):

    AddNode(u, f)      = u·F + f                 (u < M)
    SetEdgeAttr(k, c)  = M·F + 12k + c           (k < M − 1; c < 6: parent end, c ≥ 6: child end)
    Stop               = A − 1                   (last, as in every environment of the package)

Backward policy: uniform, n_back(s) = #set stems + #leaves whose edge has both stems unset
+ [n = 1] (no idempotency correction, docs/molecules.md §4).
"""

from __future__ import annotations

import torch

from sculpting.domains.molecules.classifier import make_graph_classifier
from sculpting.domains.molecules.constants import INVALID_LOG_REWARD  # (re-exported)
from sculpting.domains.molecules.fragments import FragmentEnv, FragTree
from sculpting.domains.molecules.rewards import REWARDS

__all__ = ["FragmentGraphEnv", "INVALID_LOG_REWARD"]

N_STEM_SLOTS = 6


class FragmentGraphEnv:
    """Batched fragment-tree environment.

    Args:
        max_frags: M, at most this many fragments (paper 9, CPU preset 6).
        objective: reward name of :mod:`sculpting.domains.molecules.rewards` used by ``log_reward``
            (None: no reward, e.g. for a classifier's environment).
        fragments: optional (smiles, stems) list; default: the 72-fragment vocabulary.
    """

    #: rows per classifier call when a guided policy scores successors (measured: graph-transformer
    #: classifiers run ≈ 2× faster per row on one CPU thread in chunks of 64 than of 4 000)
    scoring_chunk_size = 64

    def __init__(self, max_frags: int = 6, objective: str | None = None, fragments=None):
        self.ref = FragmentEnv(max_frags, fragments)
        self.max_frags = M = max_frags
        self.n_frags = F = len(self.ref.fragments)
        self.objective = objective
        self.n_stems = torch.tensor(self.ref.n_stems)
        self.device = torch.device("cpu")
        self.state_dim = 4 * M - 3
        self.n_add = M * F
        self.n_actions = M * F + 12 * (M - 1) + 1
        self.stop_action = self.n_actions - 1
        self.max_trajectory_length = 3 * M - 1
        if objective is not None:
            if objective not in REWARDS:
                raise ValueError(f"unknown objective {objective!r}; choose from {sorted(REWARDS)}")

    def default_classifier(self, n_bases: int, n_slots: int, seed: int | None = None, **arch):
        """The classifier ``sc.fit_classifier`` builds for bases on this env: a graph transformer
        body (``arch``: ``width``, ``n_layers``, ``n_heads``), :func:`.classifier.make_graph_classifier`."""

        return make_graph_classifier(self, n_bases, n_slots, seed=seed, **arch)

    @property
    def config(self) -> dict:
        return {"max_frags": self.max_frags, "objective": self.objective}

    @property
    def space(self) -> dict:
        """What must match between bases and classifiers (the reward does not)."""
        return {"kind": "fragments", "max_frags": self.max_frags, "n_frags": self.n_frags}

    def __repr__(self):
        return f"FragmentGraphEnv(max_frags={self.max_frags}, objective={self.objective!r})"

    # ---------------------------------------------------------------- layout helpers
    def to(self, device) -> "FragmentGraphEnv":
        """Keep the environment's tensors on ``device`` (in place; models move their env with them).
        RDKit work (molecules, rewards) stays on the CPU; its results are moved back."""
        self.device = torch.device(device)
        self.n_stems = self.n_stems.to(self.device)
        return self

    def split(self, states: torch.Tensor):
        """(nodes [B, M], parent [B, M−1], stem_u [B, M−1], stem_v [B, M−1])."""
        M = self.max_frags
        return states[:, :M], states[:, M : 2 * M - 1], states[:, 2 * M - 1 : 3 * M - 2], states[:, 3 * M - 2 :]

    def initial_states(self, batch_size: int) -> torch.Tensor:
        return torch.full((batch_size, self.state_dim), -1, dtype=torch.long, device=self.device)

    def n_nodes(self, states):
        return (states[:, : self.max_frags] >= 0).sum(1)

    def _stems_of(self, nodes):
        return torch.where(nodes >= 0, self.n_stems[nodes.clamp(min=0)], torch.zeros_like(nodes))

    def _degree_and_used(self, states):
        """degree [B, M] and used-stem flags [B, M, 6]."""
        nodes, parent, su, sv = self.split(states)
        B, M = nodes.shape
        present = parent >= 0  # [B, M−1]
        dev = states.device
        deg = torch.zeros(B, M, dtype=torch.long, device=dev)
        deg.scatter_add_(1, parent.clamp(min=0), present.long())
        deg[:, 1:] += present.long()
        # used stems by a scatter into [B, M·6 + 1] (column M·6: where absent edges go, dropped):
        # no host read, unlike boolean-mask indexing
        S = N_STEM_SLOTS
        trash = M * S
        child = torch.arange(1, M, device=dev)[None].expand_as(parent)
        at_u = torch.where(present & (su >= 0), parent.clamp(min=0) * S + su, trash)
        at_v = torch.where(present & (sv >= 0), child * S + sv, trash)
        used = torch.zeros(B, trash + 1, dtype=torch.bool, device=dev)
        used.scatter_(1, torch.cat([at_u, at_v], 1), True)
        return deg, used[:, :trash].reshape(B, M, S)

    # ---------------------------------------------------------------- dynamics
    def action_mask(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, A]`` exact legality (docs/molecules.md §2)."""
        nodes, parent, su, sv = self.split(states)
        B, M, F = len(states), self.max_frags, self.n_frags
        n = self.n_nodes(states)
        deg, used = self._degree_and_used(states)
        stems = self._stems_of(nodes)  # [B, M]
        node_ok = (torch.arange(M, device=states.device)[None] < n[:, None]) & (deg < stems) & (n < M)[:, None]
        node_ok[:, 0] |= n == 0
        mask = torch.zeros(B, self.n_actions, dtype=torch.bool, device=states.device)
        mask[:, : self.n_add] = node_ok[:, :, None].expand(B, M, F).reshape(B, -1)
        present = parent >= 0
        c = torch.arange(N_STEM_SLOTS, device=states.device)
        p_stems = stems.gather(1, parent.clamp(min=0))  # [B, M−1]
        p_used = used.gather(1, parent.clamp(min=0)[:, :, None].expand(-1, -1, N_STEM_SLOTS))
        u_ok = (present & (su < 0))[:, :, None] & (c < p_stems[:, :, None]) & ~p_used
        v_ok = (present & (sv < 0))[:, :, None] & (c < stems[:, 1:, None]) & ~used[:, 1:]
        mask[:, self.n_add : self.stop_action] = torch.cat([u_ok, v_ok], dim=2).reshape(B, -1)
        all_set = ~(present & ((su < 0) | (sv < 0))).any(1)
        mask[:, self.stop_action] = (n >= 1) & all_set
        return mask

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Apply ``[B]`` flat actions (legality is the caller's job; see ``action_mask``)."""
        M, F = self.max_frags, self.n_frags
        out = states.clone()
        n = self.n_nodes(states)
        a = actions.long()

        def put(where, col, value):  # out[r, col[r]] = value[r] where ``where[r]``; no host read
            col = torch.where(where, col, torch.zeros_like(col))
            keep = out.gather(1, col[:, None]).squeeze(1)
            out.scatter_(1, col[:, None], torch.where(where, value, keep)[:, None])

        add = a < self.n_add
        put(add, n.clamp(max=M - 1), a % F)  # the new fragment
        put(add & (n > 0), M + n - 1, a // F)  # its parent
        st = (a >= self.n_add) & (a < self.stop_action)
        s = (a - self.n_add).clamp(min=0)
        k, c = s // 12, s % 12
        put(st, torch.where(c < 6, 2 * M - 1 + k, 3 * M - 2 + k), c % 6)  # a stem
        return out

    def children(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, A − 1, S]`` the successor under every move action (illegal ones are garbage)."""
        B, K = len(states), self.n_actions - 1
        kids = self.step(states.repeat_interleave(K, 0), torch.arange(K, device=states.device).repeat(B))
        return kids.reshape(B, K, -1)

    def log_n_parents(self, states: torch.Tensor) -> torch.Tensor:
        """``[B]`` log n_back(s) (states with n ≥ 1)."""
        nodes, parent, su, sv = self.split(states)
        n = self.n_nodes(states)
        deg, _ = self._degree_and_used(states)
        set_stems = ((parent >= 0) & (su >= 0)).sum(1) + ((parent >= 0) & (sv >= 0)).sum(1)
        # leaf edge k (child k + 1 of degree 1, or the parent of degree 1) with both stems unset
        unset = (parent >= 0) & (su < 0) & (sv < 0)
        child_leaf = deg[:, 1:] == 1
        parent_leaf = deg.gather(1, parent.clamp(min=0)) == 1
        leaves = (unset & child_leaf).sum(1) + (unset & parent_leaf).sum(1)
        nb = set_stems + leaves + (n == 1).long()
        return nb.clamp(min=1).double().log()

    # ---------------------------------------------------------------- chemistry
    def to_tree(self, state) -> FragTree:
        """The fragment tree of one state (a ``[S]`` tensor or its list of ints)."""
        row = state.tolist() if isinstance(state, torch.Tensor) else list(state)
        M = self.max_frags
        nodes, parent, su, sv = row[:M], row[M : 2 * M - 1], row[2 * M - 1 : 3 * M - 2], row[3 * M - 2 :]
        n = sum(f >= 0 for f in nodes)
        edges = tuple((parent[k], k + 1, su[k], sv[k]) for k in range(n - 1))
        return FragTree(tuple(nodes[:n]), edges)

    def from_tree(self, tree: FragTree) -> torch.Tensor:
        s = self.initial_states(1)[0]
        M = self.max_frags
        for i, f in enumerate(tree.nodes):
            s[i] = f
        for u, v, a, b in tree.edges:
            k = v - 1
            s[M + k], s[2 * M - 1 + k], s[3 * M - 2 + k] = u, a, b
        return s

    def to_mols(self, states: torch.Tensor) -> list:
        """RDKit molecules (None where sanitisation fails)."""
        return [self.ref.to_mol(self.to_tree(row)) for row in states.tolist()]  # RDKit: one read of the batch

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        """``[B]`` log r(x) of the env's objective (β = 1); invalid → −75 (never rewarded)."""
        lr, valid = self.log_reward_parts(states)
        return torch.where(valid, lr, torch.full_like(lr, INVALID_LOG_REWARD))

    def log_reward_parts(self, states: torch.Tensor):
        """(log max(r, 1e-30) ``[B]`` float64, valid ``[B]`` bool) of the env's objective."""
        if self.objective is None:
            raise ValueError("this environment has no objective; build it with objective=...")

        mols = self.to_mols(states)
        valid = torch.tensor([m is not None for m in mols], dtype=torch.bool, device="cpu")
        r = torch.zeros(len(mols), dtype=torch.float64, device="cpu")
        if valid.any():
            idx = valid.nonzero().squeeze(1).tolist()
            r[idx] = REWARDS[self.objective]([mols[i] for i in idx]).double()
        return r.clamp(min=1e-30).log().to(states.device), valid.to(states.device)

    def is_valid_terminal(self, states: torch.Tensor) -> torch.Tensor:
        return torch.tensor([m is not None for m in self.to_mols(states)], dtype=torch.bool, device=states.device)
