"""diffusers schedulers as samplers of VP score models (needs the ``diffusers`` extra only for the
schedulers themselves; this module imports nothing of it).

:func:`scheduler_sample` samples any VP score model — a base, or a composition of bases — with a
diffusers scheduler (``DDPMScheduler``, ``DDIMScheduler``, ``DPMSolverMultistepScheduler``,
``EulerDiscreteScheduler``, ...): at timestep k the model's noise prediction is ε̂ = −σ_t s(x, t) at
t = k / (N − 1), for a composed score s = Σ_i w_i s_i + γ ∇ log Q. :func:`check_schedule` refuses a
scheduler of another schedule than the model's (``num_train_timesteps``, β range, prediction type).
"""

from __future__ import annotations

import torch

from sculpting.diffusion.sde import VPSDE
from sculpting.infrastructure.runtime import device_of

__all__ = ["is_scheduler", "check_schedule", "scheduler_sample"]


def is_scheduler(obj) -> bool:
    """A diffusers scheduler (what ``sc.sample(..., sampler=)`` hands to :func:`scheduler_sample`);
    a scheduler *class* is refused with a message (build an instance)."""
    if isinstance(obj, type) and all(hasattr(obj, a) for a in ("set_timesteps", "step")):
        raise TypeError(
            f"got the scheduler class {obj.__name__}, not a scheduler: build one, e.g. "
            f"{obj.__name__}(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)"
        )
    return all(hasattr(obj, a) for a in ("set_timesteps", "step", "config")) and not isinstance(obj, str)


def _close(a, b, rel=1e-6) -> bool:
    return abs(float(a) - float(b)) <= rel * max(abs(float(a)), abs(float(b)), 1e-12)


def check_schedule(model, scheduler) -> None:
    """Refuse a ``scheduler`` of another schedule than ``model`` (a VP score model, or a composition of
    them) was trained with: ``num_train_timesteps`` N (of every diffusers base), a linear β schedule with
    N·β_start = β_min and N·β_end = β_max of the model's VP-SDE, ε prediction, no trained betas."""
    c = scheduler.config
    name = type(scheduler).__name__
    n = int(c.get("num_train_timesteps", 1000))
    bases = list(getattr(model, "bases", None) or [model])
    for i, b in enumerate(bases):
        want = getattr(b, "num_train_timesteps", None)
        if want is not None and int(want) != n:
            raise ValueError(
                f"{name} has num_train_timesteps={n}, base {i + 1} was trained with {want}: build the "
                f"scheduler from the training scheduler's config ({name}.from_config(train_sched.config))"
            )
    if c.get("trained_betas") is not None:
        raise ValueError(f"{name} has trained_betas: only a linear β schedule maps to the VP-SDE here")
    if c.get("beta_schedule", "linear") != "linear":
        raise ValueError(f"{name} has beta_schedule={c.get('beta_schedule')!r}; the models follow a linear one")
    sde = model.sde
    lo, hi = float(c.get("beta_start", 1e-4)) * n, float(c.get("beta_end", 0.02)) * n
    if not (_close(lo, sde.beta_min) and _close(hi, sde.beta_max)):
        raise ValueError(
            f"{name} has the β schedule {c.get('beta_start')} .. {c.get('beta_end')} over {n} steps "
            f"(VP-SDE β {lo:g} .. {hi:g}); the models were trained with β {sde.beta_min:g} .. "
            f"{sde.beta_max:g}, i.e. beta_start={sde.beta_min / n:g}, beta_end={sde.beta_max / n:g}"
        )


@torch.no_grad()
def scheduler_sample(
    model, n: int, scheduler, num_inference_steps: int = 50, generator=None, progress: bool = False
) -> torch.Tensor:
    """``[n, *image_shape]`` samples of a VP score model (a base or a composition) by a diffusers
    scheduler: x ~ N(0, init_noise_sigma² I), then per timestep k ε̂ = −σ_t s(scale_model_input(x), t)
    with t = k / (N − 1) (N = the scheduler's ``num_train_timesteps``) and x ← scheduler.step(ε̂, k, x)."""
    from tqdm.auto import tqdm

    if not isinstance(model.sde, VPSDE):
        raise ValueError(
            f"diffusers schedulers sample variance-preserving models; this one has a "
            f"{type(model.sde).__name__}: use sc.sample(model, n, sampler='edm' / 'pc')"
        )
    if not is_scheduler(scheduler):
        raise TypeError(f"expected a diffusers scheduler, got {type(scheduler).__name__}")
    if scheduler.config.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError("configure the scheduler with prediction_type='epsilon'")
    check_schedule(model, scheduler)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of samples must be a positive int, got {n!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, got {type(generator).__name__} "
            "(e.g. torch.Generator().manual_seed(5))"
        )
    if hasattr(model, "classifier") and (scheduler.config.get("clip_sample") or scheduler.config.get("thresholding")):
        raise ValueError(
            f"{type(scheduler).__name__} has clip_sample / thresholding on: it re-derives the noise from "
            "the clipped x0 prediction, which undoes classifier guidance (measured: a harmonic mean "
            "sampled as its opposite). Build it with clip_sample=False, thresholding=False"
        )
    n_train = int(scheduler.config.get("num_train_timesteps", 1000))
    if (
        isinstance(num_inference_steps, bool)
        or not isinstance(num_inference_steps, int)
        or not 1 <= num_inference_steps <= n_train
    ):
        raise ValueError(
            f"num_inference_steps must be an int in [1, {n_train}] (the scheduler's "
            f"num_train_timesteps), got {num_inference_steps!r}"
        )

    dev = device_of(model)
    N = int(scheduler.config["num_train_timesteps"])
    scheduler.set_timesteps(num_inference_steps, device=dev)
    x = torch.randn((n, *model.image_shape), generator=generator, device=dev) * float(scheduler.init_noise_sigma)
    for k in tqdm(scheduler.timesteps, disable=not progress, desc="sampling"):
        x_in = scheduler.scale_model_input(x, k)
        t = torch.full((n,), float(k) / (N - 1), device=dev).clamp(min=model.sde.eps)
        std = model.sde.marginal_std(t).to(x).reshape(-1, *[1] * (x.dim() - 1))
        eps = -std * model.score(x_in, t)
        x = scheduler.step(eps, k, x, generator=generator).prev_sample
    if not torch.isfinite(x).all():
        raise FloatingPointError("the scheduler produced non-finite samples")
    return x
