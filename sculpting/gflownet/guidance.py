"""Guided (sculpted) policies: bases + classifier + composition → a policy (docs/guidance.md).

For a state s with successors s'_a (for the stop action the "successor" is the terminal x = s,
scored by the terminal head), two forms:

* ``"paper"`` (Garipov et al. 2023, eq. 13):
      log π(a | s, y) = log Σ_i Q(y_1 = i | s) π_i(a | s) + log Q(y | s'_a) − log Q(y | s)
  exact when all bases are exact GFlowNets of one shared backward policy.
* ``"anchored"`` (exact for any base forward policies with the oracle classifier): run base
  b = y_1 re-weighted by h(s) = Q(y | s) / Q(y_1 = b | s) = E_b[Π_{k≥2} p(y_k | x) | s]:
      log π(a | s, y) = log π_b(a | s) + log h(s'_a) − log h(s)
  (at the stop, h(x) = Π_{k≥2} p(y_k | x) from the terminal head).

Both are finally normalised over the valid actions (a softmax). For the plain mixture (no
observation) both forms are the flow-mixture policy Σ_i post_i(s) π_i(a | s), which is exact.
A :class:`GuidedPolicy` has ``log_probs(states)`` like any base, so it can be sampled, solved
exactly by DP on enumerable environments, or used as a base of another composition.
"""

from __future__ import annotations

import torch

from sculpting.describe import composition_text
from sculpting.gflownet.policy import masked_log_softmax, policy_table
from sculpting.gflownet.score_cache import ScoreCache

__all__ = ["GUIDANCE_FORMS", "guided_log_probs", "GuidedPolicy"]

GUIDANCE_FORMS = ("paper", "anchored")


def guided_log_probs(base_lp, mask, parent_first, parent_y, child_first, child_y, form: str, anchor: int | None):
    """The guidance formula on tensors.

    Args:
        base_lp: ``[B, m, A]`` log π_i(a | s).
        mask: ``[B, A]`` valid actions.
        parent_first, parent_y: ``[B, m]`` log Q(y_1 = i | s), ``[B]`` log Q(y | s).
        child_first, child_y: ``[B, A, m]`` and ``[B, A]``, the same at every successor
            (terminal-head values in the stop column).
        form: "paper" or "anchored"; anchor: y_1 − 1 (None for the mixture).
    Returns:
        ``[B, A]`` normalised log π(a | s, y).
    """
    if form == "paper" or anchor is None:
        logits = torch.logsumexp(parent_first[:, :, None] + base_lp, dim=1) + child_y - parent_y[:, None]
    else:
        log_h_child = child_y - child_first[..., anchor]
        log_h = parent_y - parent_first[:, anchor]
        logits = base_lp[:, anchor] + log_h_child - log_h[:, None]
    logits = torch.nan_to_num(logits, nan=-float("inf"))
    return masked_log_softmax(logits, mask & torch.isfinite(logits))


class GuidedPolicy:
    """The sculpted policy of ``bases`` under ``composition`` with a classifier (or oracle) ``q``.

    Args:
        bases: m policies over one environment space (each has ``log_probs`` and ``env``).
        q: a :class:`ClassifierQ` or :class:`OracleQ` built for ``composition``.
        form: "anchored" (default) or "paper".
    """

    chunk_size = 4000
    #: rows of classifier outputs kept for states already scored (:mod:`.score_cache`); 0: none
    cache_size = 100_000
    #: optional amortised successor scorer for ``sampler="amortised"`` (:mod:`.amortised`)
    successor_head = None
    #: the bases as given to ``sc.compose`` where ``bases`` holds their exact tables (the oracle)
    source_bases = None

    def __init__(self, bases, q, form: str = "anchored"):
        if form not in GUIDANCE_FORMS:
            raise ValueError(f"unknown guidance form {form!r}; choose from {GUIDANCE_FORMS}")
        c = q.composition
        if len(bases) != c.n_bases:
            raise ValueError(f"composition of {c.n_bases} bases got {len(bases)} base policies")
        self.env = bases[0].env
        for b in bases:
            if b.env.space != self.env.space:
                raise ValueError(f"bases live on different spaces: {b.env.space} vs {self.env.space}")
        if q.space != self.env.space:
            raise ValueError(f"classifier was built for {q.space}, the bases for {self.env.space}")
        self.bases, self.q, self.form, self.composition = list(bases), q, form, c
        # rows per classifier call when scoring successors: an environment may prefer small chunks
        # (graph networks on CPU run ≈ 2× faster per row in chunks of 64 than of 4 000)
        self.chunk_size = getattr(self.env, "scoring_chunk_size", GuidedPolicy.chunk_size)
        self.anchor = c.observations[0] - 1 if c.n_observations else None
        params = q.classifier.parameters() if hasattr(q, "classifier") else ()
        self.cache = ScoreCache(self.cache_size, c.n_bases, params) if self.cache_size > 0 else None

    def __repr__(self) -> str:
        clf = getattr(self.q, "classifier", None)  # ClassifierQ wraps a classifier; the oracle (OracleQ) is exact
        guide = "exact oracle" if clf is None else f"classifier {type(clf).__name__}"
        what = composition_text(self.composition, getattr(self, "source_bases", None) or self.bases)
        return f"GuidedPolicy(gflownet: {what}; {self.form} form, {guide})"

    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, A]``. The successors of all legal moves of all states are scored in batched
        classifier calls of at most ``chunk_size`` rows (:meth:`score_successors`) (illegal moves are never scored; the
        mixture, whose observation likelihood is 1, scores none)."""
        base_lp = self.base_log_probs(states)
        pf, py = self.nonterminal(states)
        return self.log_probs_given(states, base_lp, self.env.action_mask(states), pf, py)

    @torch.no_grad()
    def base_log_probs(self, states: torch.Tensor) -> torch.Tensor:
        """``[B, m, A]`` log π_i(a | s) in float64 — of the bases the form reads: in the anchored
        form with an observation only base y_1 is evaluated (the other rows are views of it and
        are never read), which halves the base passes of a two-base composition."""
        if self.form == "anchored" and self.anchor is not None:
            lp = self.bases[self.anchor].log_probs(states).double()
            return lp[:, None].expand(-1, len(self.bases), -1)
        return torch.stack([b.log_probs(states).double() for b in self.bases], dim=1)

    def log_probs_given(self, states, base_lp, mask, pf, py) -> torch.Tensor:
        """:meth:`log_probs` from the parts that need no successor — ``base_lp`` ``[B, m, A]``,
        ``mask`` ``[B, A]`` and the parent's (log Q(y_1 = i | s), log Q(y | s)) — already computed."""
        env = self.env
        b, k, m = len(states), env.n_actions - 1, self.composition.n_bases
        if self.composition.n_observations == 0:  # the mixture: log Q(y | ·) = 0, nothing to score
            zeros = torch.zeros(b, k + 1, dtype=torch.float64, device=states.device)
            return guided_log_probs(
                base_lp, mask, pf.double(), py.double(), zeros[..., None], zeros, self.form, self.anchor
            )
        rows, acts = mask[:, :k].nonzero(as_tuple=True)
        cf = torch.full((b, k, m), -float("inf"), dtype=torch.float64, device=states.device)
        cy = torch.full((b, k), -float("inf"), dtype=torch.float64, device=states.device)
        cf[rows, acts], cy[rows, acts] = self.score_successors(states[rows], acts)
        tf, ty = self.q.terminal(states)
        child_first = torch.cat([cf, tf[:, None].double()], dim=1)
        child_y = torch.cat([cy, ty[:, None].double()], dim=1)
        return guided_log_probs(base_lp, mask, pf.double(), py.double(), child_first, child_y, self.form, self.anchor)

    @torch.no_grad()
    def nonterminal(self, states: torch.Tensor):
        """(log Q(y_1 = i | s) ``[B, m]``, log Q(y | s) ``[B]``) in float64, from the classifier in
        calls of ``chunk_size`` rows — or from the policy's :class:`ScoreCache` for states already
        scored (integer states; ``cache_size = 0`` turns it off)."""
        m, dev = self.composition.n_bases, states.device
        if self.cache is None or states.dtype.is_floating_point:
            hit = torch.zeros(len(states), dtype=torch.bool, device=dev)
            first = torch.empty(len(states), m, dtype=torch.float64, device=dev)
            y = torch.empty(len(states), dtype=torch.float64, device=dev)
        else:
            hit, first, y = self.cache.lookup(states)
        miss = (~hit).nonzero().squeeze(1)
        todo = states[miss]
        for i in range(0, len(todo), self.chunk_size):
            f, yy = self.q.nonterminal(todo[i : i + self.chunk_size])
            first[miss[i : i + self.chunk_size]], y[miss[i : i + self.chunk_size]] = f.double(), yy.double()
        if self.cache is not None and len(miss) and not states.dtype.is_floating_point:
            self.cache.store(todo, first[miss], y[miss])
        return first, y

    @torch.no_grad()
    def score_successors(self, states: torch.Tensor, actions: torch.Tensor):
        """(log Q(y_1 = i | s') ``[K, m]``, log Q(y | s') ``[K]``) in float64 at the successors
        s' = step(states, actions) of K non-stop moves (:meth:`nonterminal`)."""
        succ = [
            self.env.step(states[i : i + self.chunk_size], actions[i : i + self.chunk_size])
            for i in range(0, len(states), self.chunk_size)
        ]
        if not succ:
            m = self.composition.n_bases
            return (
                torch.empty(0, m, dtype=torch.float64, device=states.device),
                torch.empty(0, dtype=torch.float64, device=states.device),
            )
        return self.nonterminal(torch.cat(succ))

    @torch.no_grad()
    def table_on(self, env) -> torch.Tensor:
        """``[N, A]`` the guided policy on every state of an enumerable env (one classifier
        pass over all states, successors gathered by index)."""
        states = env.all_states()
        base_lp = torch.stack([policy_table(env, b) for b in self.bases], dim=1)
        pf, py = (t.double() for t in self.q.nonterminal(states))
        tf, ty = (t.double() for t in self.q.terminal(states))
        pad = lambda t: torch.cat([t, torch.full_like(t[:1], -float("inf"))])  # noqa: E731
        ch = env.child_index
        child_first = torch.cat([pad(pf)[ch], tf[:, None]], dim=1)
        child_y = torch.cat([pad(py)[ch], ty[:, None]], dim=1)
        return guided_log_probs(base_lp, env.action_mask(states), pf, py, child_first, child_y, self.form, self.anchor)
