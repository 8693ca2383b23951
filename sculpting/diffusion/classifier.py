"""Time-conditioned joint classifiers for sculpting diffusion models (docs/diffusion.md).

``TimeClassifier`` models log Q(y_1..y_n | x_t, t) over ordered label tuples (exchangeable for
three bases, full joint for two); the two-base model is **α-conditioned** (slot 2 has the prior
(α, 1 − α), logit α is an input of the head), as on the grid, so one classifier serves every α.
Trunk: conv 3×3 C→c0, ReLU, conv 3×3 c0→c1, ReLU, max-pool 2, dropout; the flattened features
are concatenated with a Gaussian-Fourier time embedding; fc → hidden, ReLU, dropout, → classes.
The single-observation (terminal) posterior is the y_1 marginal at t = ε.

Inputs are preconditioned, x_t / sqrt(m_t² + σ_t²) for the model's SDE (x_t = m_t x_0 + σ_t z;
VE: sqrt(1 + σ_t²), VP: 1), so that the network sees unit-scale inputs at every t (noisy states of
the VE-SDE reach std ≈ 10; unscaled, the non-terminal loss blew the trunk's ReLUs dead on CPU runs).
``sde`` is the config of the bases' SDE (``sde.config``; default: the VE-SDE with σ = 25).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sculpting.algebra import MAX_BASES, Composition
from sculpting.labels import classifier_logit_alpha
from sculpting.infrastructure.bounds import MAX_SLOTS, check_count, check_parameter_memory, check_width
from sculpting.diffusion.sde import sde_from_config
from sculpting.diffusion.unet import GaussianFourierEmbedding
from sculpting.finite import check_log_probs
from sculpting.labels import JointLabels, first_label, observed_labels, resolve_label_model
from sculpting.infrastructure.training_scaffold import seeded_init
from sculpting.describe import classifier_traits, n_parameters

__all__ = ["TimeClassifier", "DiffusionQ"]


class TimeClassifier(nn.Module):
    def __init__(
        self,
        image_shape=(3, 16, 16),
        n_bases: int = 2,
        n_slots: int = 2,
        alpha_conditioned: bool | None = None,
        exchangeable: bool | None = None,
        trunk=(32, 64),
        hidden: int = 256,
        embed_dim: int = 128,
        dropout=(0.25, 0.5),
        sde: dict | None = None,
        seed: int | None = None,
    ):
        super().__init__()

        check_count("n_bases", n_bases, 2, MAX_BASES)
        check_count("n_slots", n_slots, 1, MAX_SLOTS)
        check_width("hidden", hidden)
        check_width("embed_dim", embed_dim)
        if not isinstance(trunk, (tuple, list)) or len(trunk) != 2:
            raise TypeError(f"trunk must be two channel counts (c1, c2), got {trunk!r}")
        for w in trunk:
            check_width("a trunk width", w)
        if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
            raise TypeError(f"image_shape must be (C, S, S), got {image_shape!r}")
        side = image_shape[1]
        check_parameter_memory(
            "this time classifier",
            9 * image_shape[0] * trunk[0]
            + 9 * trunk[0] * trunk[1]
            + (trunk[1] * max((side - 4) // 2, 1) ** 2 + 2 * embed_dim) * hidden
            + hidden * n_bases**n_slots,
        )
        with seeded_init(seed):  # seed=: initial weights from that seed, torch's generator untouched
            alpha_conditioned, exchangeable = resolve_label_model(n_bases, n_slots, alpha_conditioned, exchangeable)
            c, s, _ = image_shape
            self.image_shape = tuple(image_shape)
            self.sde = sde_from_config(sde)
            self.n_bases, self.n_slots = n_bases, n_slots
            self.alpha_conditioned, self.exchangeable = alpha_conditioned, exchangeable
            self.config = {
                "image_shape": list(image_shape),
                "n_bases": n_bases,
                "n_slots": n_slots,
                "alpha_conditioned": alpha_conditioned,
                "exchangeable": exchangeable,
                "trunk": list(trunk),
                "hidden": hidden,
                "embed_dim": embed_dim,
                "dropout": list(dropout),
            }
            if sde is not None:  # (absent in the VE checkpoints shipped before VP support: same default)
                self.config["sde"] = self.sde.config
            self.conv1 = nn.Conv2d(c, trunk[0], 3)
            self.conv2 = nn.Conv2d(trunk[0], trunk[1], 3)
            feat = trunk[1] * ((s - 4) // 2) ** 2
            self.embed = nn.Sequential(GaussianFourierEmbedding(embed_dim), nn.Linear(embed_dim, embed_dim), nn.SiLU())
            self.drop1, self.drop2 = nn.Dropout(dropout[0]), nn.Dropout(dropout[1])
            a = 1 if alpha_conditioned else 0
            self.fc = nn.Linear(feat + embed_dim + a, hidden)
            self.labels = JointLabels(n_bases, n_slots, exchangeable)
            self.head = nn.Linear(hidden + a, self.labels.n_classes)

    def __repr__(self) -> str:
        shape = "×".join(map(str, self.image_shape))
        return f"TimeClassifier({classifier_traits(self)}, images {shape}; {n_parameters(self)} parameters)"

    def log_joint(self, x: torch.Tensor, t: torch.Tensor, logit_alpha=None) -> torch.Tensor:
        """x ``[B, C, S, S]``, t ``[B]`` → ``[B, m^n]`` log Q(y_1..y_n | x_t, t)."""
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"classifier expects images {self.image_shape}, got {tuple(x.shape[1:])}")
        scale = torch.sqrt(self.sde.mean_coef(t).to(t) ** 2 + self.sde.marginal_std(t) ** 2)
        x = x / scale.reshape(-1, *[1] * (x.dim() - 1))
        h = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        h = torch.cat([self.drop1(h).flatten(1), self.embed(t)], dim=1)
        col = None
        if self.alpha_conditioned:
            if logit_alpha is None:
                raise ValueError("this classifier is α-conditioned: pass logit_alpha")
            la = torch.as_tensor(logit_alpha, dtype=x.dtype, device=x.device)
            col = la.expand(len(x))[:, None] if la.dim() == 0 else la.reshape(len(x), 1)
            h = torch.cat([h, col], dim=1)
        h = self.drop2(F.relu(self.fc(h)))
        logits = self.head(h if col is None else torch.cat([h, col], dim=1))
        return self.labels(logits)

    def log_first(self, x, t, logit_alpha=None) -> torch.Tensor:
        """``[B, m]`` log Q(y_1 = i | x_t, t)."""
        return first_label(self.log_joint(x, t, logit_alpha), self.n_bases)


class DiffusionQ:
    """A classifier specialised to a composition: ``first(x, t)`` → log Q(y_1 = i | x_t) ``[B, m]``
    (shifted to the mixture weights for a weighted mixture), ``log_q_y(x, t)`` → log Q(y | x_t) ``[B]``."""

    def __init__(self, classifier, composition: Composition):
        self.classifier, self.composition = classifier, composition
        self.logit_alpha = classifier_logit_alpha(
            composition, classifier.n_bases, classifier.n_slots, classifier.alpha_conditioned
        )
        self._log_prior0 = composition.log_priors(torch.float32)[0]

    def first(self, x, t):
        q = check_log_probs(self.classifier.log_first(x, t, self.logit_alpha), self.classifier, "log Q(y_1 | x_t)")
        if self.composition.n_observations == 0:
            q = torch.log_softmax(q + self._log_prior0.to(q.device), dim=1)
        return q

    def log_q_y(self, x, t):
        c, m, n = self.composition, self.classifier.n_bases, self.classifier.n_slots
        if c.n_observations == 0:
            return torch.zeros(len(x), device=x.device)
        joint = check_log_probs(self.classifier.log_joint(x, t, self.logit_alpha), self.classifier, "log Q(y | x_t)")
        return observed_labels(joint, c.observations, m, n)

    def first_and_log_q_y(self, x, t):
        """``(first(x, t), log_q_y(x, t))`` from one classifier pass (a composition with observations;
        the same values as the two calls)."""
        c, m, n = self.composition, self.classifier.n_bases, self.classifier.n_slots
        if c.n_observations == 0:
            raise ValueError("first_and_log_q_y is for compositions with observations")
        joint = check_log_probs(self.classifier.log_joint(x, t, self.logit_alpha), self.classifier, "log Q(y | x_t)")
        return first_label(joint, m), observed_labels(joint, c.observations, m, n)
