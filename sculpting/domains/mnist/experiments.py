"""The colored-MNIST experiments: named bases, classifier sets, compositions and their judging.

Compositions (two-base ones at weight α, γ the guidance scale):

====================  ==========================  =============================
name                  what                        expected support (judge)
====================  ==========================  =============================
M1⊗M2                 HM of M1 and M2             green 0
M1◑M2                 contrast                    red 0
M2◑M1                 reverse contrast            green 1
MN y=123              three-base, y = (1, 2, 3)   green 0
MN y=11 / 22 / 33     three-base contrasts        green 3 / red 1 / red 2
(MN y=12)◑MN3         a composition as a base     green 1
====================  ==========================  =============================
"""

from __future__ import annotations

from sculpting.compose import compose, sample
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.classifier_training import DiffusionClassifierConfig, draw_pool, train_time_classifier
from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model
from sculpting.domains.mnist.data import COLOURS, make_base_set
from sculpting.domains.mnist.judge import support_rate
from sculpting.domains.mnist.types import TYPES, base_type_log_probs, binomial_se, exact_type_masses, type_tv
from sculpting.infrastructure.workers import fork_map, resolve_workers

__all__ = [
    "MNIST_BASES",
    "CLASSIFIER_SETS",
    "COMPOSITIONS",
    "train_base",
    "train_bases",
    "train_classifier_set",
    "judge_samples",
    "exact_masses",
    "composition_model",
    "draw_compositions",
    "support_of",
]

G, R = COLOURS["green"], COLOURS["red"]
MNIST_BASES = ("M1", "M2", "MN1", "MN2", "MN3")
#: classifier name -> the bases it separates
CLASSIFIER_SETS = {"M1_M2": ("M1", "M2"), "MN": ("MN1", "MN2", "MN3")}
#: name -> (classifier set, operation (two-base name or observations), expected support)
COMPOSITIONS = {
    "M1⊗M2": ("M1_M2", "harmonic", {(0, G)}),
    "M1◑M2": ("M1_M2", "contrast", {(0, R)}),
    "M2◑M1": ("M1_M2", "reverse_contrast", {(1, G)}),
    "MN y=123": ("MN", (1, 2, 3), {(0, G)}),
    "MN y=11": ("MN", (1, 1), {(3, G)}),
    "MN y=22": ("MN", (2, 2), {(1, R)}),
    "MN y=33": ("MN", (3, 3), {(2, R)}),
}
BASE_SUPPORT = {
    "M1": {(0, R), (0, G)},
    "M2": {(0, G), (1, G)},
    "MN1": {(d, G) for d in range(4)},
    "MN2": {(d, c) for d in (0, 1) for c in (R, G)},
    "MN3": {(d, c) for d in (0, 2) for c in (R, G)},
}
NESTED = {"name": "(MN y=12)◑MN3", "inner": (1, 2), "support": {(1, G)}}


def train_base(
    name: str,
    digits,
    config: DiffusionTrainConfig,
    preset: str = "cpu",
    image_size: int | None = None,
    progress: bool = True,
    checkpoint_path=None,
    **unet_overrides,
):
    images, _ = make_base_set(name, digits, image_size or (28 if preset == "paper" else 16))
    model = ScoreModel(images.shape[1], preset, image_size=images.shape[-1], seed=config.seed, **unet_overrides)
    hist = train_score_model(model, images, config, progress=progress, desc=name, checkpoint_path=checkpoint_path)
    return model, hist


def train_bases(
    names,
    digits,
    configs,
    preset: str = "cpu",
    workers: int | str = 1,
    progress: bool = True,
    checkpoint_dir=None,
    **unet_overrides,
) -> dict:
    """{name: (model, history)} for every base of ``names`` with its ``configs[name]``
    (:func:`train_base`). ``workers`` > 1 trains that many bases at a time in forked processes of
    one torch thread each (:func:`sculpting.infrastructure.workers.fork_map`; the same weights as one at a time:
    each base is seeded by its own config); their progress bars are off, one line is printed per base.
    The longest runs (most steps) start first, so that the workers finish close together."""

    workers = resolve_workers(workers)
    from pathlib import Path

    def one(name):
        ckpt = Path(checkpoint_dir) / f"base_{name}.pt" if checkpoint_dir else None
        model, hist = train_base(
            name,
            digits,
            configs[name],
            preset,
            progress=progress and workers == 1,
            checkpoint_path=ckpt,
            **unet_overrides,
        )
        return model, hist

    order = sorted(names, key=lambda n: -configs[n].steps)  # stable: ties keep their order
    trained = dict(zip(order, fork_map(one, order, workers)))
    for name in order:
        if workers > 1 and progress:
            print(f"base {name}: trained in {trained[name][1]['train_time_s']:.0f} s", flush=True)
    return {name: trained[name] for name in names}


def train_classifier_set(
    bases,
    config: DiffusionClassifierConfig,
    generator=None,
    progress: bool = True,
    desc: str = "classifier",
    checkpoint_path=None,
    **arch,
):
    """Draw a trajectory pool per base and train the joint classifier (α-conditioned for two bases,
    exchangeable for three). Returns (classifier, history)."""
    m = len(bases)
    clf = TimeClassifier(tuple(bases[0].image_shape), n_bases=m, n_slots=2 if m == 2 else 3, seed=config.seed, **arch)
    pools = [draw_pool(b, config, generator, progress) for b in bases]
    hist = train_time_classifier(
        clf, pools, config, progress=progress, desc=desc, checkpoint_path=checkpoint_path, bases=bases
    )
    return clf, hist


def exact_masses(name: str, alpha: float = 0.5) -> dict:
    """{type: mass} of a named base, composition of :data:`COMPOSITIONS` or the nested one, computed
    exactly from the bases' type distributions (:mod:`.types`)."""

    if name in MNIST_BASES:
        return {t: float(p) for t, p in zip(TYPES, base_type_log_probs(name).exp()) if p > 0}
    if name == NESTED["name"]:
        return exact_type_masses([(CLASSIFIER_SETS["MN"], NESTED["inner"], 0.5), "MN3"], "contrast", alpha)
    if name not in COMPOSITIONS:
        raise ValueError(f"unknown composition {name!r}; choose from {sorted(COMPOSITIONS)} or {NESTED['name']!r}")
    set_name, op, _ = COMPOSITIONS[name]
    return exact_type_masses(CLASSIFIER_SETS[set_name], op, alpha)


def judge_samples(judge, samples, support, masses: dict | None = None) -> dict:
    """Support rate (with its binomial standard error), the full (digit, colour) histogram of a
    sample set and, given the exact type ``masses``, the total-variation distance to them."""
    pred = judge.predict(samples)
    types = {}
    for d, c in pred.tolist():
        key = f"{'red' if c == R else 'green'} {d}"
        types[key] = types.get(key, 0) + 1

    rate = support_rate(judge, samples, support)
    out = {
        "support_rate": rate,
        "support_se": binomial_se(rate, len(samples)),
        "n": len(samples),
        "types": dict(sorted(types.items(), key=lambda kv: -kv[1])),
    }
    if masses is not None:
        out["tv"] = type_tv(types, masses)
        out["exact_masses"] = masses
    return out


def support_of(name: str) -> set:
    """The judged (digit, colour) types a base, a composition or the nested one should produce."""
    if name in MNIST_BASES:
        return BASE_SUPPORT[name]
    if name == NESTED["name"]:
        return NESTED["support"]
    if name not in COMPOSITIONS:
        raise ValueError(f"unknown composition {name!r}; choose from {[*MNIST_BASES, *COMPOSITIONS, NESTED['name']]}")
    return COMPOSITIONS[name][2]


def composition_model(bases: dict, classifiers: dict, name: str, alpha: float = 0.5, gamma: float = 1.0):
    """The model sampled for ``name``: a base of ``bases`` itself, a composition of
    :data:`COMPOSITIONS` with ``classifiers[set]``, or the nested one ((MN y=12) ◑ MN3, its inner
    composition at γ = 1 and the contrast at ``gamma``)."""

    if name in MNIST_BASES:
        return bases[name]
    if name == NESTED["name"]:
        inner = compose([bases[n] for n in CLASSIFIER_SETS["MN"]], classifiers["MN"], NESTED["inner"])
        return compose([inner, bases["MN3"]], classifiers["nested"], "contrast", gamma=gamma)
    if name not in COMPOSITIONS:
        raise ValueError(f"unknown composition {name!r}; choose from {[*MNIST_BASES, *COMPOSITIONS, NESTED['name']]}")
    set_name, op, _ = COMPOSITIONS[name]
    return compose([bases[n] for n in CLASSIFIER_SETS[set_name]], classifiers[set_name], op, alpha=alpha, gamma=gamma)


def draw_compositions(
    bases: dict,
    classifiers: dict,
    specs,
    n: int,
    seed: int = 0,
    steps: int = 50,
    sampler: str = "edm",
    alpha: float = 0.5,
    workers: int | str = 1,
    **sampler_options,
) -> list:
    """Samples ``[n, C, H, W]`` for every ``(name, γ)`` of ``specs`` (:func:`composition_model`),
    each drawn with the same ``seed``; ``workers`` > 1 draws that many at a time in forked processes
    of one torch thread each (:func:`sculpting.infrastructure.workers.fork_map`). The samples do not depend on
    ``workers``: each job is seeded by ``seed`` alone. ``sampler_options`` go to the sampler (e.g.
    ``particles=`` of ``sampler="smc"``)."""

    workers = resolve_workers(workers)

    def one(spec):
        name, gamma = spec
        return sample(
            composition_model(bases, classifiers, name, alpha, gamma),
            n,
            seed=seed,
            steps=steps,
            sampler=sampler,
            **sampler_options,
        )

    return fork_map(one, list(specs), workers)


def draw(model, n: int, steps: int, seed: int = 0):
    """:func:`sculpting.sample` of a score model with ``steps`` PC steps."""
    return sample(model, n, seed=seed, steps=steps)
