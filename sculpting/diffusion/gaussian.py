"""Closed-form check of composed diffusion sampling (``docs/diffusion.md``, Gaussian-mixture check).

Bases p_i = Σ_k w_ik N(μ_k, s² I) over shared means. Under a linear SDE (x_t = m_t x_0 + σ_t z),
p_{i,t} = Σ_k w_ik N(m_t μ_k, (m_t² s² + σ_t²) I) (VE: m_t = 1; VP: m_t² + σ_t² = 1), so scores
and classifier posteriors are analytic:

    Q(y_1 = i | x_t) ∝ ω_i p_{i,t}(x_t)
    Q(y_1 = i, y_2 = j | x_t) = Q(y_1 = i | x_t) Σ_k P_i(k | x_t) ω_j w_jk / Σ_j' ω_j' w_j'k

(exact up to the overlap of the components). These objects have the same interface as the
learned ones, so the composed sampler can be tested against exact target masses.
"""

from __future__ import annotations

import math

import torch

from sculpting.diffusion.sde import VESDE, VPSDE

__all__ = ["GaussianMixtureScore", "ExactGaussianClassifier"]


class GaussianMixtureScore:
    def __init__(self, means: torch.Tensor, weights, s: float = 0.5, sde: VESDE | VPSDE | None = None):
        self.means = torch.as_tensor(means, dtype=torch.float32)
        w = torch.as_tensor(weights, dtype=torch.float32)
        self.log_w = torch.where(w > 0, w.log(), torch.full_like(w, -float("inf")))
        self.s, self.sde = s, sde or VESDE()
        self.image_shape = (self.means.shape[1],)

    def _log_components(self, x, t):
        """``[B, K]`` log w_k + log N(x; m_t μ_k, v_t I), v_t ``[B, 1]`` and m_t μ ``[B, K, D]``."""
        m = self.sde.mean_coef(t).to(x)[:, None]
        v = m**2 * self.s**2 + self.sde.marginal_std(t)[:, None] ** 2
        mu = m[:, :, None] * self.means[None]  # [B, K, D]
        d2 = ((x[:, None, :] - mu) ** 2).sum(-1)
        dim = self.means.shape[1]
        return self.log_w[None] - d2 / (2 * v) - 0.5 * dim * torch.log(2 * math.pi * v), v, mu

    def log_prob(self, x, t):
        return torch.logsumexp(self._log_components(x, t)[0], dim=1)

    def component_posterior(self, x, t):
        return torch.log_softmax(self._log_components(x, t)[0], dim=1)

    def score(self, x, t):
        lc, v, mu = self._log_components(x, t)
        r = torch.softmax(lc, dim=1)  # [B, K]
        return (r[:, :, None] * (mu - x[:, None, :])).sum(1) / v


class ExactGaussianClassifier:
    """The exact two-slot joint of two or more :class:`GaussianMixtureScore` bases (α-conditioned
    for two bases: slot 2 has the prior (α, 1 − α))."""

    def __init__(self, bases):
        self.bases = list(bases)
        self.n_bases, self.n_slots = len(bases), 2
        self.alpha_conditioned = self.n_bases == 2
        self.image_shape = bases[0].image_shape
        self.W = torch.stack([b.log_w.exp() for b in bases])  # [m, K]

    def log_joint(self, x, t, logit_alpha=None):
        m = self.n_bases
        if self.alpha_conditioned:
            a = 1 / (1 + math.exp(-float(logit_alpha if logit_alpha is not None else 0.0)))
            w2 = torch.tensor([a, 1 - a])
        else:
            w2 = torch.full((m,), 1.0 / m)
        lp = torch.stack([b.log_prob(x, t) for b in self.bases], dim=1)  # [B, m]
        q1 = torch.log_softmax(lp, dim=1)
        rho = w2[:, None] * self.W
        rho = rho / rho.sum(0, keepdim=True)  # [m (j), K]: p(y_2 = j | component k)
        post = torch.stack([b.component_posterior(x, t).exp() for b in self.bases], dim=1)  # [B, m, K]
        tail = torch.einsum("bik,jk->bij", post, rho).clamp_min(1e-30).log()
        return (q1[:, :, None] + tail).reshape(len(x), m * m)

    def log_first(self, x, t, logit_alpha=None):
        j = self.log_joint(x, t, logit_alpha)
        return torch.logsumexp(j.reshape(len(j), self.n_bases, -1), dim=2)
