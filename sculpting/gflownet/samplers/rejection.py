"""``sampler="rejection"``: exact rejection sampling of guided actions.

Exact rejection sampling of the guided actions (:mod:`sculpting.gflownet.rejection`): proposes
from the bases' policy and accepts with probability w(s'_a) ≤ 1, scoring a few successors per
step instead of all.
"""

from __future__ import annotations

from sculpting.gflownet.samplers.common import RolloutSampler


class RejectionSampler(RolloutSampler):
    name = "rejection"
    summary = "exact rejection sampling of guided actions"
    options = {"proposals": 1, "rounds": 8, "max_fraction": 1.0, "min_actions": 4, "acceptances": 1.5}
    action_sampler = "rejection"
