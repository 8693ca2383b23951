"""``sampler="smc"``: twisted sequential Monte Carlo (:mod:`sculpting.diffusion.smc`).

``sc.sample``'s ``batch_size`` bounds the images per batch of runs. A base (no observation, every
weight 1) is sampled by its own reverse chain: :func:`~sculpting.diffusion.samplers.pc.pc_sample`
without corrector. A path composition (no classifier, :mod:`sculpting.diffusion.paths`) runs the
SMC of the bases' path likelihoods, along the package's own steps or, with
``scheduler=DDPMScheduler(...)``, along that scheduler's Gaussian kernel.
"""

from __future__ import annotations

import torch

from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.paths import DiffusionPathComposition, check_path_proposal, path_smc_sample
from sculpting.diffusion.samplers.pc import pc_sample
from sculpting.diffusion.smc import DIFFUSION_PROPOSALS, check_smc_options, smc_sample
from sculpting.sampling import Sampler


class DiffusionSMCSampler(Sampler):
    name = "smc"
    family = "diffusion"
    summary = "twisted SMC: exact for the terminal-defined target as N grows"
    options = {"particles": 64, "proposal": "auto", "resample_threshold": 0.5, "scheduler": None}

    def draw(self, model, n: int, generator=None, *, steps=200, batch_size=None, progress=False) -> torch.Tensor:
        particles, proposal, threshold = (self.values[k] for k in ("particles", "proposal", "resample_threshold"))
        scheduler = self.values["scheduler"]
        if isinstance(model, DiffusionPathComposition):
            check_path_proposal(proposal)
            return path_smc_sample(model, n, steps, generator, progress, particles, threshold, scheduler=scheduler)
        if scheduler is not None:
            raise ValueError(
                "scheduler= in SMC is the kernel of a path composition's chains (no classifier); a classifier "
                "composition's SMC follows the package's own steps: leave scheduler=None, or compose with no "
                "classifier (sc.compose(bases, None, ...))"
            )
        if not isinstance(model, ComposedScore):
            check_smc_options(particles, threshold)
            if proposal not in ("auto",) + DIFFUSION_PROPOSALS:
                raise ValueError(
                    f"unknown diffusion SMC proposal {proposal!r}; choose from {('auto',) + DIFFUSION_PROPOSALS}"
                )
            return pc_sample(model, n, steps, generator=generator, progress=progress, corrector=False)
        return smc_sample(model, n, steps, generator, progress, particles, proposal, threshold)
