"""``sampler="ode"``: the probability-flow ODE, integrated with Heun's method (:func:`ode_sample`)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from sculpting.sampling import Sampler

__all__ = ["ode_sample", "ODESampler"]


@torch.no_grad()
def ode_sample(model, n: int, steps: int = 40, generator=None, progress: bool = False, rho: float = 1.0):
    """Draw ``n`` images by the probability-flow ODE, dx/dt = f(x, t) − ½ g(t)² s(x, t), integrated
    from t = 1 to ε with Heun's second-order method (Euler on the last step): 2·steps − 1 score
    calls instead of the predictor–corrector's 2·steps. Deterministic given the prior draw.

    The time grid is t_k = (1^(1/ρ) + k/(steps−1)·(ε^(1/ρ) − 1))^ρ (ρ = 1: uniform in t, which for
    the VE-SDE is geometric in the noise level σ_t). ``model``: a base or a composition.

    Caveats (measured, ``docs/diffusion.md``): being deterministic, the ODE keeps any mismatch between
    the prior and the true x_1 (VE: data far from 0 relative to σ_1) and any score error, which the
    Langevin corrector of :func:`pc_sample` repairs; on the shipped 16×16 MNIST models it is ≈ 10×
    faster than 300 PC steps but judged clearly worse.
    """
    if steps < 2:
        raise ValueError(f"need at least 2 ODE steps, got {steps}")
    sde = model.sde
    dev = getattr(model, "device", torch.device("cpu"))  # host: fallback
    gdev = generator.device if generator is not None else dev
    x = sde.prior_sample((n, *model.image_shape), generator, device=gdev).to(dev)
    u = torch.linspace(0.0, 1.0, steps, device=dev, dtype=torch.float64)
    ts = ((1.0 - u) * 1.0 + u * sde.eps ** (1.0 / rho)) ** rho if rho != 1.0 else (1.0 - u) + u * sde.eps
    ts = ts.float()

    def velocity(x, t):
        tb = t.expand(n)
        s = model.score(x, tb)
        g2 = sde.diffusion(t) ** 2
        v = -0.5 * g2 * s
        f = sde.drift(x, tb) if hasattr(sde, "drift") else None
        return v if f is None else v + f

    for k in tqdm(range(steps - 1), disable=not progress, desc="ODE"):
        t, t_next = ts[k], ts[k + 1]
        dt = t_next - t
        d = velocity(x, t)
        x_e = x + d * dt
        if k == steps - 2:
            x = x_e
        else:
            x = x + 0.5 * (d + velocity(x_e, t_next)) * dt
    return x


class ODESampler(Sampler):
    """The probability-flow ODE (:func:`ode_sample`): 2·steps − 1 score calls, deterministic given
    the prior draw."""

    name = "ode"
    family = "diffusion"
    summary = "probability-flow ODE (Heun)"
    options = {"rho": 1.0}

    def draw(self, model, n: int, generator=None, *, steps=40, batch_size=None, progress=False) -> torch.Tensor:
        return ode_sample(model, n, steps, generator=generator, progress=progress, **self.values)
