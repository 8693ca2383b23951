"""Reward functions of the 2-D (and n-D) grid domain (definitions in ``docs/grid.md``).

A grid point z ∈ {0..H−1}^d maps to x = 2z/(H−1) − 1 ∈ [−1, 1]^d and u = x/2 + 0.5 ∈ [0, 1]^d.
Each built-in function takes x of shape ``[N, d]`` (float64) and returns log r(x) of shape ``[N]``
(before the temperature: the environment uses log R = log r / T).

Your own reward: any callable ``f(z) -> [N]`` log r of the **integer** coordinates z ``[N, d]``
(int64), registered under a name with :func:`register_reward` (``GridEnv(reward=f)`` registers
``f.__name__``). Checkpoints record the name; to load one in a new process, register the same
function under the same name first.
"""

from __future__ import annotations

import math

import torch

__all__ = ["REWARDS", "log_reward", "register_reward", "reward_name_of"]


def _corners(x):
    a = x.abs()
    r = 0.5 * ((a > 0.5).all(-1)).double() + 2.0 * (((a > 0.6) & (a < 0.8)).all(-1)).double()
    return torch.log(r + 1e-3)


def _currin(x):
    u = x / 2 + 0.5
    u1, u2 = u[:, 0], u[:, 1]
    r = (
        (1 - torch.exp(-1 / (2 * u2 + 1e-10)))
        * (2300 * u1**3 + 1900 * u1**2 + 2092 * u1 + 60)
        / (100 * u1**3 + 500 * u1**2 + 4 * u1 + 20)
        / 13.77
    )
    return torch.log(r + 1e-8)


def _branin(x):
    u = x / 2 + 0.5
    a, b = 15 * u[:, 0] - 5, 15 * u[:, 1]
    t1 = b - 5.1 * a**2 / (4 * math.pi**2) + 5 * a / math.pi - 6
    t2 = 10 * (1 - 1 / (8 * math.pi)) * torch.cos(a)
    r = 1 - (t1**2 + t2 + 10) / 308.13
    return torch.log(r + 1e-8)


def _shubert_from_u(u):
    v = -9.45 + 2.3 * u
    i = torch.arange(1, 6, dtype=u.dtype)
    c = (i * torch.cos((i + 1) * v[..., None] + i)).sum(-1)  # [N, d]
    r = (c.prod(-1) + 186.6157949555621) / (210.27662470796076 + 186.6157949555621)
    return torch.log(r + 1e-3)


def _shubert(x):
    return _shubert_from_u(x / 2 + 0.5)


def _symmetric_shubert(x):
    return _shubert_from_u(x.abs() / 2 + 0.5)


def _diag_sigmoid(x):
    return torch.log(torch.sigmoid(5 * x.sum(-1)) + 1e-5)


def _circle(center, offsets, s, amp, base):
    def f(x):
        c = torch.tensor(center, dtype=x.dtype)
        mus = c + torch.tensor(offsets, dtype=x.dtype)
        d2 = ((x[:, None, :] - mus[None]) ** 2).sum(-1)  # [N, K]
        g = (torch.exp(-d2 / (2 * s * s)) / (2 * math.pi * s * s)).mean(-1)
        inside = ((x - c) ** 2).sum(-1) <= 0.6**2
        r = torch.where(inside, amp * g + base, torch.full_like(g, 0.1))
        return torch.log(r + 1e-8)

    return f


_H, _S3 = 0.32, math.sqrt(3)
REWARDS = {
    "corners": _corners,
    "currin": _currin,
    "branin": _branin,
    "shubert": _shubert,
    "symmetric_shubert": _symmetric_shubert,
    "diag_sigmoid": _diag_sigmoid,
    "circle1": _circle((-0.3, 0.0), [(0.0, 0.0)], 0.3, 2.5, 6.5),
    "circle2": _circle((0.15, 0.15 * _S3), [(-_H * _S3 / 2, _H / 2), (_H * _S3 / 2, -_H / 2)], 0.21, 3.5, 10.5),
    "circle3": _circle(
        (0.15, -0.15 * _S3), [(-_H, 0.0), (_H / 2, _H * _S3 / 2), (_H / 2, -_H * _S3 / 2)], 0.18, 2.5, 5.5
    ),
}
_TWO_D_ONLY = {"currin", "branin", "circle1", "circle2", "circle3"}


#: user rewards: name -> f(z [N, d] int64) -> [N] log r
USER_REWARDS: dict = {}


def register_reward(name: str, fn, overwrite: bool = False) -> str:
    """Register ``fn`` (log r of integer coordinates ``[N, d]`` → ``[N]``) as grid reward ``name``."""
    if not callable(fn):
        raise TypeError(f"a reward must be callable, got {type(fn).__name__}")
    if not isinstance(name, str) or not name or name == "<lambda>":
        raise ValueError("give the reward a name: register_reward('my_reward', fn)")
    if name in REWARDS:
        raise ValueError(f"{name!r} is a built-in grid reward; choose another name")
    if name in USER_REWARDS and USER_REWARDS[name] is not fn and not overwrite:
        raise ValueError(f"a different reward is already registered as {name!r} (pass overwrite=True)")
    USER_REWARDS[name] = fn
    return name


def reward_name_of(reward) -> str:
    """The registered name of a reward given as a name or a callable (registering the callable)."""
    if isinstance(reward, str):
        return reward
    if callable(reward):
        name = getattr(reward, "__name__", None)
        for k, f in USER_REWARDS.items():
            if f is reward:
                return k
        return register_reward(name, reward)
    raise TypeError(f"reward must be a name or a callable, got {type(reward).__name__}")


def log_reward(name: str, x: torch.Tensor, temperature: float = 1.0, z: torch.Tensor | None = None) -> torch.Tensor:
    """log R = log r / T for the named reward; x is ``[N, d]`` in [−1, 1] (built-ins), z the
    integer coordinates ``[N, d]`` (user rewards)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if name in USER_REWARDS:
        if z is None:
            raise ValueError(f"user reward {name!r} needs the integer coordinates z")
        out = torch.as_tensor(USER_REWARDS[name](z)).double().reshape(-1)
        if out.shape != (len(z),):
            raise ValueError(
                f"reward {name!r} returned shape {tuple(out.shape)} for {len(z)} points; expected [{len(z)}]"
            )
        if torch.isnan(out).any() or torch.isposinf(out).any():
            raise ValueError(f"reward {name!r} returned NaN or +inf log-rewards")
        return out / temperature
    if name not in REWARDS:
        raise ValueError(
            f"unknown grid reward {name!r}: not a built-in ({', '.join(sorted(REWARDS))}) and not "
            f"registered in this process; call sculpting.domains.grid.register_reward({name!r}, fn) "
            "with the same function first"
        )
    if name in _TWO_D_ONLY and x.shape[-1] != 2:
        raise ValueError(f"reward {name!r} is defined for 2-D grids only, got dimension {x.shape[-1]}")
    return REWARDS[name](x.double()) / temperature
