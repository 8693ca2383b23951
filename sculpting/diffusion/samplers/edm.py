"""``sampler="edm"``: the stochastic second-order sampler of Karras et al. (2022) (:func:`edm_sample`)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from sculpting.diffusion.sde import edm_noise_levels
from sculpting.diffusion.sde import noise_level_table as _noise_level_table
from sculpting.sampling import Sampler

__all__ = ["edm_sample", "EDMSampler"]


@torch.no_grad()
def edm_sample(
    model,
    n: int,
    steps: int = 50,
    generator=None,
    progress: bool = False,
    churn: float = 80.0,
    rho: float = 7.0,
    s_noise: float = 1.0,
):
    """Draw ``n`` images ``[n, C, S, S]`` with the stochastic second-order sampler of Karras et al.
    (2022, "EDM", Alg. 2) on the model's SDE: 2·steps − 1 score calls.

    It works in the scaled variable x̃ = x / m_t, whose noise level is σ̃_t = σ_t / m_t (VE: m_t = 1),
    with the denoiser D(x̃, σ̃) = x̃ + σ̃² m_t s(m_t x̃, t(σ̃)) (t(σ̃) by interpolating the SDE's
    monotone σ̃_t). Noise levels σ_i = (σ̃_1^{1/ρ} + i/(N−1) (σ̃_ε^{1/ρ} − σ̃_1^{1/ρ}))^ρ, σ_N = 0; per step:
      γ = min(churn / N, √2 − 1), σ̂ = min(σ_i (1 + γ), σ̃_1), x̂ = x + sqrt(σ̂² − σ_i²) s_noise z
      (fresh noise: the Langevin-like "churn" that repairs score errors);
      d = (x̂ − D(x̂, σ̂)) / σ̂;  x ← x̂ + (σ_{i+1} − σ̂) d, then, if σ_{i+1} > 0, Heun's correction
      x ← x̂ + (σ_{i+1} − σ̂) (d + d') / 2 with d' the slope at the Euler point.
    ``model``: a base or a composition (the guided score costs one classifier gradient per call).
    Measured on the shipped MNIST models (``docs/diffusion.md``): 50 steps (99 calls) judge like 300
    predictor–corrector steps (600 calls).
    """
    if steps < 2:
        raise ValueError(f"need at least 2 EDM steps, got {steps}")
    if not (churn >= 0 and rho > 0 and s_noise > 0):
        raise ValueError(f"need churn ≥ 0, rho > 0, s_noise > 0; got {churn}, {rho}, {s_noise}")
    sde = model.sde
    dev = getattr(model, "device", torch.device("cpu"))  # host: fallback
    gdev = generator.device if generator is not None else dev
    t_tab, s_tab = _noise_level_table(sde)
    s_min, s_max = float(s_tab[0]), float(s_tab[-1])

    def time_of(sig: float) -> float:
        key = torch.tensor([sig], dtype=torch.float64, device="cpu")  # host: the table lookup of a float
        i = int(torch.searchsorted(s_tab, key).clamp(1, len(s_tab) - 1))
        w = (sig - float(s_tab[i - 1])) / float(s_tab[i] - s_tab[i - 1])
        return float(t_tab[i - 1] + w * (t_tab[i] - t_tab[i - 1]))

    def denoise(x, sig: float):
        t = time_of(sig)
        m = float(sde.mean_coef(torch.tensor(t, device="cpu")))  # host: a float
        return x + sig * sig * m * model.score(m * x, torch.full((n,), t, device=dev))

    sig = edm_noise_levels(s_min, s_max, steps, rho)
    sig = torch.cat([sig, torch.zeros(1, dtype=torch.float64, device="cpu")]).tolist()  # host: floats
    m1 = float(sde.mean_coef(torch.tensor(1.0, device="cpu")))  # host: a float
    x = sde.prior_sample((n, *model.image_shape), generator, device=gdev).to(dev) / m1
    gamma = min(churn / steps, 2**0.5 - 1)
    for i in tqdm(range(steps), disable=not progress, desc="EDM"):
        s, s_next = sig[i], sig[i + 1]
        s_hat = min(s * (1 + gamma), s_max)
        if s_hat > s:
            z = torch.randn(x.shape, generator=generator, device=gdev).to(dev)
            x = x + (s_hat**2 - s**2) ** 0.5 * s_noise * z
        d = (x - denoise(x, s_hat)) / s_hat
        x_next = x + (s_next - s_hat) * d
        if s_next > 0:
            d2 = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s_hat) * 0.5 * (d + d2)
        x = x_next
    return x


class EDMSampler(Sampler):
    """Karras et al.'s stochastic Heun sampler (:func:`edm_sample`): 2·steps − 1 score calls."""

    name = "edm"
    family = "diffusion"
    summary = "EDM: stochastic Heun with churn (Karras et al. 2022)"
    options = {"churn": 80.0, "rho": 7.0, "s_noise": 1.0}

    def draw(self, model, n: int, generator=None, *, steps=50, batch_size=None, progress=False) -> torch.Tensor:
        return edm_sample(model, n, steps, generator=generator, progress=progress, **self.values)
