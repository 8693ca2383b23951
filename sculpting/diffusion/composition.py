"""Composed (sculpted) score: bases + classifier + composition → a score model (docs/guidance.md).

    s(x_t, t) = Σ_i w_i(x_t, t) s_i(x_t, t) + γ ∇_x log Q(y | x_t, t),   w_i = Q(y_1 = i | x_t, t)

γ = 1 is the exact composition (p̄_t · Q(y | x_t) is the forward-diffused sculpted density);
γ > 1 sharpens (no longer the target). The weights come from a gradient-free classifier pass;
the gradient is enabled locally, so a ComposedScore can itself be a base of another composition
(its ``score`` works inside ``torch.no_grad()``).
"""

from __future__ import annotations

import math

import torch

from sculpting.algebra import Composition
from sculpting.describe import composition_text
from sculpting.diffusion.classifier import DiffusionQ

__all__ = ["ComposedScore"]


#: the strongest guidance a composition takes (γ = 1 is exact; the MNIST panel's slider stops at 30;
#: beyond 100 a few sampling steps leave the data range by orders of magnitude)
MAX_GAMMA = 100.0


def _sde_of(model):
    sde = getattr(model, "sde", None)
    return getattr(sde, "config", repr(sde))


class ComposedScore:
    """The composed score of ``bases`` (one SDE, one image shape) with ``classifier`` (trained
    under that SDE) for ``composition`` at guidance strength 0 ≤ γ ≤ :data:`MAX_GAMMA`."""

    def __init__(self, bases, classifier, composition: Composition, gamma: float = 1.0):
        import numbers

        if (
            isinstance(gamma, bool)
            or not isinstance(gamma, numbers.Real)
            or not math.isfinite(gamma)
            or not 0 <= gamma <= MAX_GAMMA
        ):
            raise ValueError(
                f"gamma must be a number in [0, {MAX_GAMMA:g}] (1 is the exact composition, "
                f"larger sharpens), got {gamma!r}"
            )
        sdes = [_sde_of(b) for b in bases]
        if any(s != sdes[0] for s in sdes):
            raise ValueError(
                f"the bases diffuse under different SDEs ({sdes}): a composition needs one forward "
                "process (a VP and a VE base have different noisy marginals at the same t)"
            )
        clf_sde = _sde_of(classifier) if getattr(classifier, "sde", None) is not None else None
        if clf_sde is not None and clf_sde != sdes[0]:
            raise ValueError(
                f"the classifier was trained under the SDE {clf_sde}, the bases diffuse under "
                f"{sdes[0]}: refit it on these bases (sc.fit_classifier)"
            )
        if len(bases) != composition.n_bases:
            raise ValueError(f"composition of {composition.n_bases} bases got {len(bases)} base models")
        shapes = {tuple(b.image_shape) for b in bases}
        if len(shapes) != 1:
            raise ValueError(f"base models have different image shapes: {sorted(shapes)}")
        self.image_shape = tuple(bases[0].image_shape)
        if tuple(classifier.image_shape) != self.image_shape:
            raise ValueError(
                f"classifier expects images {tuple(classifier.image_shape)}, "
                f"the score models produce {self.image_shape}"
            )
        self.sde = bases[0].sde
        self.bases, self.classifier, self.composition, self.gamma = list(bases), classifier, composition, float(gamma)
        self.q = DiffusionQ(classifier, composition)
        self.device = getattr(bases[0], "device", torch.device("cpu"))  # host: the fallback for bases without .device

    def __repr__(self) -> str:
        return (
            f"ComposedScore(diffusion: {composition_text(self.composition, self.bases)}; γ={self.gamma:g}, "
            f"classifier {type(self.classifier).__name__})"
        )

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, S, S]``, t ``[B]`` → the composed score ``[B, C, S, S]``. With observations and
        γ > 0, one classifier pass gives both the weights and the guidance gradient."""
        guided = self.composition.n_observations > 0 and self.gamma != 0
        one_pass = guided and hasattr(self.q, "first_and_log_q_y")
        if one_pass:
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                log_w, log_q = self.q.first_and_log_q_y(xg, t)
                (grad,) = torch.autograd.grad(log_q.sum(), xg)
            w = log_w.detach().exp()  # [B, m]
        else:
            with torch.no_grad():
                w = self.q.first(x, t).exp()
        with torch.no_grad():
            s = sum(w[:, i].reshape(-1, *[1] * (x.dim() - 1)) * b.score(x, t) for i, b in enumerate(self.bases))
        if not guided:
            return s
        if not one_pass:
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.q.log_q_y(xg, t).sum(), xg)
        return s + self.gamma * grad
