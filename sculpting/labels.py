"""The joint label head shared by every sculpting classifier (GFlowNet and diffusion alike).

A classifier of m bases models n observation slots jointly: log Q(y_1..y_n | s) over the m^n
ordered label tuples (row-major). Parameterisations (:func:`sculpting.algebra.joint_label_classes`):
a full softmax over the m^n tuples, or — *exchangeable*, for uniform priors — one logit per
multiset of labels with log Q(tuple) = logit(class) − log #orderings(class) − logsumexp(logits).
An *α-conditioned* two-base classifier gives slot 2 the prior (α, 1 − α) and takes logit α as input.

:class:`JointLabels` turns the head's class logits into the log-joint; :func:`first_label` and
:func:`observed_labels` read off the two quantities guidance needs (``docs/guidance.md``).
"""

from __future__ import annotations

import torch
from torch import nn

from sculpting.algebra import joint_label_classes

__all__ = ["resolve_label_model", "JointLabels", "first_label", "observed_labels"]


def resolve_label_model(n_bases: int, n_slots: int, alpha_conditioned: bool | None, exchangeable: bool | None):
    """Defaults (two bases: α-conditioned; more: exchangeable) and consistency checks."""
    if n_bases < 2 or n_slots < 1:
        raise ValueError(f"need n_bases ≥ 2 and n_slots ≥ 1, got {n_bases}, {n_slots}")
    alpha_conditioned = (n_bases == 2) if alpha_conditioned is None else bool(alpha_conditioned)
    exchangeable = (not alpha_conditioned) if exchangeable is None else bool(exchangeable)
    if alpha_conditioned and (n_bases != 2 or n_slots < 2):
        raise ValueError("an α-conditioned classifier needs 2 bases and at least 2 slots")
    if alpha_conditioned and exchangeable:
        raise ValueError("an α-conditioned classifier is not exchangeable (slot 2 has its own prior)")
    return alpha_conditioned, exchangeable


class JointLabels(nn.Module):
    """Class logits ``[B, n_classes]`` → log-joint ``[B, m^n]`` over ordered label tuples."""

    def __init__(self, n_bases: int, n_slots: int, exchangeable: bool):
        super().__init__()
        cls, log_mult, self.n_classes = joint_label_classes(n_bases, n_slots, exchangeable)
        self.register_buffer("tuple_class", cls, persistent=False)
        self.register_buffer("tuple_log_mult", log_mult.float(), persistent=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits, dim=1)[:, self.tuple_class] - self.tuple_log_mult


def first_label(joint: torch.Tensor, n_bases: int) -> torch.Tensor:
    """``[B, m^n]`` → ``[B, m]`` log Q(y_1 = i | s), the other slots marginalised."""
    return torch.logsumexp(joint.reshape(len(joint), n_bases, -1), dim=2)


def observed_labels(joint: torch.Tensor, observations, n_bases: int, n_slots: int) -> torch.Tensor:
    """``[B, m^n]`` → ``[B]`` log Q(y_1..y_k = observations | s), slots k+1..n marginalised."""
    j = joint.reshape(-1, *([n_bases] * n_slots))
    sel = j[(slice(None), *[y - 1 for y in observations])]
    return torch.logsumexp(sel.reshape(len(joint), -1), dim=1)
