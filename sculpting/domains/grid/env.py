"""The hypergrid environment (Bengio et al. 2021; ``docs/grid.md``): an enumerable DAG.

States are integer points z ∈ {0..H−1}^d, shape ``[B, d]`` (int64); every trajectory starts at
the origin. Actions: ``k < d`` adds 1 to coordinate k (valid while z_k < H−1); action ``d``
stops and emits the terminal object x = z. Every state can be terminal, so the terminal
space has N = H^d points, indexed row-major (``index``).

Besides transitions, masks and rewards, the environment exposes the level structure used by
the exact dynamic programmes in :mod:`sculpting.gflownet.exact`: ``levels[l]`` holds the
indices of the states with Σ z = l, ``parent_index[s, k]`` the state from which action k
leads to s and ``child_index[s, k]`` the state that action k leads to (``N``, a padding
index, where there is none).
"""

from __future__ import annotations

import torch

from sculpting.domains.grid.rewards import USER_REWARDS, reward_name_of
from sculpting.domains.grid.rewards import log_reward as _log_reward
from sculpting.infrastructure.fingerprint import function_fingerprint

__all__ = ["GridEnv"]


class GridEnv:
    def __init__(self, horizon: int = 32, ndim: int = 2, reward="symmetric_shubert", temperature: float = 1.0):
        """``reward``: a built-in name, a registered one, or a callable log r(z) of integer
        coordinates ``[N, d]`` (registered under its ``__name__``; see :mod:`.rewards`)."""
        if horizon < 2 or ndim < 1:
            raise ValueError(f"need horizon ≥ 2 and ndim ≥ 1, got horizon={horizon}, ndim={ndim}")
        if horizon**ndim > 2_000_000:
            raise ValueError(f"grid of {horizon}^{ndim} states is too large to enumerate")
        self.horizon, self.ndim = int(horizon), int(ndim)
        self.reward_name, self.temperature = reward_name_of(reward), float(temperature)
        self.n_actions = self.ndim + 1
        self.stop_action = self.ndim
        self.n_states = self.horizon**self.ndim
        self.feature_dim = self.horizon * self.ndim
        self.max_trajectory_length = self.ndim * (self.horizon - 1) + 1
        self.device = torch.device("cpu")
        self._strides = torch.tensor([self.horizon ** (self.ndim - 1 - k) for k in range(self.ndim)])
        # the exact reward table (float64) validates the reward name and temperature now
        z = self.all_states()
        self.log_reward_table = _log_reward(self.reward_name, self.coordinates(z), temperature, z=z)
        self._build_structure()

    # ------------------------------------------------------------------ device
    def to(self, device) -> "GridEnv":
        """Move the environment's tables (reward, DP structure) to ``device``, in place; models
        do this for their environment when they are moved (``model.to("cuda")``)."""
        device = torch.device(device)
        if device != self.device:
            for name in ("_strides", "log_reward_table", "parent_index", "child_index", "state_log_n_parents"):
                setattr(self, name, getattr(self, name).to(device))
            self.levels = [lv.to(device) for lv in self.levels]
            self.device = device
        return self

    # ------------------------------------------------------------------ identity
    @property
    def config(self) -> dict:
        return {"horizon": self.horizon, "ndim": self.ndim, "reward": self.reward_name, "temperature": self.temperature}

    @property
    def space(self) -> dict:
        """What two grid models must share to be composed (the reward may differ)."""
        return {"kind": "grid", "horizon": self.horizon, "ndim": self.ndim}

    def fingerprint(self) -> dict:
        """What decides a model trained on this env: the config, and a user reward's code."""

        out = {"class": "GridEnv", **self.config}
        if self.reward_name in USER_REWARDS:
            out["reward_code"] = function_fingerprint(USER_REWARDS[self.reward_name])
        return out

    def __repr__(self):
        return f"GridEnv({self.horizon}^{self.ndim}, reward={self.reward_name}, T={self.temperature:g})"

    # ------------------------------------------------------------------ states
    def all_states(self) -> torch.Tensor:
        """``[N, d]`` every state, in index order."""
        grids = torch.meshgrid(*[torch.arange(self.horizon, device=self.device)] * self.ndim, indexing="ij")
        return torch.stack([g.reshape(-1) for g in grids], dim=-1)

    def index(self, states: torch.Tensor) -> torch.Tensor:
        return (states * self._strides).sum(-1)

    def coordinates(self, states: torch.Tensor) -> torch.Tensor:
        """Map z to x = 2z/(H−1) − 1 ∈ [−1, 1]^d (float64)."""
        return 2 * states.double() / (self.horizon - 1) - 1

    def initial_states(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.ndim, dtype=torch.long, device=self.device)

    def encode(self, states: torch.Tensor) -> torch.Tensor:
        """One-hot per coordinate, concatenated: ``[B, d·H]`` float32."""
        oh = torch.nn.functional.one_hot(states, self.horizon).float()
        return oh.reshape(states.shape[0], self.feature_dim)

    # ------------------------------------------------------------------ transitions
    def action_mask(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, d+1]`` bool: increments that stay on the grid, and stop (always)."""
        moves = states < self.horizon - 1
        return torch.cat([moves, torch.ones_like(moves[:, :1])], dim=1)

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Apply non-stop actions (stop leaves the state unchanged)."""
        move = actions < self.ndim
        inc = torch.zeros_like(states)
        inc[move, actions[move]] = 1
        return states + inc

    def log_n_parents(self, states: torch.Tensor) -> torch.Tensor:
        """log of the number of parents; the uniform backward policy is P_B = 1 / #parents."""
        return (states > 0).sum(-1).clamp(min=1).double().log().float()

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        return self.log_reward_table[self.index(states)]

    def reward_log_distribution(self) -> torch.Tensor:
        """``[N]`` log R(x) / Z: the distribution a perfect GFlowNet samples."""
        return self.log_reward_table - torch.logsumexp(self.log_reward_table, 0)

    # ------------------------------------------------------------------ DP structure
    def _build_structure(self):
        states = self.all_states()
        n, d = self.n_states, self.ndim
        idx = self.index(states)
        self.parent_index = torch.full((n, d), n, dtype=torch.long)
        self.child_index = torch.full((n, d), n, dtype=torch.long)
        for k in range(d):
            has_parent = states[:, k] > 0
            self.parent_index[idx[has_parent], k] = idx[has_parent] - self._strides[k]
            has_child = states[:, k] < self.horizon - 1
            self.child_index[idx[has_child], k] = idx[has_child] + self._strides[k]
        level = states.sum(-1)
        self.levels = [torch.nonzero(level == l).flatten() for l in range(int(level.max()) + 1)]
        self.state_log_n_parents = (states > 0).sum(-1).clamp(min=1).double().log()

    def as_image(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape a ``[N]`` table of a 2-D grid to ``[H, H]`` (row = z_0, column = z_1)."""
        if self.ndim != 2:
            raise ValueError("as_image needs a 2-D grid")
        return values.reshape(self.horizon, self.horizon)

    def children(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, d, d]`` the successor of each move action (the state itself where invalid)."""
        eye = torch.eye(self.ndim, dtype=states.dtype, device=states.device)
        kids = states[:, None, :] + eye[None]
        return torch.minimum(kids, torch.full_like(kids, self.horizon - 1))
