"""Distilling a time classifier from the data oracle.

Where the bases were trained on finite sets, :class:`~sculpting.diffusion.oracle.DataOracle` is
the exact classifier. A learned classifier can be trained to match it: draw a base i uniformly
(the prior of y_1), an image x_0 of its set (weights W[i]), a time t ~ U(ε, t_max) and a logit α,
noise x_t = m_t x_0 + σ_t z, and minimise

    KL( Q_oracle(· | x_t, t, α) ‖ Q_θ(· | x_t, t, α) )   over the joint labels (y_1, .., y_n),

soft targets that carry every label tuple's posterior, not one sampled label. The distilled
classifier keeps the learned one's interface and speed (one small CNN pass) and inherits the
oracle's accuracy on the region the sampler visits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from sculpting.infrastructure.training_scaffold import TrainConfig, keeps_global_rng, seeded
from sculpting.infrastructure.training_scaffold import progress as progress_bar

__all__ = ["DistillConfig", "distill_time_classifier"]


@dataclass
class DistillConfig(TrainConfig):
    updates: int = 2000
    batch: int = 64
    lr: float = 5e-4
    t_max: float = 1.0
    logit_alpha_range: float = 3.5
    alpha_groups: int = 4  # distinct logit α per batch (the oracle takes one α per call)
    dropout: bool = False  # keep the classifier's dropout active (off: soft targets need no such noise,
    #                        and with it the three-base classifier's fit plateaued, docs/mnist.md)
    seed: int = 0


@keeps_global_rng
def distill_time_classifier(
    classifier, oracle, config: DistillConfig, progress: bool = True, desc: str = "distill"
) -> dict:
    """Train ``classifier`` (in place; e.g. a learned one, as the starting point) towards ``oracle``;
    returns ``{"kl": [...], "train_time_s"}``. The classifier ends in eval mode."""
    if (classifier.n_bases, classifier.n_slots) != (oracle.n_bases, oracle.n_slots):
        raise ValueError(
            f"classifier is ({classifier.n_bases} bases, {classifier.n_slots} slots), the oracle "
            f"({oracle.n_bases}, {oracle.n_slots})"
        )
    if tuple(classifier.image_shape) != tuple(oracle.image_shape):
        raise ValueError(f"classifier images {classifier.image_shape} ≠ oracle {oracle.image_shape}")
    dev = next(classifier.parameters()).device
    gen = seeded(config.seed, dev)
    sde = oracle.sde
    images = oracle.images.to(dev, torch.float32).reshape(-1, *oracle.image_shape)
    W = oracle.W.to(dev, torch.float64)
    opt = torch.optim.Adam(classifier.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, config.updates))
    G = config.alpha_groups if classifier.alpha_conditioned else 1
    per = max(1, config.batch // G)
    hist, t0 = {"kl": []}, time.perf_counter()
    classifier.train(config.dropout)  # eval mode: dropout off, the weights still train
    for _ in progress_bar(config.updates, desc, progress):
        loss = 0.0
        for _g in range(G):
            base = torch.randint(oracle.n_bases, (per,), generator=gen, device=dev)
            k = torch.multinomial(W[base], 1, generator=gen).squeeze(1)
            x0 = images[k]
            t = sde.eps + (config.t_max - sde.eps) * torch.rand(per, generator=gen, device=dev)
            shape = (-1, *[1] * (x0.dim() - 1))
            xt = sde.mean_coef(t).to(x0).reshape(shape) * x0 + sde.marginal_std(t).to(x0).reshape(shape) * torch.randn(
                x0.shape, generator=gen, device=dev
            )
            la = None
            if classifier.alpha_conditioned:
                la = float((2 * torch.rand((), generator=gen, device=dev) - 1) * config.logit_alpha_range)
            with torch.no_grad():
                target = oracle.log_joint(xt, t, la)
            q = classifier.log_joint(xt, t, la)
            p = target.exp()
            loss = loss + (p * (target - q)).sum(1).mean() / G
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        hist["kl"].append(float(loss.detach()))
    classifier.eval()
    hist["train_time_s"] = time.perf_counter() - t0
    return hist
