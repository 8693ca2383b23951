"""Classifiers for sculpting GFlowNets (docs/guidance.md), generic over environments.

One network, two heads, on a shared body over ``env.encode(s)`` (plus the α input):

* **terminal head**: m − 1 logits o → log p(y = i | x) = log_softmax([0, o])_i under the
  uniform prior; an observation slot k with prior ω^k is a shift:
  log p(y_k = i | x) = log_softmax([0, o] + log ω^k)_i.  For two bases with ω^2 = (α, 1 − α)
  this is p(y_2 = 2 | x) = σ(o − logit α), as in the reference.
* **non-terminal head**: the joint log Q(y_1..y_n | s) over ordered label tuples, either a
  full softmax over m^n tuples or, when exchangeable, one logit per multiset of labels with
  log Q(tuple) = logit(multiset) − log(#orderings) − logsumexp(logits) (for m = n = 3 the
  10 classes with the log 3 and log 6 corrections).  α-conditioned models see logit α again.

:class:`ClassifierQ` turns a classifier and a :class:`~sculpting.algebra.Composition` into the
four quantities the guided policy needs (see :mod:`sculpting.gflownet.guidance`).
"""

from __future__ import annotations

import torch
from torch import nn

from sculpting.algebra import MAX_BASES, Composition
from sculpting.labels import classifier_logit_alpha
from sculpting.infrastructure.bounds import MAX_LAYERS, MAX_SLOTS, check_count, check_parameter_memory, check_width
from sculpting.finite import check_log_probs
from sculpting.labels import JointLabels, first_label, observed_labels, resolve_label_model
from sculpting.infrastructure.training_scaffold import seeded_init
from sculpting.describe import classifier_traits, n_parameters

__all__ = ["SculptingClassifier", "ClassifierQ"]


class SculptingClassifier(nn.Module):
    """Terminal + non-terminal classifier for ``n_bases`` GFlowNets over one environment.

    Args:
        env: the environment (its ``space`` must match the bases'; ``encode`` gives features).
        n_bases: m.
        n_slots: n, the number of observations the non-terminal head models jointly.
        alpha_conditioned: the two-base α-model (slot 2 has the prior (α, 1 − α)).
        exchangeable: parameterise the joint by multisets (three-base model).
        hidden, n_layers: the MLP body (docs/guidance.md: two hidden layers of 256, LeakyReLU).
        body: optional custom body module ``body(states, cond [B, 1 (+1)]) → [B, body.out_dim]``
            (e.g. a graph transformer), replacing the MLP on ``env.encode``. Its condition is
            c = logit α · (1 − t) for α-models and c = t otherwise (t = terminal flag), as in
            docs/molecules.md §9, followed by the context value when ``context_conditioned``.
        context_conditioned: the bases are a family indexed by a scalar context (e.g. the
            inverse temperature β of β-conditional GFlowNets): the classifier takes it as an
            input (``context=`` of both heads; a column after the features / the condition),
            so one network serves every member of the family.
    """

    def __init__(
        self,
        env,
        n_bases: int = 2,
        n_slots: int = 2,
        alpha_conditioned: bool | None = None,
        exchangeable: bool | None = None,
        hidden: int = 256,
        n_layers: int = 2,
        body=None,
        context_conditioned: bool = False,
        seed: int | None = None,
    ):
        super().__init__()

        check_count("n_bases", n_bases, 2, MAX_BASES)
        check_count("n_slots", n_slots, 1, MAX_SLOTS)
        if body is None:
            check_width("hidden", hidden)
            check_count("n_layers", n_layers, 1, MAX_LAYERS)
        width = hidden if body is None else int(getattr(body, "out_dim", hidden))
        check_parameter_memory(
            "this classifier",
            (width + 1) * n_bases**n_slots
            + (0 if body is not None else width * (env.feature_dim + 2 + (n_layers - 1) * width)),
        )
        with seeded_init(seed):  # seed=: initial weights from that seed, torch's generator untouched
            alpha_conditioned, exchangeable = resolve_label_model(n_bases, n_slots, alpha_conditioned, exchangeable)
            self.env, self.space = env, dict(env.space)
            self.n_bases, self.n_slots = n_bases, n_slots
            self.alpha_conditioned, self.exchangeable = alpha_conditioned, exchangeable
            self.arch = {
                "n_bases": n_bases,
                "n_slots": n_slots,
                "alpha_conditioned": alpha_conditioned,
                "exchangeable": exchangeable,
                "hidden": hidden,
                "n_layers": n_layers,
            }
            if context_conditioned:
                self.arch["context_conditioned"] = True
            self.context_conditioned = context_conditioned
            a = 1 if alpha_conditioned else 0
            self.custom_body = body is not None
            if body is None:
                layers, d = [], env.feature_dim + a + int(context_conditioned)
                for _ in range(n_layers):
                    layers += [nn.Linear(d, hidden), nn.LeakyReLU()]
                    d = hidden
                self.body = nn.Sequential(*layers)
            else:
                self.body, hidden = body, body.out_dim
                self.arch.pop("hidden"), self.arch.pop("n_layers")
            self.terminal_head = nn.Linear(hidden, n_bases - 1)
            self.labels = JointLabels(n_bases, n_slots, exchangeable)
            self.nonterminal_head = nn.Linear(hidden + a, self.labels.n_classes)

    def __repr__(self) -> str:
        return f"SculptingClassifier({classifier_traits(self)}; {n_parameters(self)} parameters)"

    def _apply(self, fn, *args, **kwargs):
        """``classifier.to(device)`` also moves the environment's tables (when it has ``to``)."""
        out = super()._apply(fn, *args, **kwargs)
        if hasattr(self.env, "to"):
            self.env.to(self.terminal_head.weight.device)
        return out

    def _alpha_col(self, n: int, logit_alpha):
        if not self.alpha_conditioned:
            return None
        if logit_alpha is None:
            raise ValueError("this classifier is α-conditioned: pass logit_alpha")
        la = torch.as_tensor(logit_alpha, dtype=torch.float32, device=self.terminal_head.weight.device)
        return la.expand(n)[:, None] if la.dim() == 0 else la.reshape(n, 1)

    def _context_col(self, n: int, context):
        if not self.context_conditioned:
            if context is not None:
                raise ValueError("this classifier is not context-conditioned: do not pass context")
            return None
        if context is None:
            raise ValueError("this classifier is context-conditioned (e.g. on β): pass context")
        c = torch.as_tensor(context, dtype=torch.float32, device=self.terminal_head.weight.device)
        return c.expand(n)[:, None] if c.dim() == 0 else c.reshape(n, 1)

    def _embed(self, states, col, terminal: bool, context=None):
        ctx = self._context_col(len(states), context)
        if self.custom_body:
            n = len(states)
            cond = (
                col if col is not None else torch.full((n, 1), float(terminal), device=self.terminal_head.weight.device)
            )
            return self.body(states, cond if ctx is None else torch.cat([cond, ctx], dim=1))
        feats = self.env.encode(states)
        return self.body(torch.cat([feats] + [c for c in (col, ctx) if c is not None], dim=1))

    def terminal_log_posterior(self, states: torch.Tensor, context=None) -> torch.Tensor:
        """``[B, m]`` log p(y = i | x) under the uniform prior (α-free); ``context``: scalar or ``[B]``."""
        col = torch.zeros(len(states), 1, device=self.terminal_head.weight.device) if self.alpha_conditioned else None
        o = self.terminal_head(self._embed(states, col, terminal=True, context=context))
        return torch.log_softmax(torch.cat([torch.zeros_like(o[:, :1]), o], dim=1), dim=1)

    def nonterminal_log_joint(self, states: torch.Tensor, logit_alpha=None, context=None) -> torch.Tensor:
        """``[B, m^n]`` log Q(y_1..y_n | s) over ordered tuples (row-major in the slots)."""
        col = self._alpha_col(len(states), logit_alpha)
        h = self._embed(states, col, terminal=False, context=context)
        logits = self.nonterminal_head(h if col is None else torch.cat([h, col], dim=1))
        return self.labels(logits)

    def logit_alpha_for(self, composition: Composition):
        """Check that this classifier can serve ``composition``; return its logit α (or None)."""
        return classifier_logit_alpha(composition, self.n_bases, self.n_slots, self.alpha_conditioned)


class ClassifierQ:
    """A learned classifier specialised to one composition y = (y_1..y_k).

    ``nonterminal(states)`` → (log Q(y_1 = i | s) ``[B, m]``, log Q(y | s) ``[B]``), the other
    observation slots marginalised; ``terminal(states)`` → the same two at x = s from the
    terminal head: (log p(y_1 = i | x) with slot 1's prior, Σ_k log p(y_k | x)).
    """

    def __init__(self, classifier: SculptingClassifier, composition: Composition, context=None):
        if getattr(classifier, "context_conditioned", False) and context is None:
            raise ValueError("this classifier is context-conditioned (e.g. on β): pass the bases' context")
        if not getattr(classifier, "context_conditioned", False):
            context = None  # a classifier of one family member ignores the context
        self.classifier, self.composition, self.context = classifier, composition, context
        self.logit_alpha = classifier.logit_alpha_for(composition)
        self.space = classifier.space
        self.n_bases = classifier.n_bases
        self._log_priors = composition.log_priors(torch.float32, classifier.terminal_head.weight.device)

    def _ctx(self) -> dict:
        return {"context": self.context} if self.context is not None else {}

    @torch.no_grad()
    def nonterminal(self, states):
        joint = self.classifier.nonterminal_log_joint(states, self.logit_alpha, **self._ctx())
        return self.from_joint(joint)

    def from_joint(self, joint: torch.Tensor):
        """``[K, m^n]`` log joint over ordered label tuples → (log Q(y_1 = i | ·) ``[K, m]``,
        log Q(y | ·) ``[K]``) for this composition (the other slots marginalised)."""
        c, m, n = self.composition, self.n_bases, self.classifier.n_slots
        check_log_probs(joint, self.classifier, "log Q(y_1..y_n | s)")
        q_first = first_label(joint, m)
        if c.n_observations == 0:  # a weighted mixture: shift the slot-1 posterior to the prior ω
            q_first = torch.log_softmax(q_first + self._log_priors[0], dim=1)
            return q_first, torch.zeros(len(joint), device=joint.device)
        return q_first, observed_labels(joint, c.observations, m, n)

    @torch.no_grad()
    def terminal(self, states):
        return self.from_terminal(self.classifier.terminal_log_posterior(states, **self._ctx()))

    def from_terminal(self, lt: torch.Tensor):
        """``[K, m]`` log p(y = i | x) under the uniform prior → (log p(y_1 = i | x) with slot 1's
        prior ``[K, m]``, Σ_k log p(y_k | x) ``[K]``)."""
        c = self.composition
        check_log_probs(lt, self.classifier, "terminal log p(y | x)")
        post = lambda k: torch.log_softmax(lt + self._log_priors[k], dim=1)  # noqa: E731
        q_y = torch.zeros(len(lt), device=lt.device)
        for k, y in enumerate(c.observations):
            q_y = q_y + post(k)[:, y - 1]
        return post(0), q_y
