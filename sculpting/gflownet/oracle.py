"""The oracle classifier of an enumerable environment, exact by dynamic programming.

The population optimum of the classifier training of docs/guidance.md is the *process* posterior

    Q(y_1 = i, y_2..y_n | s) = post_i(s) · E_i[ Π_{k≥2} p(y_k | x) | s ],
    post_i(s) = ω_i P_i(s) / Σ_j ω_j P_j(s),

with P_i(s) the probability that base i's trajectory visits s and E_i over base i's
completions from s; the terminal head's optimum is the true posterior p(y_k | x) computed
from the bases' exact terminal distributions. :class:`OracleQ` provides the same interface
as :class:`~sculpting.gflownet.classifier.ClassifierQ`, so guidance can be checked
independently of how well a classifier learned.
"""

from __future__ import annotations

import torch

from sculpting.algebra import Composition, observation_log_posteriors
from sculpting.gflownet.exact import log_expectation, log_visit_probs

__all__ = ["OracleQ"]


class OracleQ:
    def __init__(self, env, base_tables: torch.Tensor, composition: Composition):
        """``base_tables``: ``[m, N, A]`` log π_i of the bases on every state."""
        base_tables = base_tables.double()
        if base_tables.shape[0] != composition.n_bases:
            raise ValueError(f"{base_tables.shape[0]} base policies for a composition of {composition.n_bases}")
        self.env, self.space, self.composition = env, dict(env.space), composition
        self.n_bases = composition.n_bases
        c = composition
        log_w = c.log_priors(torch.float64, base_tables.device)
        log_visit = log_visit_probs(env, base_tables)  # [m, N]
        base_lp = log_visit + base_tables[..., env.stop_action]  # [m, N] terminal log p_i
        self.base_log_probs = base_lp
        post = log_visit + log_w[0][:, None]
        self.nt_first = (post - torch.logsumexp(post, 0, keepdim=True)).T.contiguous()  # [N, m]
        # states where no base can stop (e.g. unfinished fragment trees) have no terminal posterior
        ninf = -float("inf")
        self.t_first = torch.nan_to_num(observation_log_posteriors(base_lp, log_w[0]).T.contiguous(), nan=ninf)
        if c.n_observations == 0:
            self.nt_y = torch.zeros(env.n_states, dtype=torch.float64, device=base_tables.device)
            self.t_y = torch.zeros(env.n_states, dtype=torch.float64, device=base_tables.device)
            self.log_h = None
            return
        a = c.observations[0] - 1
        tail = torch.nan_to_num(
            c.observation_log_likelihood(base_lp, skip_first=True), nan=ninf
        )  # Σ_{k≥2} log p(y_k|x)
        self.log_h = log_expectation(env, base_tables[a], tail[:, None])[:, 0]  # E_a[Π p(y_k|x) | s]
        self.nt_y = self.nt_first[:, a] + self.log_h
        self.t_y = torch.nan_to_num(c.observation_log_likelihood(base_lp), nan=ninf)

    def nonterminal(self, states):
        i = self.env.index(states)
        return self.nt_first[i], self.nt_y[i]

    def terminal(self, states):
        i = self.env.index(states)
        return self.t_first[i], self.t_y[i]
