"""Training time-conditioned classifiers on the base models' own reverse trajectories.

CPU recipe (a documented deviation from the reference, which draws fresh trajectories every
update): a **trajectory pool** is drawn once per base (``pool_size`` PC trajectories of
``pool_steps`` steps, every ``keep_every``-th noisy state kept) and reused for all updates.
Per update, for each base i, ``batch`` pool trajectories:

    L_terminal    = − mean log Q(y_1 = i | x_ε, ε)                      (the y_1 marginal)
    L_nonterminal = − mean over kept states with t ≤ t_max of
                    Σ_{y_2..y_n} Π_{k≥2} Q̄(y_k | x_0) log Q(y_1 = i, y_2..y_n | x_t, t)

Q̄ is a frozen copy refreshed every ``refresh_every`` updates; slot 2 of the α-model has the prior
(α, 1 − α) with logit α ~ U[−r, r] per sample; the first ``terminal_only`` updates use L_terminal
alone. The classifier is in eval mode (no dropout) when it serves as target or guidance.

``noising="forward"``: the non-terminal states are not the pool's reverse-trajectory states but
fresh x_t = m_t x_0 + σ_t z (t ~ U(ε, t_max), the bases' SDE) of the pool's samples x_0, drawn anew
every update — far more (x_t, t) pairs than a pool holds, each with the same target Q̄(· | x_0).
It needs the samples only, so ``pool_sampler="edm"`` draws them with the EDM sampler (``pool_steps``
steps, 2·steps − 1 score calls per sample instead of 2·steps for PC): a pool several times larger
for the same cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from sculpting.labels import slot_tail_weights
from sculpting.diffusion.samplers import edm_sample, pc_sample
from sculpting.infrastructure.distributed import broadcast_module, is_main, local_batch, rank_seed
from sculpting.infrastructure.fingerprint import base_fingerprints, describe
from sculpting.infrastructure.training_scaffold import (
    Resumable,
    TrainConfig,
    frozen_copy,
    keeps_global_rng,
    optimiser_step,
    seeded,
)
from sculpting.infrastructure.training_scaffold import progress as progress_bar

__all__ = ["DiffusionClassifierConfig", "TrajectoryPool", "draw_pool", "train_time_classifier"]


@dataclass
class DiffusionClassifierConfig(TrainConfig):
    pool_size: int = 512
    pool_steps: int = 200
    keep_every: int = 2
    updates: int = 800
    batch: int = 64
    lr: float = 1e-3
    refresh_every: int = 50
    terminal_only: int = 100
    t_max: float = 0.7
    logit_alpha_range: float = 3.5
    noising: str = "pool"  # "pool": the pool's reverse-trajectory states; "forward": x_t = m_t x_0 + σ_t z, fresh
    pool_sampler: str = "pc"  # "pc": trajectories of pool_steps PC steps; "edm": samples only (noising="forward")
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.noising not in ("pool", "forward"):
            raise ValueError(f"noising must be 'pool' or 'forward', got {self.noising!r}")
        if self.pool_sampler not in ("pc", "edm"):
            raise ValueError(f"pool_sampler must be 'pc' or 'edm', got {self.pool_sampler!r}")
        if self.pool_sampler == "edm" and self.noising != "forward":
            raise ValueError("pool_sampler='edm' keeps samples only: it needs noising='forward'")


@dataclass
class TrajectoryPool:
    states: torch.Tensor  # [K, P, *shape] noisy states (the last is the sample x_ε)
    times: torch.Tensor  # [K]


@torch.no_grad()
def draw_pool(model, config: DiffusionClassifierConfig, generator=None, progress: bool = False) -> TrajectoryPool:
    """``pool_size`` draws of ``model``: PC trajectories (every ``keep_every``-th state), or with
    ``pool_sampler="edm"`` the samples alone (``states`` ``[1, P, ...]``, time ε) by the EDM sampler
    in ``pool_steps`` steps."""
    if config.pool_sampler == "edm":
        x = edm_sample(model, config.pool_size, config.pool_steps, generator=generator, progress=progress)
        return TrajectoryPool(x[None], torch.tensor([model.sde.eps], device=x.device))
    _, (states, times) = pc_sample(
        model, config.pool_size, config.pool_steps, generator=generator, keep_every=config.keep_every, progress=progress
    )
    return TrajectoryPool(states, times)


def _pool_batch(pools, batch: int, t_max: float, gen, dev, states: bool = True):
    """``batch`` pool trajectories per base: their samples x_0, one kept state x_t (t ≤ t_max, not
    the last) and its time, the base's label, and the sample time ε of each (``states=False``:
    x_t = x_0 and t = ε, for forward noising)."""
    x0s, xts, tts, labels, eps = [], [], [], [], []
    for i, pool in enumerate(pools):
        K, P = pool.states.shape[:2]
        j = torch.randint(P, (batch,), generator=gen, device=dev)
        x0s.append(pool.states[-1, j])
        labels.append(torch.full((batch,), i, device=dev))
        eps.append(pool.times[-1].expand(batch))
        if not states:
            xts.append(x0s[-1])
            tts.append(eps[-1])
            continue
        eligible = torch.nonzero((pool.times <= t_max) & (torch.arange(K, device=dev) < K - 1)).flatten()
        k = eligible[torch.randint(len(eligible), (batch,), generator=gen, device=dev)]
        xts.append(pool.states[k, j])
        tts.append(pool.times[k])
    return tuple(torch.cat(v) for v in (x0s, xts, tts, labels, eps))


def _forward_noise(sde, x0, t_max: float, gen):
    """x_t = m_t x_0 + σ_t z with t ~ U(ε, t_max): fresh noisy states of the bases' own samples."""
    dev = x0.device
    t = sde.eps + (t_max - sde.eps) * torch.rand(len(x0), generator=gen, device=dev)
    shape = (-1, *[1] * (x0.dim() - 1))
    z = torch.randn(x0.shape, generator=gen, device=dev)
    return sde.mean_coef(t).to(x0).reshape(shape) * x0 + sde.marginal_std(t).to(x0).reshape(shape) * z, t


def _check_pools(classifier, pools, bases) -> None:
    """One pool (and one base, if given) per base of ``classifier``, of its image shape."""
    m = classifier.n_bases
    if len(pools) != m:
        raise ValueError(f"classifier is for {m} bases, got {len(pools)} pools")
    for p in pools:
        if tuple(p.states.shape[2:]) != tuple(classifier.image_shape):
            raise ValueError(f"pool images {tuple(p.states.shape[2:])} ≠ classifier {classifier.image_shape}")
    if bases is not None and len(bases) != m:
        raise ValueError(f"classifier is for {m} bases, got {len(bases)}")


def _losses(classifier, frozen, pools, config, batch: int, gen, with_nonterminal: bool):
    """(terminal, non-terminal) loss on one batch drawn from the pools.

    Terminal: −E log Q(first = b | x₀) at the pool's own labels b. Non-terminal (after the
    terminal-only warm-up, else 0): −E Σ_{b, tail} w(b, tail) log Q(b, tail | x_t, t), the tail
    slots' weights w read from the frozen copy's terminal head at x₀ (``slot_tail_weights``)."""
    dev, m, n = next(classifier.parameters()).device, classifier.n_bases, classifier.n_slots
    x0, xt, tt, lab, eps = _pool_batch(pools, batch, config.t_max, gen, dev, states=config.noising == "pool")
    if config.noising == "forward":  # fresh (x_t, t) from the forward SDE at the pool's samples
        xt, tt = _forward_noise(classifier.sde, x0, config.t_max, gen)
    la = (torch.rand(len(x0), generator=gen, device=dev) * 2 - 1) * config.logit_alpha_range
    la_in = la if classifier.alpha_conditioned else None
    rows = torch.arange(len(x0), device=dev)
    l_term = -classifier.log_first(x0, eps, la_in)[rows, lab].mean()
    if not with_nonterminal:
        return l_term, torch.zeros((), device=dev)
    with torch.no_grad():
        la_frozen = la if frozen.alpha_conditioned else None
        tail = slot_tail_weights(frozen.log_first(x0, eps, la_frozen), la, n, frozen.alpha_conditioned)
    w = torch.zeros(len(x0), m, tail.shape[1], device=dev)
    w[rows, lab] = tail
    return l_term, -(w.reshape(len(x0), -1) * classifier.log_joint(xt, tt, la_in)).sum(1).mean()


@keeps_global_rng
def train_time_classifier(
    classifier,
    pools,
    config: DiffusionClassifierConfig,
    progress: bool = True,
    desc: str = "classifier",
    checkpoint_path=None,
    checkpoint_every: int = 100,
    bases=None,
):
    """Train ``classifier`` on the trajectory ``pools`` (one per base); ``checkpoint_path``:
    resumable training (:class:`~sculpting.infrastructure.training_scaffold.Resumable`;
    the pools are not saved: pass the same).
    ``bases``: the models the pools were drawn from; the classifier records their fingerprints
    (``sc.compose`` then refuses other bases)."""
    _check_pools(classifier, pools, bases)
    dev = next(classifier.parameters()).device
    gen = seeded(rank_seed(config.seed), dev)
    broadcast_module(classifier)
    progress = progress and is_main()
    opt = torch.optim.Adam(classifier.parameters(), lr=config.lr)
    frozen = frozen_copy(classifier).eval()
    B = local_batch(config.batch)
    hist = {"loss_terminal": [], "loss_nonterminal": []}
    if bases is not None:
        classifier.base_fingerprints = base_fingerprints(bases)
    resume = Resumable(
        checkpoint_path,
        checkpoint_every,
        {"kind": "time_classifier", **config.to_dict()},
        {"classifier": classifier, "frozen": frozen, "opt": opt},
        gen,
        what={
            "classifier": describe(classifier),
            "pools": describe([p.states for p in pools]),
            "bases": None if bases is None else base_fingerprints(bases),
        }
        if checkpoint_path is not None
        else None,
    )
    start = resume.start(hist)
    t0 = time.perf_counter() - hist.get("train_time_s", 0.0)
    for u in progress_bar(config.updates, desc, progress, mininterval=1.0, start=start):
        classifier.train()
        l_term, l_nt = _losses(classifier, frozen, pools, config, B, gen, with_nonterminal=u > config.terminal_only)
        optimiser_step(opt, l_term + l_nt, classifier, clip_norm=10.0)
        hist["loss_terminal"].append(l_term.item())
        hist["loss_nonterminal"].append(l_nt.item())
        if u % config.refresh_every == 0:
            frozen.load_state_dict(classifier.state_dict())
        hist["train_time_s"] = time.perf_counter() - t0
        resume.save(u, hist)
    resume.save(config.updates, hist, force=True)
    classifier.eval()
    hist["train_time_s"] = time.perf_counter() - t0
    return hist
