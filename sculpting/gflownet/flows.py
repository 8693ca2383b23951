"""The flow classifier: sculpting GFlowNets that learned state flows, with no classifier to train
(``docs/classifier_free.md``, "Bases with state flows").

A GFlowNet trained by detailed balance or sub-trajectory balance (torchgfn's ``DBGFlowNet``,
``SubTBGFlowNet``) carries a state flow F_i(s) besides its policy. For a consistent flow the
probability that base i's trajectory visits s is F_i(s) / Z_i, Z_i = F_i(s_0), and its terminal
law is p_i(x) = F_i(x) P_F^i(stop | x) / Z_i. Under the slot-j prior ω^{(j)} the posterior of the
base given the visited state is therefore

    Q^{(j)}(i | s) = ω^{(j)}_i F_i(s) / Z_i  /  Σ_k ω^{(j)}_k F_k(s) / Z_k,

with nothing learned beyond the bases. :class:`FlowQ` offers it with the interface of a trained
classifier (:class:`~sculpting.gflownet.classifier.ClassifierQ`): the non-terminal twist is the
product of the observed slots' marginals Π_j Q^{(j)}(y_j | s), the terminal potential the exact
Π_j p(y_j | x) of the flows' terminal laws. Guidance by that product is biased for two or more
observations (the slots are dependent given s, independent only given x); twisted SMC is exact
as the particles grow, because at the stop the twist *is* the terminal potential
(``sc.smc(model, N, twist="flows")``, the paper form: p̄ = Σ_i ω^{(1)}_i P_i on paths).

Cost: one flow and one policy pass per base per state; no classifier, no training.
"""

from __future__ import annotations

import torch

from sculpting.finite import check_log_probs
from sculpting.gflownet.guidance import GuidedPolicy

__all__ = ["FlowQ", "has_state_flows", "flow_policy"]


def has_state_flows(base) -> bool:
    """Whether ``base`` offers ``log_state_flow(states) → [B]`` (a learned log F(s))."""
    return callable(getattr(base, "log_state_flow", None)) and getattr(base, "has_state_flow", True)


class FlowQ:
    """The flow classifier of ``bases`` for ``composition`` (module docs).

    Args:
        bases: m policies over one environment, each with ``log_state_flow(states)`` ``[B]`` (log F_i)
            and ``log_probs(states)`` ``[B, A]``.
        composition: the :class:`~sculpting.algebra.Composition`.

    ``nonterminal(states)`` → (log Q^{(1)}(i | s) ``[B, m]``, Σ_j log Q^{(j)}(y_j | s) ``[B]``);
    ``terminal(states)`` → (log p(y_1 = i | x) ``[B, m]``, Σ_j log p(y_j | x) ``[B]``), both under
    the slots' priors.
    """

    def __init__(self, bases, composition):
        if len(bases) != composition.n_bases:
            raise ValueError(f"a composition of {composition.n_bases} bases got {len(bases)} base policies")
        missing = [i + 1 for i, b in enumerate(bases) if not has_state_flows(b)]
        if missing:
            raise ValueError(
                f"base(s) {missing} carry no state flow: twist='flows' needs GFlowNets trained with one "
                "(torchgfn DBGFlowNet / SubTBGFlowNet, wrapped by TorchGFNPolicy.from_gflownet); use "
                "twist='paths' for any bases"
            )
        self.bases, self.composition, self.n_bases = list(bases), composition, composition.n_bases
        self.env = bases[0].env
        self.space = dict(getattr(self.env, "space", {}) or {})
        s0 = self.env.initial_states(1)
        self._log_z = torch.stack([b.log_state_flow(s0).double().reshape(()) for b in self.bases])  # [m]
        self._log_priors = composition.log_priors(torch.float64, s0.device)

    def _visit(self, states) -> torch.Tensor:
        """``[B, m]`` log F_i(s) − log Z_i: log-probability that base i's trajectory visits s."""
        flows = torch.stack([b.log_state_flow(states).double().reshape(-1) for b in self.bases], 1)
        return flows - self._log_z.to(flows.device)

    def _split(self, log_lik) -> tuple[torch.Tensor, torch.Tensor]:
        priors = self._log_priors.to(log_lik.device)
        first = torch.log_softmax(priors[0] + log_lik, dim=1)
        y = torch.zeros(len(log_lik), dtype=torch.float64, device=log_lik.device)
        for j, label in enumerate(self.composition.observations):
            y = y + torch.log_softmax(priors[j] + log_lik, dim=1)[:, label - 1]
        return first, y

    @torch.no_grad()
    def nonterminal(self, states):
        return self._split(self._visit(states))

    @torch.no_grad()
    def terminal(self, states):
        stop = self.env.stop_action
        lp = torch.stack([b.log_probs(states)[:, stop].double() for b in self.bases], 1)
        for i, b in enumerate(self.bases):
            check_log_probs(lp[:, i : i + 1], b, "stop log-probabilities")
        first, y = self._split(self._visit(states) + lp)
        return torch.nan_to_num(first, nan=-float("inf")), torch.nan_to_num(y, nan=-float("inf"))


def flow_policy(model):
    """The paper-form :class:`~sculpting.gflownet.guidance.GuidedPolicy` of a composition's bases
    with their flow classifier: what ``twist="flows"`` runs twisted SMC on (``model``: a path
    composition or a classifier composition; its classifier, if any, is not used)."""
    if not hasattr(model, "bases") or not hasattr(model, "composition"):
        raise TypeError(f"twist='flows' samples a composition of bases, got {type(model).__name__}")
    bases = getattr(model, "source_bases", None) or model.bases  # an oracle composition keeps its bases' tables
    return GuidedPolicy(bases, FlowQ(bases, model.composition), "paper")
