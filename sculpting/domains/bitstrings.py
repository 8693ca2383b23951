"""Fixed-length bit strings: a tiny enumerable environment written only against the public
protocol (:class:`sculpting.protocols.EnumerableEnv`) — the template for bringing your own.

A state is a prefix of a bit string of length L, stored as ``[B, L]`` int64 with −1 for the unset
positions. Actions: 0 appends a 0, 1 appends a 1, 2 stops (allowed only on a full string). So the
terminal objects are the 2^L strings and every trajectory has L + 1 actions. States are indexed
level by level: a prefix of length k with bits b has index 2^k − 1 + int(b).

The reward is any callable ``log_reward_fn(bits [B, L] int64 in {0, 1}) -> [B]``.
"""

from __future__ import annotations

import torch

from sculpting.infrastructure.distributed import on_main
from sculpting.gflownet.io import save_gflownet
from sculpting.gflownet.policy import GFlowNet
from sculpting.gflownet.training import GFlowNetTrainConfig, exact_l1_to_reward, train_gflownet
from sculpting.infrastructure.registry import Command, Domain

__all__ = ["BitStringEnv", "BIT_REWARDS", "DOMAIN"]

#: named log-rewards of full strings (checkpoints store the name)
BIT_REWARDS = {
    "ones": lambda b: b.sum(-1).double() * 0.7,  # prefers many ones
    "alternating": lambda b: (b[:, 1:] != b[:, :-1]).sum(-1).double() * 0.8,
    "zeros": lambda b: (1 - b).sum(-1).double() * 0.7,
}


class BitStringEnv:
    def __init__(self, length: int = 6, reward: str = "ones"):
        if not 1 <= length <= 16:
            raise ValueError(f"length must be in 1..16, got {length}")
        if reward not in BIT_REWARDS:
            raise ValueError(f"unknown bit-string reward {reward!r}; choose from {sorted(BIT_REWARDS)}")
        self.length, self.reward = int(length), reward
        self.n_actions, self.stop_action = 3, 2
        self.max_trajectory_length = self.length + 1
        self.feature_dim = 3 * self.length
        self.space = {"kind": "bitstrings", "length": self.length}
        self.config = {"length": self.length, "reward": reward}
        self.n_states = 2 ** (self.length + 1) - 1
        self.device = torch.device("cpu")
        self._build_structure()

    def to(self, device) -> "BitStringEnv":
        """Move the DP tables to ``device`` (in place)."""
        device = torch.device(device)
        self.child_index, self.parent_index = self.child_index.to(device), self.parent_index.to(device)
        self.state_log_n_parents = self.state_log_n_parents.to(device)
        self.levels = [lv.to(device) for lv in self.levels]
        self.device = device
        return self

    # ---- states
    def initial_states(self, batch_size: int) -> torch.Tensor:
        return torch.full((batch_size, self.length), -1, dtype=torch.long, device=self.device)

    def _len(self, states):
        return (states >= 0).sum(-1)

    def index(self, states: torch.Tensor) -> torch.Tensor:
        k = self._len(states)
        pos = torch.arange(self.length, device=states.device)
        bits = states.clamp(min=0) * (2 ** (k[:, None] - 1 - pos)).clamp(min=0) * (pos < k[:, None])
        return (2**k - 1) + bits.sum(-1)

    def all_states(self) -> torch.Tensor:
        rows = []
        for k in range(self.length + 1):
            v = torch.arange(2**k, device=self.device)
            bits = (
                (v[:, None] >> torch.arange(k - 1, -1, -1, device=self.device)) & 1
                if k
                else torch.zeros(1, 0, dtype=torch.long, device=self.device)
            )
            rows.append(torch.cat([bits, torch.full((len(v), self.length - k), -1, device=self.device)], dim=1))
        return torch.cat(rows)

    def encode(self, states: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(states + 1, 3).float().reshape(len(states), -1)

    # ---- transitions
    def action_mask(self, states: torch.Tensor) -> torch.Tensor:
        full = self._len(states) == self.length
        return torch.stack([~full, ~full, full], dim=1)

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = states.clone()
        move = actions < 2
        k = self._len(states)
        out[move, k[move]] = actions[move]
        return out

    def log_n_parents(self, states: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(states), device=states.device)  # a tree: one parent

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        full = self._len(states) == self.length
        out = torch.full((len(states),), -float("inf"), dtype=torch.float64, device=states.device)
        out[full] = BIT_REWARDS[self.reward](states[full]).double()
        return out

    # ---- exact-DP structure
    def _build_structure(self):
        s = self.all_states()
        n, k = self.n_states, self._len(s)
        idx = self.index(s)
        assert torch.equal(idx, torch.arange(n))
        self.child_index = torch.full((n, 2), n, dtype=torch.long)
        self.parent_index = torch.full((n, 2), n, dtype=torch.long)
        for a in (0, 1):
            grow = k < self.length
            kids = self.index(self.step(s[grow], torch.full((int(grow.sum()),), a)))
            self.child_index[idx[grow], a] = kids
            self.parent_index[kids, a] = idx[grow]
        self.levels = [torch.nonzero(k == l).flatten() for l in range(self.length + 1)]
        self.state_log_n_parents = torch.zeros(n, dtype=torch.float64)


# ------------------------------------------------------------------ the domain's declaration
def _base_presets(name, args=None):
    return {
        "cpu": GFlowNetTrainConfig(steps=1500, batch_size=64, lr=3e-3, lr_log_z=0.1, epsilon=0.05, eval_every=250),
        "smoke": GFlowNetTrainConfig(steps=20, batch_size=16, eval_every=10),
        "paper": GFlowNetTrainConfig(steps=20000, batch_size=16, lr=1e-3, lr_log_z=0.1, epsilon=0.05, eval_every=500),
    }[name]


def _train_base(a, cfg, out, device):
    """``bitstrings-base``: a GFlowNet on one named reward; reports its exact L1 to the reward."""

    model = GFlowNet(BitStringEnv(a.length, a.reward), hidden=64, seed=cfg.seed).to(device)
    hist = train_gflownet(
        model, cfg, desc=a.reward, checkpoint_path=out / "resume.pt", checkpoint_every=a.checkpoint_every
    )
    l1 = exact_l1_to_reward(model)
    on_main(save_gflownet)(
        model,
        out / "model.pt",
        train_config=cfg.to_dict(),
        seed=cfg.seed,
        exact_l1_to_reward=l1,
        train_time_s=hist["train_time_s"],
        data_source="reward function (no data)",
    )
    return {"exact_l1_to_reward": l1}


DOMAIN = Domain(
    name="bitstrings",
    description="fixed-length bit strings: the template for a domain of your own",
    env_kinds={"bitstrings": BitStringEnv},
    commands={
        "bitstrings-base": Command(
            _train_base,
            _base_presets,
            help="a base GFlowNet on bit strings",
            arguments=[
                (
                    ("--reward",),
                    {"default": "ones", "choices": sorted(BIT_REWARDS), "help": "a named bit-string reward"},
                ),
                (("--length",), {"type": int, "default": 6, "help": "string length"}),
            ],
        )
    },
)
