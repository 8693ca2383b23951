"""Forward SDEs of score-based diffusion models (Song et al. 2021). See ``docs/diffusion.md``.

Every SDE here is linear, dx = f(t) x dt + g(t) dw, so its perturbation kernel is Gaussian:
x_t = m_t x_0 + σ_t z. The samplers and the time-conditioned classifiers use only
``mean_coef(t)`` (m_t), ``marginal_std(t)`` (σ_t), ``drift(x, t)`` (f(t) x, or ``None`` where it
is zero), ``diffusion(t)`` (g(t)), ``prior_sample`` and ``eps`` (the smallest sampling time).

* :class:`VESDE` (variance exploding, σ = 25):  f = 0, g(t) = σ^t,
  σ_t = sqrt((σ^{2t} − 1) / (2 ln σ)), m_t = 1; prior N(0, σ_1² I) (σ_1 ≈ 9.845).
* :class:`VPSDE` (variance preserving, the continuous limit of DDPM's linear β schedule):
  β(t) = β_min + t (β_max − β_min), f = −β(t)/2, g = sqrt(β(t)),
  m_t = exp(−t² (β_max − β_min)/4 − t β_min/2), σ_t = sqrt(1 − m_t²); prior N(0, I).
  DDPM with N steps and β_i ∈ [β_start, β_end] is β_min = N β_start, β_max = N β_end
  (1000 steps of 1e-4 … 0.02 give 0.1 … 20).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

__all__ = ["VESDE", "VPSDE", "sde_from_config", "noise_level_table"]


def _tensor(t) -> torch.Tensor:
    """``t`` as a float32 tensor on its own device (a Python number: on the CPU)."""
    return t.float() if isinstance(t, torch.Tensor) else torch.tensor(float(t), device="cpu")  # host: a Python number


@dataclass(frozen=True)
class VESDE:
    sigma: float = 25.0
    eps: float = 1e-3

    def __post_init__(self):
        if not self.sigma > 1:
            raise ValueError(f"sigma must exceed 1, got {self.sigma}")

    @property
    def config(self) -> dict:
        return {"kind": "ve", **asdict(self)}

    def marginal_std(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((self.sigma ** (2 * t) - 1.0) / (2 * math.log(self.sigma)))

    def mean_coef(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(_tensor(t))

    def drift(self, x: torch.Tensor, t: torch.Tensor):
        return None

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma**t

    def prior_sample(self, shape, generator=None, device=None) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device) * float(
            self.marginal_std(torch.tensor(1.0, device="cpu"))  # host: a float
        )


@dataclass(frozen=True)
class VPSDE:
    beta_min: float = 0.1
    beta_max: float = 20.0
    eps: float = 1e-3

    def __post_init__(self):
        if not 0 < self.beta_min < self.beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {self.beta_min}, {self.beta_max}")

    @property
    def config(self) -> dict:
        return {"kind": "vp", **asdict(self)}

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def mean_coef(self, t: torch.Tensor) -> torch.Tensor:
        t = _tensor(t)
        return torch.exp(-0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min)

    def marginal_std(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(1.0 - self.mean_coef(t) ** 2)

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = torch.as_tensor(self.beta(t), dtype=x.dtype, device=x.device)
        return -0.5 * b.reshape(-1, *[1] * (x.dim() - 1)) * x if b.dim() else -0.5 * b * x

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(_tensor(self.beta(t)))

    def prior_sample(self, shape, generator=None, device=None) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device)


def sde_from_config(config: dict | None):
    """Inverse of ``sde.config`` (``None`` or a config without ``kind``: the VE-SDE)."""
    cfg = dict(config or {})
    kind = cfg.pop("kind", "ve")
    if kind == "ve":
        return VESDE(**cfg)
    if kind == "vp":
        return VPSDE(**cfg)
    raise ValueError(f"unknown SDE kind {kind!r}; choose 've' or 'vp'")


def edm_noise_levels(s_min: float, s_max: float, steps: int, rho: float = 7.0) -> torch.Tensor:
    """``[steps]`` float64 EDM noise levels from ``s_max`` down to ``s_min`` (on the host):
    σ̃_k = (σ̃_max^{1/ρ} + k / (steps − 1) · (σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ, k = 0 … steps − 1
    (dense near σ̃_min for ρ > 1; ``docs/diffusion.md``)."""
    k = torch.arange(steps, dtype=torch.float64, device="cpu")  # host: the σ grid, read as floats
    return (s_max ** (1 / rho) + k / (steps - 1) * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho


def noise_level_table(sde, n: int = 4001):
    """(t ``[n]``, σ̃_t = σ_t / m_t ``[n]``) on [ε, 1] in float64, σ̃ increasing in t (the EDM noise
    levels of the scaled variable x / m_t)."""
    t = torch.linspace(sde.eps, 1.0, n, dtype=torch.float64, device="cpu")  # host: a lookup table of floats
    sigma = sde.marginal_std(t.float()).double() / sde.mean_coef(t.float()).double()
    return t, sigma
