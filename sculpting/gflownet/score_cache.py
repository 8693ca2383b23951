"""A cache of classifier outputs at non-terminal states, for guided sampling.

Guided sampling scores the same states again and again: the successors of the first states of
every trajectory (the empty molecule has the same 72 one-fragment successors in every
trajectory), and every parent state, which was scored as a successor one step earlier. A guided
policy's classifier outputs at a state are a function of the state alone (its composition, α and
β are fixed), so they can be stored and looked up.

Keys are the states' exact values: a row ``[D]`` of an integer state tensor is hashed to one
int64 (a fixed random linear hash), looked up in a dict, and a hit is confirmed by comparing the
stored row with the query (so a hash collision is a miss, never a wrong value). The stored
outputs are float64 (log Q(y_1 = i | s) ``[m]``, log Q(y | s)). When ``capacity`` rows are
stored the cache starts again empty. The cache empties itself when any classifier parameter is
changed in place (an optimiser step), read off the parameters' version counters.
"""

from __future__ import annotations

import torch

__all__ = ["ScoreCache"]


class ScoreCache:
    """Args: capacity (rows kept), n_bases m, and ``params`` (the classifier's parameters, whose
    in-place modification invalidates the cache)."""

    def __init__(self, capacity: int, n_bases: int, params=()):
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity, self.n_bases = int(capacity), int(n_bases)
        self._params = list(params)
        self.hits = self.misses = 0
        self._clear()

    def clear(self) -> None:
        """Forget every stored row (each public sampling call starts so: same seed, same bytes)."""
        self._clear()

    def _clear(self):
        self._slot: dict[int, int] = {}
        self._states = self._first = self._y = None
        self._n = 0
        self._versions = self._param_versions()

    def _param_versions(self):
        return tuple(p._version for p in self._params)

    def _keys(self, states: torch.Tensor) -> list[int]:
        if self._mult is None or len(self._mult) != states.shape[1]:
            gen = torch.Generator(device="cpu").manual_seed(0x5C0)  # host: a fixed hash key
            mult = torch.randint(-(2**62), 2**62, (states.shape[1],), generator=gen, device="cpu")  # host: hash key
            self._mult = mult.to(states.device)
        return (states.long() * self._mult).sum(1).tolist()

    _mult = None

    def lookup(self, states: torch.Tensor):
        """``states`` ``[K, D]`` (integer) → (hit ``[K]`` bool, first ``[K, m]``, y ``[K]``) with the
        stored values in the hit rows (misses hold −inf)."""
        if self._param_versions() != self._versions:
            self._clear()
        k, dev = len(states), states.device
        first = torch.full((k, self.n_bases), -float("inf"), dtype=torch.float64, device=dev)
        y = torch.full((k,), -float("inf"), dtype=torch.float64, device=dev)
        hit = torch.zeros(k, dtype=torch.bool, device=dev)
        if self._n == 0 or k == 0:
            self.misses += k
            return hit, first, y
        slots = torch.tensor([self._slot.get(h, -1) for h in self._keys(states)], dtype=torch.long, device=dev)
        cand = slots >= 0
        if cand.any():
            rows = cand.nonzero().squeeze(1)
            same = (self._states[slots[rows]] == states[rows]).all(1)
            rows = rows[same]
            hit[rows] = True
            first[rows], y[rows] = self._first[slots[rows]], self._y[slots[rows]]
        n_hit = int(hit.sum())
        self.hits += n_hit
        self.misses += k - n_hit
        return hit, first, y

    def store(self, states: torch.Tensor, first: torch.Tensor, y: torch.Tensor):
        """Remember the outputs ``first`` ``[K, m]``, ``y`` ``[K]`` at ``states`` ``[K, D]``."""
        k = len(states)
        if k == 0:
            return
        if self._states is None:
            dev = states.device
            self._states = torch.empty(self.capacity, states.shape[1], dtype=states.dtype, device=dev)
            self._first = torch.empty(self.capacity, self.n_bases, dtype=torch.float64, device=dev)
            self._y = torch.empty(self.capacity, dtype=torch.float64, device=dev)
        if self._n + k > self.capacity:
            self._clear()
            if k > self.capacity:
                return
            return self.store(states, first, y)
        sl = slice(self._n, self._n + k)
        self._states[sl], self._first[sl], self._y[sl] = states, first.double(), y.double()
        for i, h in enumerate(self._keys(states)):
            self._slot[h] = self._n + i
        self._n += k

    def __len__(self):
        return self._n
