"""``sampler="auto"``: rejection on non-enumerable environments, else full.

Full for enumerable environments and for compositions without observations, rejection
otherwise (:func:`~sculpting.gflownet.rejection.action_sampler_for`).
"""

from __future__ import annotations

from sculpting.gflownet.samplers.common import RolloutSampler


class AutoSampler(RolloutSampler):
    name = "auto"
    summary = "rejection on non-enumerable environments, else full"
    options = {}
    action_sampler = "auto"
