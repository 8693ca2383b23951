"""``sampler="amortised"``: successor-head proposals, classifier correction.

Proposals from the composition's successor head, corrected by the classifier
(:mod:`sculpting.gflownet.amortised`): exact wherever the envelope holds.
"""

from __future__ import annotations

from sculpting.gflownet.samplers.common import RolloutSampler


class AmortisedSampler(RolloutSampler):
    name = "amortised"
    summary = "successor-head proposals, classifier correction"
    options = {"envelope": 2.0, "proposals": 1, "rounds": 8, "acceptances": 1.0, "min_actions": 4}
    action_sampler = "amortised"
