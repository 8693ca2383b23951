"""The GFlowNet samplers behind ``sc.sample(model, n, sampler=...)``: one class per file here.

Each is a :class:`~sculpting.sampling.Sampler` of family ``"gflownet"`` whose ``draw`` returns
``[n, *S]`` terminal states:

* ``"auto"`` (:mod:`.auto`): rejection for compositions with observations on non-enumerable
  environments, else full;
* ``"full"`` (:mod:`.full`): the guided policy with every successor scored;
* ``"rejection"`` (:mod:`.rejection`): the same law by rejection, scoring a few successors;
* ``"amortised"`` (:mod:`.amortised`): proposals from a successor head, corrected by the classifier;
* ``"smc"`` (:mod:`.smc`): twisted sequential Monte Carlo, exact for the composition the
  classifier's terminal head defines as the particles grow.

A model that is not a composition (a base) is sampled from its own ``log_probs`` by every sampler.
Every file of this folder is imported here, so a new sampler is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil

from sculpting.gflownet.samplers.amortised import AmortisedSampler
from sculpting.gflownet.samplers.auto import AutoSampler
from sculpting.gflownet.samplers.common import DEFAULT_BATCH, RolloutSampler, trajectory_bytes
from sculpting.gflownet.samplers.full import FullSampler
from sculpting.gflownet.samplers.rejection import RejectionSampler
from sculpting.gflownet.samplers.smc import SMCSampler
from sculpting.sampling import registered, resolve

__all__ = [
    "AmortisedSampler",
    "AutoSampler",
    "FullSampler",
    "RejectionSampler",
    "SMCSampler",
    "DEFAULT_BATCH",
    "RolloutSampler",
    "trajectory_bytes",
    "gflownet_sampler",
    "draw_terminal",
    "GFLOWNET_SAMPLERS",
]

for _m in pkgutil.iter_modules(__path__):  # any other file of this folder (a new sampler)
    importlib.import_module(f"{__name__}.{_m.name}")


def gflownet_sampler(name, **options):
    """The GFlowNet sampler ``name`` built with ``options`` (an instance is returned as it is)."""
    return resolve("gflownet", name, options)


def draw_terminal(model, n: int, generator=None, sampler="auto", batch_size: int | None = None, **options):
    """``[n, *S]`` terminal states of ``model`` by ``sampler`` (a name with ``options``, or an instance)."""
    return gflownet_sampler(sampler, **options).draw(model, n, generator, batch_size=batch_size)


#: ``{name: Sampler subclass}`` of the package's GFlowNet samplers
GFLOWNET_SAMPLERS = registered("gflownet")
