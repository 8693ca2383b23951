"""``sampler="auto"``: rejection on non-enumerable environments, else full.

Full for enumerable environments and for compositions without observations, rejection
otherwise (:func:`~sculpting.gflownet.rejection.action_sampler_for`); SMC (64 particles) for a path
composition, which has no guided policy.
"""

from __future__ import annotations

import torch

from sculpting.gflownet.paths import PathComposition
from sculpting.gflownet.samplers.common import RolloutSampler
from sculpting.gflownet.samplers.smc import SMCSampler


class AutoSampler(RolloutSampler):
    name = "auto"
    summary = "rejection on non-enumerable environments, else full; SMC for a path composition"
    options = {}
    action_sampler = "auto"

    def draw(self, model, n: int, generator=None, *, steps=None, batch_size=None, progress=False) -> torch.Tensor:
        if isinstance(model, PathComposition):  # no guided policy: the path twist's SMC, 64 particles
            return SMCSampler().draw(model, n, generator, batch_size=batch_size)
        return super().draw(model, n, generator, batch_size=batch_size)
