"""``sampler=<a diffusers scheduler>``: a VP model sampled by a diffusers scheduler's own steps
(:func:`sculpting.diffusion.schedulers.scheduler_sample`)."""

from __future__ import annotations

import torch

from sculpting.diffusion.schedulers import is_scheduler, scheduler_sample
from sculpting.sampling import Sampler


class SchedulerSampler(Sampler):
    """``SchedulerSampler(scheduler=DDPMScheduler(...))``; ``sc.sample(..., sampler=scheduler)``
    wraps a scheduler in one."""

    name = "scheduler"
    family = "diffusion"
    summary = "a diffusers scheduler's steps (DDPM, DDIM, DPM-Solver, Euler, ...)"
    options = {"scheduler": None}
    required = ("scheduler",)

    def __init__(self, **options):
        super().__init__(**options)
        if not is_scheduler(self.values["scheduler"]):
            raise ValueError("sampler='scheduler' needs scheduler=<a diffusers scheduler instance>")

    def draw(self, model, n: int, generator=None, *, steps=50, batch_size=None, progress=False) -> torch.Tensor:
        return scheduler_sample(model, n, self.values["scheduler"], steps, generator=generator, progress=progress)
