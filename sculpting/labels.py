"""The joint label head shared by every sculpting classifier (GFlowNet and diffusion alike).

A classifier of m bases models n observation slots jointly: log Q(y_1..y_n | s) over the m^n
ordered label tuples (row-major). Parameterisations (:func:`joint_label_classes`):
a full softmax over the m^n tuples, or — *exchangeable*, for uniform priors — one logit per
multiset of labels with log Q(tuple) = logit(class) − log #orderings(class) − logsumexp(logits).
An *α-conditioned* two-base classifier gives slot 2 the prior (α, 1 − α) and takes logit α as input.

:class:`JointLabels` turns the head's class logits into the log-joint; :func:`first_label` and
:func:`observed_labels` read off the two quantities guidance needs (``docs/guidance.md``);
:func:`slot_tail_weights` gives the training targets of the tail slots and
:func:`classifier_logit_alpha` checks that a classifier serves a composition (its logit α).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from sculpting.algebra import Composition

__all__ = [
    "joint_label_classes",
    "slot_tail_weights",
    "classifier_logit_alpha",
    "resolve_label_model",
    "JointLabels",
    "first_label",
    "observed_labels",
]


def joint_label_classes(m: int, n: int, exchangeable: bool):
    """Parameterisation of a joint over n labels in 1..m (ordered tuples, row-major).

    Returns ``(class_of_tuple [m^n], log_multiplicity [m^n], n_classes)``. Exchangeable: one
    class per multiset, log Q(tuple) = logit(class) − log #orderings(class) − logsumexp(logits)
    (m = n = 3: 10 classes, corrections log 3 and log 6); otherwise one class per tuple.
    """
    tuples = list(itertools.product(range(m), repeat=n))
    if not exchangeable:
        # host: label bookkeeping, moved to the logits' device by its user
        n_tuples = len(tuples)
        return torch.arange(n_tuples, device="cpu"), torch.zeros(n_tuples, device="cpu"), n_tuples  # host: labels
    multisets = sorted({tuple(sorted(t)) for t in tuples})
    cls = torch.tensor([multisets.index(tuple(sorted(t))) for t in tuples], device="cpu")  # host: label bookkeeping
    counts = torch.bincount(cls, minlength=len(multisets)).double()
    return cls, counts[cls].log(), len(multisets)


def slot_tail_weights(log_post: torch.Tensor, logit_alpha, n_slots: int, alpha_conditioned: bool) -> torch.Tensor:
    """Π_{k≥2} p(y_k | x) over ordered tails (y_2..y_n), row-major: ``[B, m^(n−1)]``.

    ``log_post`` ``[B, m]`` is log p(y = i | x) under the uniform prior; slot k's prior ω^k is a
    shift, log p(y_k = i | x) = log_softmax(log_post + log ω^k). For α-models slot 2 has
    ω = (α, 1 − α) with α = σ(``logit_alpha`` ``[B]``); the other slots are uniform.
    """
    w = torch.ones(len(log_post), 1, dtype=log_post.dtype, device=log_post.device)
    for k in range(1, n_slots):
        if alpha_conditioned and k == 1:
            a = torch.sigmoid(torch.as_tensor(logit_alpha, dtype=log_post.dtype, device=log_post.device))
            p = torch.softmax(log_post + torch.stack([a.log(), (1 - a).log()], dim=-1), dim=1)
        else:
            p = log_post.exp()
        w = (w[:, :, None] * p[:, None, :]).reshape(len(log_post), -1)
    return w


def classifier_logit_alpha(c: Composition, n_bases: int, n_slots: int, alpha_conditioned: bool):
    """Check that a classifier of ``n_bases`` bases and ``n_slots`` observation slots can serve
    composition ``c``; return the logit α to feed an α-conditioned one (else None)."""
    if c.n_bases != n_bases:
        raise ValueError(f"classifier is for {n_bases} bases, composition has {c.n_bases}")
    if c.n_observations > n_slots:
        raise ValueError(f"classifier models {n_slots} observations, composition has {c.n_observations}")
    uniform = (1.0 / n_bases,) * n_bases
    close = lambda row: all(abs(a - b) < 1e-9 for a, b in zip(row, uniform))  # noqa: E731
    if c.n_observations >= 1 and not close(c.priors[0]):
        raise ValueError("observation slot 1 must have the uniform prior")
    if not alpha_conditioned:
        if not all(close(r) for r in c.priors[1:]):
            raise ValueError("this classifier assumes uniform priors for every observation")
        return None
    a = c.priors[1][0] if c.n_observations >= 2 else (c.alpha if c.alpha is not None else 0.5)
    return math.log(a / (1 - a))


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
