"""Amortised successor scoring for guided fragment GFlowNets (docs/molecules.md §10).

A guided policy needs the classifier at every successor s'_a = step(s, a) of a state; scoring
them one graph at a time costs one trunk pass per successor (hundreds per state). The
:class:`SuccessorHead` predicts, from **one** pass of the classifier's own trunk on the parent s,

* for every AddNode action a = (node u, fragment f): the class logits of the non-terminal joint
  log Q(y_1..y_n | s'_a), from [h_u, g(s), E_frag(f)];
* for every SetEdgeAttr action a = (edge k, stem slot c): the same, from [h_parent(k), h_k+1, g(s),
  E_slot(c)];
* for the stop action: the terminal head's m − 1 logits o at x = s, from g(s),

where h are the trunk's node embeddings and g(s) its graph embedding (``[2w]``) under the
non-terminal condition of the composition (logit α, β). Each is a three-layer MLP whose first
layer is split by input (W_1 [x; y; z] = W_x x + W_y y + W_z z, computed per node, per graph and
per fragment, then gathered), so the cost per action is two small matrix products. The logits
go through the classifier's own label model (:class:`~sculpting.labels.JointLabels`), so one head
serves every composition the classifier serves.

Fit it by distillation (:func:`fit_successor_head`): KL from the classifier's joint at the true
successors (and its terminal posterior at s) to the head's, over parent states drawn from the
bases, for a list of (α, β) conditions. Its use as an exact sampler's proposal is in
:mod:`sculpting.gflownet.amortised`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm

from sculpting.infrastructure.checkpoints import (
    CheckpointError,
    load_checkpoint,
    rebuild,
    save_checkpoint,
    state_digest,
)
from sculpting.domains.molecules.graph_transformer import featurize
from sculpting.domains.molecules.policy import thermometer
from sculpting.gflownet.rollout import sample_trajectories
from sculpting.infrastructure.training_scaffold import seeded_init

__all__ = ["SuccessorHead", "fit_successor_head", "successor_targets", "save_successor_head", "load_successor_head"]


class _SplitMLP(nn.Module):
    """MLP over [x_1; …; x_k] whose first layer is a sum of per-input linears."""

    def __init__(self, dims, hidden: int, out: int):
        super().__init__()
        self.first = nn.ModuleList(nn.Linear(d, hidden, bias=i == 0) for i, d in enumerate(dims))
        self.rest = nn.Sequential(nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, out))


class SuccessorHead(nn.Module):
    """Predicted classifier outputs at every successor of a state, from the parent's trunk pass.

    Args:
        classifier: a graph :class:`~sculpting.gflownet.classifier.SculptingClassifier` (its body a
            :class:`~sculpting.domains.molecules.classifier.GraphBody`); kept frozen, not a submodule.
        hidden: width of the MLPs.
    """

    def __init__(self, classifier, hidden: int = 64, *, seed: int | None = None):
        super().__init__()

        if not getattr(classifier, "custom_body", False) or not hasattr(classifier.body, "trunk"):
            raise ValueError("a SuccessorHead needs a graph classifier (make_graph_classifier)")
        self._classifier = [classifier]  # a list: not registered, its weights are not the head's
        env = classifier.env
        w = classifier.body.arch["width"]
        c = classifier.labels.n_classes
        self.arch = {"hidden": hidden}
        with seeded_init(seed):
            self.frag_emb = nn.Embedding(env.n_frags, w)
            self.slot_emb = nn.Embedding(12, w)
            self.add_mlp = _SplitMLP((w, 2 * w, w), hidden, c)
            self.set_mlp = _SplitMLP((w, w, 2 * w, w), hidden, c)
            self.stop_mlp = _SplitMLP((2 * w,), hidden, classifier.n_bases - 1)

    @property
    def classifier(self):
        return self._classifier[0]

    def _trunk(self, states, logit_alpha, context):
        clf = self.classifier
        col = clf._alpha_col(len(states), logit_alpha)
        ctx = clf._context_col(len(states), context)
        cond = col if col is not None else torch.zeros(len(states), 1, device=states.device)
        cond = cond if ctx is None else torch.cat([cond, ctx], dim=1)
        body = clf.body
        cond = cond.float()
        if body.beta_conditioned:
            cond = torch.cat([cond[:, :1], thermometer(cond[:, 1])], dim=1)
        g = featurize(clf.env, states)
        nodes, graph = body.trunk(g, cond)
        return g, nodes, graph

    def forward(self, states: torch.Tensor, logit_alpha=None, context=None, mask: torch.Tensor | None = None):
        """``states`` ``[B, S]`` → (rows ``[K]``, actions ``[K]``, log joint ``[K, m^n]`` at the K
        valid non-stop successors (row-major order of ``mask``), terminal log posterior ``[B, m]``
        at x = s (uniform prior)). ``mask`` defaults to ``env.action_mask(states)``."""
        env = self.classifier.env
        F, n_add = env.n_frags, env.n_add
        mask = env.action_mask(states) if mask is None else mask
        g, nodes, graph = self._trunk(states, logit_alpha, context)
        rows, acts = mask[:, : env.stop_action].nonzero(as_tuple=True)
        logits = torch.empty(len(rows), self.classifier.labels.n_classes, device=states.device)
        ni = g.node_index
        add = acts < n_add
        if add.any():
            r, a = rows[add], acts[add]
            u, f = a // F, a % F
            mlp = self.add_mlp
            pre = mlp.first[0](nodes)[ni[r, u]] + mlp.first[1](graph)[r] + mlp.first[2](self.frag_emb.weight)[f]
            logits[add] = mlp.rest(pre)
        st = ~add
        if st.any():
            r, a = rows[st], acts[st] - n_add
            k, c = a // 12, a % 12
            _, parent, _, _ = env.split(states)
            pu = ni[r, parent[r, k]]
            pv = ni[r, k + 1]
            mlp = self.set_mlp
            pre = (
                mlp.first[0](nodes)[pu]
                + mlp.first[1](nodes)[pv]
                + mlp.first[2](graph)[r]
                + mlp.first[3](self.slot_emb.weight)[c]
            )
            logits[st] = mlp.rest(pre)
        o = self.stop_mlp.rest(self.stop_mlp.first[0](graph))
        terminal = torch.log_softmax(torch.cat([torch.zeros_like(o[:, :1]), o], dim=1), dim=1)
        return rows, acts, self.classifier.labels(logits), terminal


@torch.no_grad()
def successor_targets(classifier, states: torch.Tensor, logit_alpha=None, context=None, chunk: int = 512):
    """The distillation targets at ``states``: (rows, actions, the classifier's log joint ``[K, m^n]``
    at the K valid non-stop successors, its terminal log posterior ``[B, m]`` at x = s)."""
    env = classifier.env
    mask = env.action_mask(states)
    rows, acts = mask[:, : env.stop_action].nonzero(as_tuple=True)
    kw = {} if context is None else {"context": context}
    joint = (
        torch.cat(
            [
                classifier.nonterminal_log_joint(
                    env.step(states[rows[i : i + chunk]], acts[i : i + chunk]), logit_alpha, **kw
                )
                for i in range(0, len(rows), chunk)
            ]
        )
        if len(rows)
        else None
    )
    return rows, acts, joint, classifier.terminal_log_posterior(states, **kw)


def _kl(target_log, pred_log):
    """Σ over rows of KL(target ‖ pred) (log-probabilities ``[K, C]``)."""
    p = target_log.exp()
    return (p * (target_log - pred_log)).nan_to_num().sum()


def fit_successor_head(
    classifier,
    bases,
    conditions,
    n_trajectories: int = 64,
    epochs: int = 30,
    batch_states: int = 64,
    lr: float = 2e-3,
    hidden: int = 64,
    seed: int = 0,
    progress: bool = True,
    holdout: float = 0.2,
):
    """Distil a :class:`SuccessorHead` from ``classifier``.

    Args:
        bases: β-conditional molecule GFlowNets whose trajectories give the parent states
            (``n_trajectories`` from each base at each condition's β).
        conditions: list of (α, β) the head is fitted for (α None for classifiers without α; β None
            for classifiers without context).
    Returns:
        (head, report) — report: mean KL per successor and per terminal on the held-out states
        (the last ``holdout`` fraction) per condition, and the sizes.
    """

    gen = torch.Generator().manual_seed(seed)
    head = SuccessorHead(classifier, hidden, seed=seed)
    data = []
    for alpha, beta in conditions:
        la = None if alpha is None else math.log(alpha / (1 - alpha))
        states = []
        for b in bases:
            tr = sample_trajectories(b.env, b.at_beta(beta if beta is not None else 32.0), n_trajectories, 0.0, gen)
            s = tr.states[:, :-1][tr.valid]
            states.append(s[b.env.action_mask(s)[:, : b.env.stop_action].any(1)])
        states = torch.cat(states)
        states = states[torch.randperm(len(states), generator=gen)]
        n_test = int(holdout * len(states))
        data.append((la, beta, states[n_test:], states[:n_test]))
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    classifier.requires_grad_(False)

    def loss_on(la, beta, s):
        rows, acts, joint, term = successor_targets(classifier, s, la, beta)
        p_rows, _, p_joint, p_term = head(s, la, beta)
        return _kl(joint, p_joint) / max(1, len(rows)), _kl(term, p_term) / len(s)

    try:
        bar = tqdm(range(epochs), desc="successor head", disable=not progress)
        cache = {}
        for _ in bar:
            for ci, (la, beta, train, _) in enumerate(data):
                perm = torch.randperm(len(train), generator=gen)
                for i in range(0, len(train), batch_states):
                    idx = perm[i : i + batch_states]
                    s = train[idx]
                    # targets are fixed: computed once per (condition, state)
                    tgt = _targets_for(cache, ci, train, idx, classifier, la, beta)
                    p_rows, _, p_joint, p_term = head(s, la, beta)
                    loss = _kl(tgt[0], p_joint) / max(1, len(p_rows)) + _kl(tgt[1], p_term) / len(s)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            bar.set_postfix(loss=float(loss.detach()))
    finally:
        classifier.requires_grad_(True)
    report = {
        "conditions": [list(c) for c in conditions],
        "kl_successor": [],
        "kl_terminal": [],
        "n_train_states": [len(d[2]) for d in data],
        "n_test_states": [len(d[3]) for d in data],
    }
    with torch.no_grad():
        for la, beta, _, test in data:
            ks, kt = loss_on(la, beta, test)
            report["kl_successor"].append(float(ks))
            report["kl_terminal"].append(float(kt))
    return head, report


def _targets_for(cache, ci, train, idx, classifier, la, beta):
    """Targets (joint rows in the head's row order, terminal) of ``train[idx]``, cached per state."""
    key = ci
    if key not in cache:
        cache[key] = {}
    store = cache[key]
    missing = [int(i) for i in idx if int(i) not in store]
    if missing:
        s = train[missing]
        rows, acts, joint, term = successor_targets(classifier, s, la, beta)
        for j, i in enumerate(missing):
            store[i] = (joint[rows == j], term[j])
    parts = [store[int(i)] for i in idx]
    return torch.cat([p[0] for p in parts]), torch.stack([p[1] for p in parts])


def _classifier_digest(classifier) -> str:
    return state_digest(classifier.state_dict(), "")


def save_successor_head(head: SuccessorHead, path, **meta):
    """Save ``head`` (float16) with the digest of the classifier it was distilled from."""

    return save_checkpoint(
        path,
        "successor_head",
        head.state_dict(),
        {"arch": head.arch, "classifier_digest": _classifier_digest(head.classifier), **meta},
        half=True,
    )


def load_successor_head(path, classifier) -> SuccessorHead:
    """The head at ``path`` bound to ``classifier``, which must be the one it was distilled from
    (same weights: the recorded digest is checked)."""

    sd, meta = load_checkpoint(path, "successor_head")
    if meta.get("classifier_digest") != _classifier_digest(classifier):
        raise CheckpointError(f"{path}: this successor head was distilled from another classifier")
    return rebuild(lambda: SuccessorHead(classifier, **meta["arch"]), sd, meta, path)
