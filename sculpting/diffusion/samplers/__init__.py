"""The diffusion samplers behind ``sc.sample(model, n, sampler=...)``: one class per file here.

Each is a :class:`~sculpting.sampling.Sampler` of family ``"diffusion"`` whose ``draw`` returns
``[n, *image_shape]`` samples of a base or a composition:

* ``"pc"`` (:mod:`.pc`): predictor–corrector (the default);
* ``"ode"`` (:mod:`.ode`): the probability-flow ODE;
* ``"edm"`` (:mod:`.edm`): Karras et al.'s stochastic Heun sampler;
* ``"smc"`` (:mod:`.smc`): twisted sequential Monte Carlo;
* ``"scheduler"`` (:mod:`.scheduler`): a diffusers scheduler's steps (``sampler=`` also takes the
  scheduler itself).

Every file of this folder is imported here, so a new sampler is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil

from sculpting.diffusion.samplers.edm import EDMSampler, edm_sample
from sculpting.diffusion.samplers.ode import ODESampler, ode_sample
from sculpting.diffusion.samplers.pc import PCSampler, pc_sample
from sculpting.diffusion.samplers.scheduler import SchedulerSampler
from sculpting.diffusion.samplers.smc import DiffusionSMCSampler
from sculpting.sampling import registered, resolve

__all__ = [
    "PCSampler",
    "ODESampler",
    "EDMSampler",
    "DiffusionSMCSampler",
    "SchedulerSampler",
    "pc_sample",
    "ode_sample",
    "edm_sample",
    "diffusion_sampler",
    "SAMPLERS",
]

for _m in pkgutil.iter_modules(__path__):  # any other file of this folder (a new sampler)
    importlib.import_module(f"{__name__}.{_m.name}")


def diffusion_sampler(name, **options):
    """The diffusion sampler ``name`` built with ``options`` (an instance is returned as it is)."""
    return resolve("diffusion", name, options)


#: ``{name: Sampler subclass}`` of the package's diffusion samplers
SAMPLERS = registered("diffusion")
