"""Exhaustive enumeration of a small fragment world, for exact checks (docs/molecules.md §12).

:class:`EnumeratedFragmentEnv` wraps a :class:`~sculpting.domains.molecules.env.FragmentGraphEnv` with a
tiny vocabulary (e.g. C, O, CC and at most 3–4 fragments) and lists every labelled state reachable
from s_0, so that the generic exact machinery of :mod:`sculpting.gflownet.exact` (terminal laws,
expectations, the oracle classifier, exact guided tables) runs on trees of fragments:

* ``all_states`` ``[N, S]``, ``index(states)`` (a base-(F+2) integer key per state, binary search);
* ``child_index[s, a]`` = index of step(s, a) for legal moves, N (padding) otherwise;
* ``parent_index[s, a]`` = the unique p with step(p, a) = s (the move a determines which node or
  stem to remove), N otherwise;
* ``levels``: states grouped by depth = #nodes + #set stems (every action adds exactly one);
* ``state_log_n_parents`` = log n_back(s) (the environment's uniform backward policy).
"""

from __future__ import annotations

import torch

__all__ = ["EnumeratedFragmentEnv"]


class EnumeratedFragmentEnv:
    def __init__(self, env, max_states: int = 50_000):
        self.base = env
        for k in (
            "max_frags",
            "n_frags",
            "n_actions",
            "stop_action",
            "max_trajectory_length",
            "state_dim",
            "objective",
            "n_add",
        ):
            setattr(self, k, getattr(env, k))
        self._radix = env.n_frags + 2
        if self._radix**env.state_dim >= 2**62:
            raise ValueError("vocabulary × max_frags too large to enumerate")
        frontier, seen = env.initial_states(1), []
        while len(frontier):
            seen.append(frontier)
            mask = env.action_mask(frontier)[:, :-1]
            rows, acts = mask.nonzero(as_tuple=True)
            kids = env.step(frontier[rows], acts)
            frontier = torch.unique(kids, dim=0) if len(kids) else kids
            if sum(len(s) for s in seen) > max_states:
                raise ValueError(f"more than {max_states} states: not a small world")
        states = torch.cat(seen)
        keys = self._key(states)
        order = torch.argsort(keys)
        self._states, self._keys = states[order], keys[order]
        self.n_states = N = len(states)
        depth = self.depth(self._states)
        self.levels = [torch.nonzero(depth == d).flatten() for d in range(int(depth.max()) + 1)]
        mask = env.action_mask(self._states)[:, :-1]
        rows, acts = mask.nonzero(as_tuple=True)
        kids = self.index(env.step(self._states[rows], acts))
        self.child_index = torch.full((N, self.n_actions - 1), N, dtype=torch.long)
        self.child_index[rows, acts] = kids
        self.parent_index = torch.full((N, self.n_actions - 1), N, dtype=torch.long)
        self.parent_index[kids, acts] = rows
        nb = torch.zeros(N, dtype=torch.float64)
        nz = env.n_nodes(self._states) > 0
        nb[nz] = env.log_n_parents(self._states[nz])
        self.state_log_n_parents = nb

    @property
    def space(self):
        return self.base.space

    @property
    def config(self):
        return self.base.config

    def _key(self, states):
        key = torch.zeros(len(states), dtype=torch.long)
        for j in range(states.shape[1]):
            key = key * self._radix + (states[:, j] + 1)
        return key

    def depth(self, states):
        _, parent, su, sv = self.base.split(states)
        return self.base.n_nodes(states) + ((parent >= 0) & (su >= 0)).sum(1) + ((parent >= 0) & (sv >= 0)).sum(1)

    def all_states(self):
        return self._states

    def index(self, states):
        k = self._key(states)
        i = torch.searchsorted(self._keys, k).clamp(max=self.n_states - 1)
        if not bool((self._keys[i] == k).all()):
            raise ValueError("state not in the enumerated world")
        return i

    def terminal_states(self):
        """Indices of the states where Stop is legal (the possible terminal objects)."""
        return torch.nonzero(self.action_mask(self._states)[:, -1]).flatten()

    # the dynamics of the wrapped environment
    def initial_states(self, n):
        return self.base.initial_states(n)

    def action_mask(self, states):
        return self.base.action_mask(states)

    def step(self, states, actions):
        return self.base.step(states, actions)

    def children(self, states):
        return self.base.children(states)

    def log_n_parents(self, states):
        return self.base.log_n_parents(states)

    def n_nodes(self, states):
        return self.base.n_nodes(states)

    def split(self, states):
        return self.base.split(states)
