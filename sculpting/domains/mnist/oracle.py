"""The colored-MNIST data oracle and the decomposition of a composition's γ = 1 error.

The base sets are finite (:func:`~sculpting.domains.mnist.data.make_base_set`) and a type shared by
two bases holds the same images in both, so the exact time classifier of every composition is known
(:class:`sculpting.diffusion.oracle.DataOracle`). Sampling one composition three ways separates the
error of the classifier from that of the bases:

* **learned**: the shipped bases and the shipped (learned) classifier;
* **oracle**: the same bases, guided by the data oracle (the classifier's error removed);
* **data**: the oracle with the empirical scores of the data sets as bases (both removed: what is
  left is the sampler's discretisation and the judge's own error).

``classifier_deviation`` measures the learned classifier against the oracle along sampled
trajectories (forward-noised samples of the composition): mean |ΔQ(y | x_t)| per time bucket.
"""

from __future__ import annotations

import torch

from sculpting.algebra import parse_composition
from sculpting.compose import compose, sample
from sculpting.diffusion.classifier import DiffusionQ
from sculpting.diffusion.distill import DistillConfig, distill_time_classifier
from sculpting.diffusion.oracle import DataOracle
from sculpting.domains.mnist.data import load_mnist, make_base_set
from sculpting.domains.mnist.experiments import (
    CLASSIFIER_SETS,
    COMPOSITIONS,
    NESTED,
    composition_model,
    exact_masses,
    judge_samples,
    support_of,
    train_classifier_set,
)
from sculpting.domains.mnist.types import binomial_se
from sculpting.families import fitting_batch
from sculpting.infrastructure.workers import fork_map, resolve_workers

__all__ = [
    "set_data_oracle",
    "nested_data_oracle",
    "oracle_classifiers",
    "decompose",
    "classifier_deviation",
    "fit_classifier_sets",
]


def set_data_oracle(set_name: str, sde, digits=None, image_size: int = 16) -> DataOracle:
    """The data oracle of a classifier set (``M1_M2``: α-conditioned, ``MN``: three slots)."""
    if set_name not in CLASSIFIER_SETS:
        raise ValueError(f"unknown classifier set {set_name!r}; choose from {sorted(CLASSIFIER_SETS)}")
    digits = digits if digits is not None else load_mnist()
    sets = [make_base_set(n, digits, image_size)[0] for n in CLASSIFIER_SETS[set_name]]
    return DataOracle(sets, sde)


def nested_data_oracle(mn_oracle: DataOracle) -> DataOracle:
    """The oracle of the nested composition's bases [(MN y=12), MN3]: the inner composition of
    data-set bases is a weighted set of the same images (its exact law), MN3 its own set."""
    inner = parse_composition(NESTED["inner"], 3).target_log_prob(mn_oracle.log_W.double()).exp()
    W = torch.stack([inner / inner.sum(), mn_oracle.W[2].double()])
    images = mn_oracle.images.reshape(-1, *mn_oracle.image_shape)
    return DataOracle.from_weights(images, W, mn_oracle.sde)


def oracle_classifiers(models: dict, digits=None, image_size: int | None = None) -> dict:
    """``{"M1_M2", "MN", "nested"}`` → data oracles for the models' bases (their SDE and image size)."""
    bases = models["bases"]
    size = image_size or bases["M1"].image_shape[-1]
    sde = bases["M1"].sde
    digits = digits if digits is not None else load_mnist()
    out = {s: set_data_oracle(s, sde, digits, size) for s in CLASSIFIER_SETS}
    out["nested"] = nested_data_oracle(out["MN"])
    return out


def _composed(bases, classifiers, oracles, comp: str, which: str, alpha: float):
    """The composition ``comp`` with the learned classifier, the oracle, or the oracle on the data."""
    if which == "learned":
        return composition_model(bases, classifiers, comp, alpha)
    if which == "oracle":
        return composition_model(bases, oracles, comp, alpha)
    if comp == NESTED["name"]:
        return compose(oracles["nested"].empirical_scores(), oracles["nested"], "contrast")
    set_name, op, _ = COMPOSITIONS[comp]
    return compose(oracles[set_name].empirical_scores(), oracles[set_name], op, alpha=alpha)


def decompose(
    models: dict,
    oracles: dict,
    n: int = 256,
    seed: int = 0,
    steps: int = 50,
    sampler: str = "edm",
    alpha: float = 0.5,
    names=None,
    progress: bool = False,
    which=("learned", "oracle", "data"),
    known: dict | None = None,
    workers: int | str = 1,
) -> list[dict]:
    """One row per composition: γ = 1 TV to the exact type masses and the support rate (± binomial
    s.e.) with the learned classifier, with the oracle on the same bases, and with the oracle on the
    data itself. ``known``: {composition: judged verdict} of samples already drawn with the learned
    classifier (same n, seed and sampler), used instead of drawing them again. ``workers`` > 1
    draws that many sample sets at a time in forked processes (same samples as one at a time)."""

    workers = resolve_workers(workers)

    names = list(names or [*COMPOSITIONS, NESTED["name"]])
    jobs = [(comp, w) for comp in names for w in which if not (known and comp in known and w == "learned")]

    def one(job):
        comp, w = job
        model = _composed(models["bases"], models["classifiers"], oracles, comp, w, alpha)
        support = support_of(comp)
        bs = fitting_batch(model, n)  # the data oracle's pass is large: n = 256 at once may not fit
        x = sample(model, n, seed=seed, steps=steps, sampler=sampler, progress=progress and workers == 1, batch_size=bs)
        return judge_samples(models["judge"], x, support, exact_masses(comp, alpha))

    verdicts = dict(zip(jobs, fork_map(one, jobs, workers)))
    rows = []
    for comp in names:
        row = {"composition": comp, "n": n}
        for w in which:
            v = known[comp] if known and comp in known and w == "learned" else verdicts[(comp, w)]
            row[f"tv_{w}"] = v["tv"]
            row[f"support_{w}"] = v["support_rate"]
            row[f"support_se_{w}"] = binomial_se(v["support_rate"], n)
        rows.append(row)
    return rows


@torch.no_grad()
def classifier_deviation(
    models: dict,
    oracles: dict,
    comp: str,
    samples: torch.Tensor,
    buckets=(0.05, 0.2, 0.4, 0.6, 0.8, 1.0),
    alpha: float = 0.5,
    seed: int = 0,
) -> list[dict]:
    """Mean |Q_learned(y | x_t) − Q_oracle(y | x_t)| of a two- or three-base composition's observed
    y, over ``samples`` of the composition forward-noised to the middle of each time bucket."""
    set_name, op, _ = COMPOSITIONS[comp]
    c = parse_composition(op, len(CLASSIFIER_SETS[set_name]), alpha)
    learned = DiffusionQ(models["classifiers"][set_name], c)
    oracle = DiffusionQ(oracles[set_name], c)
    sde = models["bases"]["M1"].sde
    g = torch.Generator().manual_seed(seed)
    out, lo = [], sde.eps
    for hi in buckets:
        t = torch.full((len(samples),), (lo + hi) / 2)
        shape = (-1, *[1] * (samples.dim() - 1))
        xt = sde.mean_coef(t).reshape(shape) * samples + sde.marginal_std(t).reshape(shape) * torch.randn(
            samples.shape, generator=g
        )
        d = (learned.log_q_y(xt, t).exp() - oracle.log_q_y(xt, t).exp()).abs()
        out.append({"t": f"({lo:.2f}, {hi:.2f}]", "mean_abs_dQ": float(d.mean()), "se": float(d.std() / len(d) ** 0.5)})
        lo = hi
    return out


def fit_classifier_sets(
    bases: dict,
    sets,
    config,
    digits,
    distill_updates: dict | None = None,
    seed: int = 0,
    workers: int | str = 1,
    progress: bool = True,
    **arch,
) -> dict:
    """``{set: (classifier, history, distilled)}``: for each classifier set, the joint time
    classifier trained on pools of its bases' samples (:func:`~.experiments.train_classifier_set`,
    the paper's method), then — where ``distill_updates[set]`` > 0 — fine-tuned towards the set's
    data oracle (:func:`sculpting.diffusion.distill.distill_time_classifier`, soft targets, lr 1e-3;
    ``distilled`` holds its config, first/last KL and time). ``workers`` > 1 fits that many sets at a
    time in forked processes of one thread each (the same weights: every set is seeded by ``seed``)."""

    workers = resolve_workers(workers)

    distill_updates = distill_updates or {}
    sets = list(sets)
    unknown = [s for s in sets if s not in CLASSIFIER_SETS]
    if unknown:
        raise ValueError(f"unknown classifier sets {unknown}; choose from {sorted(CLASSIFIER_SETS)}")
    shown = progress and (workers == 1 or len(sets) == 1)

    def one(set_name):
        members = [bases[n] for n in CLASSIFIER_SETS[set_name]]
        gen = torch.Generator().manual_seed(seed)  # per set: a set can be fitted alone
        clf, hist = train_classifier_set(members, config, gen, shown, desc=set_name, **arch)
        distilled = {}
        if distill_updates.get(set_name, 0) > 0:
            oracle = set_data_oracle(set_name, members[0].sde, digits, members[0].image_shape[-1])
            dcfg = DistillConfig(updates=distill_updates[set_name], batch=config.batch, lr=1e-3, seed=seed)
            dh = distill_time_classifier(clf, oracle, dcfg, shown, desc=f"distill {set_name}")
            n = min(50, len(dh["kl"]))
            distilled = {
                "distill_config": dcfg.to_dict(),
                "distill_kl": [sum(dh["kl"][:n]) / n, sum(dh["kl"][-n:]) / n],
                "distill_time_s": dh["train_time_s"],
            }
        return clf, hist, distilled

    out = dict(zip(sets, fork_map(one, sets, workers)))
    for set_name, (_, hist, distilled) in out.items():
        if progress and not shown:  # printed by the parent: a forked child's output may not reach a notebook
            print(
                f"classifier {set_name}: {hist['train_time_s']:.0f} s of training"
                + (
                    f", distilled in {distilled['distill_time_s']:.0f} s (KL {distilled['distill_kl'][0]:.3f} → "
                    f"{distilled['distill_kl'][1]:.3f})"
                    if distilled
                    else ""
                ),
                flush=True,
            )
    return out
