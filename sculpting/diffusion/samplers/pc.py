"""``sampler="pc"``: predictor–corrector sampling of a linear SDE (Song et al. 2021, Alg. 2; ``docs/diffusion.md``).

For each grid time t in linspace(1, ε, N) (dt = (1 − ε)/(N − 1)), with s = model.score(x, t):
  1. Langevin corrector: δ = 2 (snr · √d / n̄)², n̄ = batch mean of ‖s‖, d = C·H·W;
     x ← x + δ s + √(2δ) z
  2. Euler–Maruyama predictor of the reverse SDE: x̄ = x − f(x, t) dt + g(t)² s dt;
     x ← x̄ + g(t) √dt z   (f = 0 for the VE-SDE, −β(t) x / 2 for the VP-SDE)
The output is the last x̄ (no noise added at the final step).
``model`` is anything with ``sde``, ``image_shape`` and ``score(x, t)`` (a base or a composition).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from sculpting.sampling import Sampler

__all__ = ["pc_sample", "PCSampler", "MAX_SNR"]

#: the largest corrector signal-to-noise ratio pc_sample takes (Song et al. use 0.01 .. 0.3)
MAX_SNR = 1.0


def pc_sample(
    model,
    n: int,
    steps: int = 300,
    snr: float = 0.16,
    generator=None,
    keep_every: int = 0,
    progress: bool = False,
    corrector: bool = True,
):
    """Draw ``n`` images ``[n, C, S, S]``; with ``keep_every`` > 0 also return the trajectory
    as (states ``[K, n, C, S, S]``, times ``[K]``) of every ``keep_every``-th step (noisy x)."""
    if steps < 2:
        raise ValueError(f"need at least 2 sampling steps, got {steps}")
    import numbers

    if isinstance(snr, bool) or not isinstance(snr, numbers.Real) or not 0 <= snr <= MAX_SNR:
        raise ValueError(
            f"snr is the corrector's signal-to-noise ratio, a number in [0, {MAX_SNR}] "
            f"(0.16 is the usual value), got {snr!r}"
        )
    sde = model.sde
    dev = getattr(model, "device", torch.device("cpu"))  # host: fallback
    gdev = generator.device if generator is not None else dev  # a CPU generator with a GPU model: drawn, then moved
    noise = lambda: torch.randn(x.shape, generator=generator, device=gdev).to(dev)  # noqa: E731
    x = sde.prior_sample((n, *model.image_shape), generator, device=gdev).to(dev)
    ts = torch.linspace(1.0, sde.eps, steps, device=dev)
    dt = (1.0 - sde.eps) / (steps - 1)
    d = x[0].numel()
    traj, times = [], []
    for k, t in enumerate(tqdm(ts, disable=not progress, desc="sampling")):
        tb = t.expand(n)
        if corrector:
            with torch.no_grad():
                s = model.score(x, tb)
            norm = s.reshape(n, -1).norm(dim=1).mean()
            delta = 2 * (snr * d**0.5 / norm) ** 2
            x = x + delta * s + torch.sqrt(2 * delta) * noise()
        with torch.no_grad():
            s = model.score(x, tb)
        g = sde.diffusion(t)
        mean = x + g**2 * s * dt
        f = sde.drift(x, tb) if hasattr(sde, "drift") else None
        if f is not None:
            mean = mean - f * dt
        x = mean + g * dt**0.5 * noise()
        if keep_every and (k % keep_every == 0 or k == steps - 1):
            traj.append(mean if k == steps - 1 else x)
            times.append(float(t))
    if keep_every:
        return mean, (torch.stack(traj), torch.tensor(times, device=dev))
    return mean


class PCSampler(Sampler):
    """Predictor–corrector sampling (:func:`pc_sample`): 2·steps score calls."""

    name = "pc"
    family = "diffusion"
    summary = "predictor–corrector (Langevin corrector, Euler–Maruyama predictor)"
    options = {"snr": 0.16, "corrector": True}

    def draw(self, model, n: int, generator=None, *, steps=300, batch_size=None, progress=False) -> torch.Tensor:
        return pc_sample(model, n, steps, generator=generator, progress=progress, **self.values)
