"""The reference grid experiments (docs/grid.md): named bases, pairs, and exact evaluation.

Everything here is exact: distributions come from dynamic programming on the 32×32 grid, and
the L1 of a guided policy is Σ_x |p_guided(x) − p_target(x)| against the sculpted target of the
*learned* base distributions.
"""

from __future__ import annotations

import torch

from sculpting.algebra import THREE_BASE_OBSERVATIONS, Composition, l1_distance
from sculpting.compose import compose, exact_distribution, sample
from sculpting.domains.grid.env import GridEnv
from sculpting.gflownet.classifier import ClassifierQ, SculptingClassifier
from sculpting.gflownet.exact import base_tables, terminal_log_probs
from sculpting.gflownet.guidance import GUIDANCE_FORMS, GuidedPolicy
from sculpting.gflownet.oracle import OracleQ
from sculpting.gflownet.policy import GFlowNet, TabularPolicy
from sculpting.gflownet.smc import terminal_target
from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet
from sculpting.infrastructure.workers import fork_map, resolve_workers

__all__ = [
    "GRID_BASES",
    "CLASSIFIER_SETS",
    "TWO_BASE_OPS",
    "make_base",
    "train_base",
    "train_bases",
    "base_tables",
    "guided_distribution",
    "evaluate_compositions",
    "two_base_compositions",
    "three_base_compositions",
    "make_classifier",
]

#: name -> (reward, temperature)
GRID_BASES = {
    "shubert": ("symmetric_shubert", 0.5),
    "sigmoid": ("diag_sigmoid", 1.0),
    "circle1": ("circle1", 1.0),
    "circle2": ("circle2", 1.0),
    "circle3": ("circle3", 1.0),
}
CLASSIFIER_SETS = {"shubert_sigmoid": ("shubert", "sigmoid"), "circles": ("circle1", "circle2", "circle3")}
TWO_BASE_OPS = ("harmonic", "contrast", "reverse_contrast")


def make_base(name: str, horizon: int = 32, seed: int | None = None) -> GFlowNet:
    if name not in GRID_BASES:
        raise ValueError(f"unknown grid base {name!r}; choose from {sorted(GRID_BASES)}")
    reward, temp = GRID_BASES[name]
    return GFlowNet(GridEnv(horizon, 2, reward, temp), seed=seed)


def train_base(name: str, config: GFlowNetTrainConfig, horizon: int = 32, progress: bool = True, checkpoint_path=None):
    """Build (seeded with ``config.seed``: same seed, same weights) and train a named base."""
    model = make_base(name, horizon, seed=config.seed)
    hist = train_gflownet(model, config, progress=progress, desc=name, checkpoint_path=checkpoint_path)
    return model, hist


def train_bases(configs: dict, horizon: int = 32, workers: int | str = 1, progress: bool = True) -> dict:
    """{name: (model, history)} for ``configs`` = {name: GFlowNetTrainConfig} (:func:`train_base`).
    ``workers`` > 1 trains that many bases at a time in forked processes of one torch thread each
    (:func:`sculpting.infrastructure.workers.fork_map`): the same weights as one at a time, bit for bit (each base is
    seeded by its config); their progress bars are off."""

    workers = resolve_workers(workers)

    names = list(configs)

    def one(name):
        model, hist = train_base(name, configs[name], horizon, progress=progress and workers == 1)
        return model.state_dict(), hist  # the weights travel back; the model is rebuilt here

    out = {}
    for name, (state, hist) in zip(names, fork_map(one, names, workers)):
        model = make_base(name, horizon, seed=configs[name].seed)
        model.load_state_dict(state)
        out[name] = (model, hist)
    return out


def make_classifier(pair: str, env, seed: int | None = None) -> SculptingClassifier:
    """The classifier of a named set (initial weights from ``seed`` when given)."""
    m = len(CLASSIFIER_SETS[pair])
    return SculptingClassifier(env, n_bases=m, n_slots=2 if m == 2 else 3, seed=seed)


def two_base_compositions(alphas=(0.05, 0.5, 0.95), ops=TWO_BASE_OPS):
    return [Composition.two_base(op, a) for op in ops for a in alphas]


def three_base_compositions(observations=THREE_BASE_OBSERVATIONS):
    return [Composition.uniform(3, y) for y in observations]


@torch.no_grad()
def guided_distribution(
    bases, composition: Composition, classifier=None, form: str = "anchored", tables: torch.Tensor | None = None
):
    """Exact (guided log p ``[N]``, target log p ``[N]``) of a composition.

    ``classifier=None`` uses the oracle classifier computed by DP from the bases.
    """
    env = bases[0].env
    tables = base_tables(bases) if tables is None else tables
    base_lp = terminal_log_probs(env, tables)
    q = OracleQ(env, tables, composition) if classifier is None else ClassifierQ(classifier, composition)
    g = GuidedPolicy([TabularPolicy(env, t) for t in tables], q, form)  # the bases' tables, computed once
    guided = terminal_log_probs(env, g.table_on(env))
    return guided, composition.target_log_prob(base_lp)


def evaluate_compositions(bases, compositions, classifier=None, forms=GUIDANCE_FORMS, oracle: bool = True):
    """Records {label, name, alpha, observations, l1_<form>_learned, l1_<form>_oracle} per composition."""
    tables = base_tables(bases)
    rows = []
    for c in compositions:
        row = {"label": c.label(), "name": c.name, "alpha": c.alpha, "observations": list(c.observations)}
        for form in forms:
            if classifier is not None:
                g, t = guided_distribution(bases, c, classifier, form, tables)
                row[f"l1_{form}_learned"] = l1_distance(g, t)
            if oracle:
                g, t = guided_distribution(bases, c, None, form, tables)
                row[f"l1_{form}_oracle"] = l1_distance(g, t)
        rows.append(row)
    return rows


def smc_l1(
    bases,
    classifier,
    composition: Composition,
    particles: int = 64,
    n: int = 16384,
    form: str = "anchored",
    seed: int = 0,
) -> dict:
    """Sequential Monte Carlo on one learned composition (``docs/smc.md``): {l1_smc: L1 of n SMC
    samples (N = ``particles`` per run) to the composition the classifier's terminal head defines,
    l1_smc_floor: the mean L1 of n i.i.d. samples from that target, l1_guided_terminal: the guided
    policy's exact L1 to it}."""

    model = compose(bases, classifier, composition, form=form)
    target, _ = terminal_target(model)
    env = bases[0].env
    x = sample(model, n, seed=seed, sampler="smc", particles=particles)
    hist = torch.bincount(env.index(x), minlength=env.n_states).double() / n
    g = torch.Generator().manual_seed(seed + 1)
    p = target.exp()
    floor = (
        sum(
            float(
                (
                    torch.bincount(
                        torch.multinomial(p.float(), n, replacement=True, generator=g), minlength=len(p)
                    ).double()
                    / n
                    - p
                )
                .abs()
                .sum()
            )
            for _ in range(20)
        )
        / 20
    )
    return {
        "l1_smc": l1_distance(hist.clamp_min(1e-300).log(), target),
        "l1_smc_floor": floor,
        "l1_guided_terminal": l1_distance(exact_distribution(model), target),
    }
