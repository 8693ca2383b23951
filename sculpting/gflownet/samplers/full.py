"""``sampler="full"``: every successor scored.

The guided policy with every successor scored (:mod:`sculpting.gflownet.guidance`): exact for
the classifier's guided policy, one classifier row per valid action per step.
"""

from __future__ import annotations

from sculpting.gflownet.samplers.common import RolloutSampler


class FullSampler(RolloutSampler):
    name = "full"
    summary = "every successor scored"
    options = {}
    action_sampler = "full"
