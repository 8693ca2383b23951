"""The variance-exploding SDE of Song et al. 2021 with σ = 25 (DESIGN §2, diffusion).

    dx = σ^t dw,  t ∈ [ε, 1]
    perturbation std  σ_t = sqrt((σ^{2t} − 1) / (2 ln σ))
    diffusion coefficient  g(t) = σ^t
so x_t = x_0 + σ_t z and the prior at t = 1 is N(0, σ_1² I) (σ_1 ≈ 9.845 for σ = 25).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["VESDE"]


@dataclass(frozen=True)
class VESDE:
    sigma: float = 25.0
    eps: float = 1e-3

    def __post_init__(self):
        if not self.sigma > 1:
            raise ValueError(f"sigma must exceed 1, got {self.sigma}")

    def marginal_std(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((self.sigma ** (2 * t) - 1.0) / (2 * math.log(self.sigma)))

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma ** t

    def prior_sample(self, shape, generator=None) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * float(self.marginal_std(torch.tensor(1.0)))
