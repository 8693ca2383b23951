"""Training of sculpting classifiers from base GFlowNets' own trajectories (docs/guidance.md).

Per step, every base i samples ``batch_per_base`` trajectories with its own policy (no
exploration). With x_τ the terminal object of a trajectory of base i:

    L_terminal    = − mean_τ log p(y = i | x_τ)
    L_nonterminal = − mean over visited s of  Σ_{y_2..y_n} Π_{k≥2} Q̄(y_k | x_τ) · log Q(y_1 = i, y_2..y_n | s)
    L = L_terminal + min(1, step / warmup) · L_nonterminal
(``nonterminal_norm="trajectories"``: the sum over visited states divided by the number of
trajectories instead, as the molecule reference does, docs/molecules.md §9.)

Q̄ is an EMA copy of the classifier (decay 0.995); for α-models logit α ~ U[−r, r] per
trajectory sets slot 2's prior (α, 1 − α) in Q̄ and is the network's α input.

Context-conditioned classifiers (a family of bases indexed by a scalar, e.g. β-conditional
GFlowNets): each step splits every base's trajectories into ``context_groups`` groups, draws one
context value c ~ ``context.sample`` per group, samples the group with ``context.bind(base, c)``
and feeds c to the classifier (and to Q̄ for the targets) for those trajectories.

On an enumerable environment, trajectories are split into ``alpha_groups`` groups that share
one α, and the non-terminal loss is aggregated per (group, state): the classifier runs once on
all N states per group instead of once per visit (same loss value, far fewer network rows).

``estimator="exact"`` (enumerable environments): the *expected* losses over the bases'
trajectories, computed by dynamic programming instead of sampled — with P_i(s) the probability
that base i visits s and E_i[· | s] over base i's completions from s,

    L_terminal    = − (1/m) Σ_i Σ_x p_i(x) log p(y = i | x)
    L_nonterminal = − Σ_i Σ_s P_i(s) Σ_tails E_i[Π_{k≥2} Q̄(y_k | x) | s] log Q(y_1 = i, tails | s) / Σ_i Σ_s P_i(s)

(the limits of the sampled losses as the batch grows; α still drawn, ``alpha_groups`` values per
step). Each step costs one classifier pass on all N states per α group and one DP sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from sculpting.labels import slot_tail_weights
from sculpting.infrastructure.distributed import broadcast_module, is_main, local_batch, rank_seed
from sculpting.infrastructure.fingerprint import base_fingerprints, describe
from sculpting.gflownet.exact import log_expectation, log_visit_probs
from sculpting.gflownet.policy import policy_table
from sculpting.gflownet.rollout import sample_trajectories, sample_trajectories_tabular
from sculpting.protocols import is_enumerable
from sculpting.infrastructure.training_scaffold import (
    Resumable,
    TrainConfig,
    ema_update,
    frozen_copy,
    keeps_global_rng,
    optimiser_step,
    seeded,
)
from sculpting.infrastructure.training_scaffold import progress as progress_bar

__all__ = ["ClassifierTrainConfig", "train_classifier"]


@dataclass
class ClassifierTrainConfig(TrainConfig):
    steps: int = 15000
    batch_per_base: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    ema_decay: float = 0.995
    warmup_steps: int = 3000
    logit_alpha_range: float = 3.5
    alpha_groups: int = 2
    lr_schedule: str = "cosine"  # "constant" or "cosine" (decay to 0 over ``steps``)
    final_weights: str = "last"  # "last" or "ema": which weights the classifier keeps at the end
    fast_path: bool = True  # on enumerable envs: tabular sampling + per-state aggregation
    nonterminal_norm: str = "states"  # divide the non-terminal sum by #visited states or by #trajectories
    estimator: str = "sampled"  # "sampled" trajectories, or "exact" expected losses by DP (enumerable envs)
    context_groups: int = 2  # context-conditioned classifiers: context values per base per step
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 0 or self.batch_per_base < 1 or self.lr <= 0 or self.alpha_groups < 1:
            raise ValueError(f"invalid classifier training config {self}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.nonterminal_norm not in ("states", "trajectories"):
            raise ValueError(f"nonterminal_norm must be 'states' or 'trajectories', got {self.nonterminal_norm!r}")
        if self.estimator not in ("sampled", "exact"):
            raise ValueError(f"estimator must be 'sampled' or 'exact', got {self.estimator!r}")
        if self.lr_schedule not in ("constant", "cosine") or self.final_weights not in ("last", "ema"):
            raise ValueError(f"unknown lr_schedule / final_weights in {self}")


def _check(classifier, bases):
    if len(bases) != classifier.n_bases:
        raise ValueError(f"classifier is for {classifier.n_bases} bases, got {len(bases)}")
    for b in bases:
        if b.env.space != classifier.space:
            raise ValueError(f"base on {b.env.space} but classifier on {classifier.space}")


@torch.no_grad()
def _draw_trajectories(env, bases, tables, B, gen, context, groups):
    """Per base, B trajectories (in ``groups`` context groups when ``context`` is given) →
    (list of m trajectory batches, ``[m·B]`` context values or None)."""
    if context is None:
        return [
            sample_trajectories_tabular(env, tables[i], B, 0.0, gen)
            if tables is not None
            else sample_trajectories(env, bases[i], B, 0.0, gen)
            for i in range(len(bases))
        ], None
    sizes = [B // groups + (g < B % groups) for g in range(groups)]
    trajs, values = [], []
    for base in bases:
        parts = []
        for n in filter(None, sizes):
            c = float(context.sample(gen))
            parts.append(sample_trajectories(env, context.bind(base, c), n, 0.0, gen))
            values += [c] * n
        trajs += parts
    return trajs, torch.tensor(values, device=trajs[0].states.device)


def _padded(tensors, fill=None):
    """Concatenate ``[n_i, T_i, ...]`` along 0, padding T to the longest (with ``fill``, or by
    repeating the last entry)."""
    T = max(t.shape[1] for t in tensors)
    out = []
    for t in tensors:
        if t.shape[1] < T:
            pad = (
                t[:, -1:].expand(-1, T - t.shape[1], *t.shape[2:])
                if fill is None
                else torch.full((t.shape[0], T - t.shape[1], *t.shape[2:]), fill, dtype=t.dtype, device=t.device)
            )
            t = torch.cat([t, pad], dim=1)
        out.append(t)
    return torch.cat(out)


def _draw_batch(env, bases, tables, config: ClassifierTrainConfig, gen, context=None):
    """B trajectories per base (tables: the enumerable fast path) → a dict of tensors: labels,
    terminal, states ``[M, T, *S]`` (every state where an action was taken), valid ``[M, T]``,
    logit_alpha ``[M]``, on the fast path the α group of each trajectory, and with ``context``
    the context value of each trajectory."""
    m, B, r = len(bases), local_batch(config.batch_per_base), config.logit_alpha_range
    trajs, ctx = _draw_trajectories(env, bases, tables, B, gen, context, config.context_groups)
    dev = trajs[0].states.device
    d = {
        "labels": torch.arange(m, device=dev).repeat_interleave(B),
        "terminal": torch.cat([t.terminal for t in trajs]),
        "states": _padded([t.states[:, :-1] for t in trajs]),
        "valid": _padded([t.valid for t in trajs], False),
    }
    if ctx is not None:
        d["context"] = ctx
    if tables is not None:
        d["group"] = torch.arange(m * B, device=dev) % config.alpha_groups
        d["group_alpha"] = (torch.rand(config.alpha_groups, generator=gen, device=gen.device).to(dev) * 2 - 1) * r
        d["logit_alpha"] = d["group_alpha"][d["group"]]
        return d
    d["logit_alpha"] = (torch.rand(m * B, generator=gen, device=gen.device).to(dev) * 2 - 1) * r
    if hasattr(env, "is_valid_terminal"):  # drop invalid objects (molecules that fail to sanitise)
        keep = env.is_valid_terminal(d["terminal"])
        d = {k: v[keep] for k, v in d.items()}
    return d


def _nonterminal_loss(classifier, env, d, tail, config: ClassifierTrainConfig, all_states):
    """− Σ_states Σ_tails Π_{k≥2} Q̄(y_k | x_τ) log Q(y_1 = i, tail | s) / norm. On the enumerable
    fast path the weights of repeated (α group, state) pairs are summed first (one row each)."""
    m, valid, labels = classifier.n_bases, d["valid"], d["labels"]
    n_traj = len(labels)
    dev = valid.device
    traj_id = torch.arange(n_traj, device=dev)[:, None].expand_as(valid)[valid]
    norm = n_traj if config.nonterminal_norm == "trajectories" else len(traj_id)
    vis = d["states"][valid]
    w = torch.zeros(len(vis), m, tail.shape[1], device=dev)
    w[torch.arange(len(vis), device=dev), labels[traj_id]] = tail[traj_id]
    alpha = classifier.alpha_conditioned
    if "group" not in d:
        ctx = {"context": d["context"][traj_id]} if "context" in d else {}
        log_q = classifier.nonterminal_log_joint(vis, d["logit_alpha"][traj_id] if alpha else None, **ctx)
        return -(w.reshape(len(vis), -1) * log_q).sum() / norm
    key = d["group"][traj_id] * env.n_states + env.index(vis)
    W = torch.zeros(config.alpha_groups * env.n_states, m * tail.shape[1], device=dev)
    W.index_add_(0, key, w.reshape(len(vis), -1))
    rows = W.sum(1) > 0
    g_of_row = torch.arange(config.alpha_groups, device=dev).repeat_interleave(env.n_states)[rows]
    row_states = all_states.repeat(config.alpha_groups, 1)[rows]
    log_q = classifier.nonterminal_log_joint(row_states, d["group_alpha"][g_of_row] if alpha else None)
    return -(W[rows] * log_q).sum() / norm


def _sampled_losses(classifier, ema, env, bases, tables, config, gen, all_states, context=None):
    """(L_terminal, L_nonterminal) on a freshly sampled batch; None if it holds no valid object."""
    d = _draw_batch(env, bases, tables, config, gen, context)
    n_traj = len(d["labels"])
    if n_traj == 0:
        return None
    ctx = {"context": d["context"]} if "context" in d else {}
    with torch.no_grad():
        tail = slot_tail_weights(
            ema.terminal_log_posterior(d["terminal"], **ctx),
            d["logit_alpha"],
            classifier.n_slots,
            ema.alpha_conditioned,
        )
    l_term = -classifier.terminal_log_posterior(d["terminal"], **ctx)[
        torch.arange(n_traj, device=d["labels"].device), d["labels"]
    ].mean()
    return l_term, _nonterminal_loss(classifier, env, d, tail, config, all_states)


class _ExactLosses:
    """The expected losses of the module docstring on an enumerable environment."""

    def __init__(self, classifier, env, tables):
        self.env, self.states = env, env.all_states()
        self.tables = torch.stack(tables)  # [m, N, A]
        self.log_visit = log_visit_probs(env, self.tables)  # [m, N]
        self.p_term = (self.log_visit + self.tables[..., env.stop_action]).exp().float()  # [m, N]
        self.norm = float(self.log_visit.exp().sum())

    def __call__(self, classifier, ema, config, gen):
        m, n, N = classifier.n_bases, classifier.n_slots, len(self.states)
        dev, r = self.states.device, config.logit_alpha_range
        g = config.alpha_groups if classifier.alpha_conditioned else 1
        la = (torch.rand(g, generator=gen, device=gen.device).to(dev) * 2 - 1) * r
        with torch.no_grad():
            post = ema.terminal_log_posterior(self.states)  # [N, m]
            tails = torch.stack(
                [slot_tail_weights(post, la[j].expand(N), n, ema.alpha_conditioned) for j in range(g)]
            )  # [g, N, K]
            log_e = log_expectation(self.env, self.tables[:, None], tails.double().clamp_min(1e-300).log()[None])
            w = (self.log_visit[:, None, :, None] + log_e).exp().float()  # [m, g, N, K]
        rows = self.states.repeat(g, *[1] * (self.states.dim() - 1))
        log_q = classifier.nonterminal_log_joint(
            rows, la.repeat_interleave(N) if classifier.alpha_conditioned else None
        )
        log_q = log_q.reshape(g, N, m, -1).permute(2, 0, 1, 3)  # [m, g, N, K]
        l_nt = -(w * log_q).sum() / (g * self.norm)
        l_term = -(self.p_term * classifier.terminal_log_posterior(self.states).T).sum() / m
        return l_term, l_nt


def _loss_estimator(classifier, bases, config: ClassifierTrainConfig, context):
    """``losses(ema, generator) → (terminal, non-terminal) loss`` (or None for a batch without a
    valid trajectory): the exact expected losses by DP (``estimator="exact"``, enumerable
    environments) or the sampled ones (with the bases' policy tables where the environment is
    enumerable and ``fast_path`` is on)."""
    env = classifier.env
    if context is not None and config.estimator == "exact":
        raise ValueError("estimator='exact' does not support context-conditioned classifiers")
    enumerable = is_enumerable(env) and config.fast_path and context is None
    tables = [policy_table(env, b) for b in bases] if enumerable else None
    if config.estimator == "exact":
        if not is_enumerable(env):
            raise ValueError("estimator='exact' needs an enumerable environment")
        exact = _ExactLosses(classifier, env, tables if tables is not None else [policy_table(env, b) for b in bases])
        return lambda ema, gen: exact(classifier, ema, config, gen)
    all_states = env.all_states() if enumerable else None
    return lambda ema, gen: _sampled_losses(classifier, ema, env, bases, tables, config, gen, all_states, context)


@keeps_global_rng
def train_classifier(
    classifier,
    bases,
    config: ClassifierTrainConfig,
    progress: bool = True,
    callback=None,
    callback_every: int = 0,
    desc: str = "classifier",
    checkpoint_path=None,
    checkpoint_every: int = 100,
    context=None,
):
    """Train ``classifier`` in place on samples of the frozen ``bases``; returns a history dict.

    ``context``: for a context-conditioned classifier of conditional bases, an object with
    ``sample(generator) → float`` (a context value) and ``bind(base, value) → policy`` (the base
    at that value), e.g. :class:`sculpting.domains.molecules.classifier.BetaRange`.

    ``callback(step, classifier)`` → dict of numbers, called every ``callback_every`` steps.
    ``checkpoint_path``: resumable training (:class:`sculpting.infrastructure.training_scaffold.Resumable`).
    """
    _check(classifier, bases)
    if bool(getattr(classifier, "context_conditioned", False)) != (context is not None):
        raise ValueError("a context-conditioned classifier needs context= (and only it takes one)")
    gen = seeded(rank_seed(config.seed), next(classifier.parameters()).device)
    broadcast_module(classifier)
    progress = progress and is_main()
    losses_of = _loss_estimator(classifier, bases, config, context)
    ema = frozen_copy(classifier)
    opt = torch.optim.Adam(classifier.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, config.steps))
        if config.lr_schedule == "cosine"
        else None
    )
    hist = {"step": [], "loss": [], "loss_terminal": [], "loss_nonterminal": [], "callback": []}
    objects = {"classifier": classifier, "ema": ema, "opt": opt, **({"sched": sched} if sched is not None else {})}

    classifier.base_fingerprints = base_fingerprints(bases)
    resume = Resumable(
        checkpoint_path,
        checkpoint_every,
        {"kind": "classifier", **config.to_dict()},
        objects,
        gen,
        what={
            "classifier": describe(classifier),
            "bases": classifier.base_fingerprints,
            "context": None if context is None else describe(context),
        }
        if checkpoint_path is not None
        else None,
    )
    start = resume.start(hist)
    t0 = time.perf_counter()
    bar = progress_bar(config.steps, desc, progress, start=start)
    for step in bar:
        losses = losses_of(ema, gen)
        if losses is None:  # no valid trajectory in this batch
            resume.save(step, hist)
            continue
        l_term, l_nt = losses
        weight = min(1.0, step / config.warmup_steps) if config.warmup_steps else 1.0
        loss = l_term + weight * l_nt
        optimiser_step(opt, loss, classifier, sched)
        ema_update(ema, classifier, config.ema_decay)
        for k, v in zip(
            ("step", "loss", "loss_terminal", "loss_nonterminal"), (step, loss.item(), l_term.item(), l_nt.item())
        ):
            hist[k].append(v)
        if step % 50 == 0:
            bar.set_postfix(term=f"{l_term.item():.3f}", nonterm=f"{l_nt.item():.3f}")
        if callback is not None and callback_every and (step % callback_every == 0 or step == config.steps):
            hist["callback"].append({"step": step, **callback(step, classifier)})
        resume.save(step, hist)
    resume.save(config.steps, hist, force=True)
    if config.final_weights == "ema":
        classifier.load_state_dict(ema.state_dict())
    hist["wall_time_s"] = time.perf_counter() - t0
    return hist
