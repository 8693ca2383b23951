"""``sampler="smc"``: twisted sequential Monte Carlo (:mod:`sculpting.gflownet.smc`).

The composition the classifier's terminal head defines, exact as the particles grow; ⌈n / N⌉
independent runs of N particles, each ending with a multinomial draw of N from its final weights
(runs advance together, ``batch_size`` particles at a time, default 4 096). A base (no
observation: every weight 1) is sampled exactly from its own policy. A path composition (no
classifier, :mod:`sculpting.gflownet.paths`), or ``twist="paths"`` on any composition, runs the
fully adapted SMC of the bases' path likelihoods; ``twist="flows"`` twists by the flow classifier
of bases that learned state flows (:mod:`sculpting.gflownet.flows`).
"""

from __future__ import annotations

import torch

from sculpting.gflownet.flows import flow_policy
from sculpting.gflownet.paths import PathComposition, check_path_options, path_smc_sample
from sculpting.gflownet.samplers.full import FullSampler
from sculpting.gflownet.smc import PROPOSALS, TWISTS, smc_sample
from sculpting.sampling import Sampler
from sculpting.smc_core import check_smc_options


class SMCSampler(Sampler):
    name = "smc"
    family = "gflownet"
    summary = "twisted SMC: exact for the terminal-defined target as N grows"
    options = {"particles": 64, "proposal": "auto", "resample_threshold": 0.5, "twist": "classifier"}

    def draw(self, model, n: int, generator=None, *, steps=None, batch_size=None, progress=False) -> torch.Tensor:
        opts = self.values
        if opts["twist"] == "flows":  # the bases' learned state flows as the classifier
            return smc_sample(
                flow_policy(model), n, generator, batch_size=batch_size, **{**opts, "twist": "classifier"}
            )
        if isinstance(model, PathComposition) or opts["twist"] == "paths":
            check_path_options(model, opts["proposal"], opts["twist"])
            return path_smc_sample(
                model, n, generator, opts["particles"], opts["resample_threshold"], batch_size=batch_size
            )
        if hasattr(model, "composition"):
            return smc_sample(model, n, generator, batch_size=batch_size, **opts)
        check_smc_options(opts["particles"], opts["resample_threshold"])
        if opts["proposal"] not in ("auto",) + PROPOSALS:
            raise ValueError(f"unknown SMC proposal {opts['proposal']!r}; choose from {('auto',) + PROPOSALS}")
        if opts["twist"] not in TWISTS:
            raise ValueError(f"unknown SMC twist {opts['twist']!r}; choose from {TWISTS}")
        if opts["proposal"] == "amortised" or opts["twist"] == "head":
            raise ValueError(
                f"proposal={opts['proposal']!r}, twist={opts['twist']!r} needs a composition with a "
                "successor head (compose(..., successor_head=)); this is a base"
            )
        return FullSampler().draw(model, n, generator, batch_size=batch_size)
