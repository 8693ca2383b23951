"""A score-based diffusion model: U-Net + VE-SDE, with the DSM loss and EMA weights.

Interface shared with composed samplers (so a composition can be a base): ``sde``,
``image_shape`` (C, S, S) and ``score(x, t)`` with x ``[B, C, S, S]``, t ``[B]``.

Denoising score matching (Song et al. 2021): t ~ U(ε, 1), x_t = x_0 + σ_t z,
L = mean_batch Σ_pixels (σ_t s_θ(x_t, t) + z)²  (weighting λ(t) = σ_t²).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from sculpting.diffusion.fast import FastPath
from sculpting.diffusion.sde import VESDE
from sculpting.diffusion.unet import UNET_PRESETS, ScoreUNet
from sculpting.infrastructure.distributed import broadcast_module, is_main, local_batch, rank_seed
from sculpting.infrastructure.fingerprint import describe
from sculpting.infrastructure.training_scaffold import (
    Resumable,
    TrainConfig,
    ema_update,
    frozen_copy,
    keeps_global_rng,
    optimiser_step,
    seeded,
    seeded_init,
)
from sculpting.infrastructure.training_scaffold import progress as progress_bar
from sculpting.describe import model_name, n_parameters

__all__ = ["ScoreModel", "DiffusionTrainConfig", "train_score_model"]


class ScoreModel(nn.Module):
    def __init__(
        self,
        channels: int = 3,
        preset: str = "cpu",
        sde: VESDE | None = None,
        *,
        seed: int | None = None,
        **unet_overrides,
    ):
        super().__init__()
        if preset not in UNET_PRESETS:
            raise ValueError(f"unknown U-Net preset {preset!r}; choose from {sorted(UNET_PRESETS)}")
        cfg = {**UNET_PRESETS[preset], **unet_overrides}
        self.preset = preset

        with seeded_init(seed):  # seed=: initial weights from that seed, torch's generator untouched
            self.unet = ScoreUNet(channels=channels, **cfg)
        self.sde = sde or VESDE()
        self.image_shape = (channels, cfg["image_size"], cfg["image_size"])

    def __repr__(self) -> str:
        shape = "×".join(map(str, self.image_shape))
        sde, n = type(self.sde).__name__, n_parameters(self)
        return f"ScoreModel({model_name(self)}: {sde}, images {shape}, {n} parameters)"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, self.sde.marginal_std(t))

    def dsm_noise(self, x0: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss's randomness for a batch ``x0`` ``[B, C, S, S]``: t ``[B]`` ~ U(ε, 1), z ~ N(0, I)
        like ``x0``, drawn from ``generator`` (on its device) and moved to ``x0``'s."""
        gdev = generator.device if generator is not None else x0.device
        t = (torch.rand(x0.shape[0], generator=generator, device=gdev) * (1 - 1e-5) + 1e-5).to(x0.device)
        z = torch.randn(x0.shape, generator=generator, device=gdev).to(x0.device)
        return t, z

    def dsm_loss_at(self, x0: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """mean_b Σ_pixels (σ_t s_θ(x0 + σ_t z, t) + z)² for given t ``[B]`` and z (a scalar; the
        score in float32 even under autocast)."""
        std = self.sde.marginal_std(t)[:, None, None, None]
        s = self.score(x0 + std * z, t).float()
        return ((s * std + z) ** 2).sum(dim=(1, 2, 3)).mean()

    def dsm_loss(self, x0: torch.Tensor, generator=None) -> torch.Tensor:
        t, z = self.dsm_noise(x0, generator)
        return self.dsm_loss_at(x0, t, z)


@dataclass
class DiffusionTrainConfig(TrainConfig):
    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-3
    final_lr_fraction: float = 0.05  # cosine decay to this fraction of lr
    ema_decay: float = 0.999
    seed: int = 0


#: training steps between host reads of the loss (one synchronisation per this many steps on a GPU)
LOSS_READ_EVERY = 50


def _dsm_batch_loss(model, images, batch: int, gen, fast, loss_at) -> torch.Tensor:
    """The denoising score-matching loss of ``model`` on ``batch`` images drawn with replacement
    (``model.dsm_noise`` draws t and the noise; ``loss_at`` is ``model.dsm_loss_at`` as the fast
    path wraps it, under its autocast)."""
    idx = torch.randint(len(images), (batch,), generator=gen, device=gen.device).to(images.device)
    x0 = fast.inputs(images[idx])
    t, z = model.dsm_noise(x0, gen)
    with fast.autocast(model.device):
        return loss_at(x0, t, z)


@keeps_global_rng
def train_score_model(
    model: ScoreModel,
    images: torch.Tensor,
    config: DiffusionTrainConfig,
    progress: bool = True,
    desc: str = "score model",
    checkpoint_path=None,
    checkpoint_every: int = 500,
    fast=None,
):
    """Train on ``images`` ``[N, C, S, S]`` (moved once to the model's device, e.g. after
    ``model.to("cuda")``); at the end the model holds the **EMA** weights. ``checkpoint_path``:
    resumable training (:class:`sculpting.infrastructure.training_scaffold.Resumable`). ``fast``: the GPU fast path
    (:class:`sculpting.diffusion.fast.FastPath`: ``"auto"``, or ``"channels_last,bf16,cudagraphs"``…;
    default off). The losses are read on the host every :data:`LOSS_READ_EVERY` steps, in one
    read (the same floats as one read per step). ``hist["fast"]``: the fast path's switches."""

    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(f"images are {tuple(images.shape[1:])}, the model expects {model.image_shape}")
    fast = FastPath.parse(fast, model.device)
    images = images.to(model.device)
    gen = seeded(rank_seed(config.seed), model.device)
    broadcast_module(model)
    B = local_batch(config.batch_size)
    progress = progress and is_main()
    ema = frozen_copy(model)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, max(1, config.steps), eta_min=config.lr * config.final_lr_fraction
    )
    hist = {"loss": []}

    record = {"kind": "score_model", **config.to_dict(), **({"fast": fast.label} if fast.on else {})}
    resume = Resumable(
        checkpoint_path,
        checkpoint_every,
        record,
        {"model": model, "ema": ema, "opt": opt, "sched": sched},
        gen,
        what={"model": describe(model), "data": describe(images)} if checkpoint_path is not None else None,
    )
    start = resume.start(hist)
    fast.prepare(model)
    fast.prepare(ema)
    loss_at = fast.wrap(model.dsm_loss_at)
    pending = []  # this run's losses not yet read on the host

    def read_losses():
        if pending:
            hist["loss"].extend(torch.stack(pending).tolist())
            pending.clear()

    t0 = time.perf_counter() - hist.get("train_time_s", 0.0)
    bar = progress_bar(config.steps, desc, progress, mininterval=1.0, start=start)
    for step in bar:
        loss = _dsm_batch_loss(model, images, B, gen, fast, loss_at)
        optimiser_step(opt, loss, model, sched)
        ema_update(ema, model, config.ema_decay)
        pending.append(loss.detach())
        if step % LOSS_READ_EVERY == 0 or resume.due(step) or step == config.steps:
            read_losses()
            bar.set_postfix(loss=f"{hist['loss'][-1]:.1f}")
        hist["train_time_s"] = time.perf_counter() - t0
        resume.save(step, hist)
    read_losses()
    resume.save(config.steps, hist, force=True)
    model.load_state_dict(ema.state_dict())
    if fast.channels_last:
        model.to(memory_format=torch.contiguous_format)  # the usual layout for whoever uses it next
    hist["train_time_s"] = time.perf_counter() - t0
    if fast.on:
        hist["fast"] = fast.label
    return hist
