"""A diffusers ``UNet2DModel`` as a sculpting diffusion base (extra: ``diffusers``).

Two conventions of the models people have:

* ``prediction="epsilon"`` (DDPM, variance preserving): the UNet predicts the noise ε of
  x_t = m_t x_0 + σ_t ε at the discrete timestep t·(N − 1); the score is −ε̂ / σ_t. The continuous
  VP-SDE of a DDPM scheduler with a linear β schedule is β_min = N β_start, β_max = N β_end
  (:meth:`DiffusersScoreModel.from_ddpm`).
* ``prediction="score"`` (score-SDE, variance exploding): the UNet is called with the noise level
  σ_t and returns the score itself (diffusers' ``ScoreSdeVe`` convention).

Nothing is downloaded: pass a model you built or loaded yourself.
"""
from __future__ import annotations

import torch

from sculpting.diffusion.sde import VESDE, VPSDE

__all__ = ["DiffusersScoreModel"]


class DiffusersScoreModel(torch.nn.Module):
    """``score(x, t)`` ``[B, C, S, S]`` of a ``UNet2DModel`` under ``sde``."""

    def __init__(self, unet, sde=None, prediction: str = "epsilon", num_train_timesteps: int = 1000):
        super().__init__()
        if prediction not in ("epsilon", "score"):
            raise ValueError(f"prediction must be 'epsilon' (VP, DDPM) or 'score' (VE), got {prediction!r}")
        self.unet, self.prediction, self.num_train_timesteps = unet, prediction, int(num_train_timesteps)
        self.sde = sde or (VPSDE() if prediction == "epsilon" else VESDE())
        cfg = unet.config
        size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        self.image_shape = (cfg.in_channels, size, size)

    @classmethod
    def from_ddpm(cls, unet, scheduler):
        """From a ``DDPMScheduler`` (or any scheduler with a linear β schedule and ε prediction)."""
        c = scheduler.config
        if c.get("beta_schedule", "linear") != "linear":
            raise ValueError(f"only the linear β schedule maps to the VP-SDE here, got {c['beta_schedule']!r}")
        if c.get("prediction_type", "epsilon") != "epsilon":
            raise ValueError(f"only ε-prediction is supported, got {c['prediction_type']!r}")
        n = int(c["num_train_timesteps"])
        return cls(unet, VPSDE(c["beta_start"] * n, c["beta_end"] * n), "epsilon", n)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        std = self.sde.marginal_std(t).to(x.device, x.dtype)
        if self.prediction == "epsilon":
            eps = self.unet(x, t * (self.num_train_timesteps - 1)).sample
            return -eps / std.reshape(-1, *[1] * (x.dim() - 1))
        return self.unet(x, std).sample
