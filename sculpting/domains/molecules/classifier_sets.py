"""The molecule classifier sets and their pinned CPU training settings (docs/molecules.md §9, §11).

``seh_sa``: α-conditioned two-base classifier between the SEH and SA bases;
``seh_sa_qed``: exchangeable three-base classifier between SEH, SA, QED. Both are β-conditional
(β an input, drawn U[0, 96] — the bases' training range — per group of 16 trajectories), so one
classifier serves every (α, β). Both are trained on the frozen bases' own trajectories (no
exploration, invalid molecules dropped; the last pre-stop state is included as a non-terminal
example). ``train_classifier_set(bases, beta=32.0)`` still trains a classifier of one β.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sculpting.domains.molecules.classifier import BetaRange, make_graph_classifier
from sculpting.domains.molecules.env import FragmentGraphEnv
from sculpting.domains.molecules.io import load_molecule_gflownet, save_graph_classifier
from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
from sculpting.infrastructure.workers import fork_map, resolve_workers

__all__ = [
    "CLASSIFIER_SETS",
    "CLASSIFIER_BETA",
    "CLASSIFIER_CONFIG",
    "CLASSIFIER_STEPS",
    "config_for",
    "train_classifier_set",
    "train_classifier_sets",
    "build_classifier_sets",
]

from sculpting.domains.molecules.constants import CLASSIFIER_SETS  # noqa: E402  (the sets, re-exported)

CLASSIFIER_BETA = "conditional"  # β an input, drawn from CLASSIFIER_BETA_RANGE while training
CLASSIFIER_BETA_RANGE = (0.0, 96.0)
CLASSIFIER_CONFIG = ClassifierTrainConfig(
    steps=1500,
    batch_per_base=32,
    lr=1e-3,
    warmup_steps=300,
    ema_decay=0.995,
    logit_alpha_range=3.5,
    nonterminal_norm="trajectories",
    seed=0,
)
#: pinned steps per set: both see the same number of base trajectories (128 000; 32 per base per step)
CLASSIFIER_STEPS = {"seh_sa": 2000, "seh_sa_qed": 1333}
#: width 32: guided sampling scores successors with the classifier, and on one CPU thread width 32
#: scores ≈ 2× the rows per second of width 64 (19 000 vs 9 500 successor graphs/s, chunks of 64)
CLASSIFIER_ARCH = {"width": 32, "n_layers": 2, "n_heads": 2}
SMOKE_CONFIG = ClassifierTrainConfig(steps=3, batch_per_base=4, warmup_steps=1, seed=0)
SMOKE_ARCH = {"width": 16, "n_layers": 1, "n_heads": 2}


def config_for(set_name: str) -> ClassifierTrainConfig:
    """The pinned CPU training settings of one classifier set."""
    if set_name not in CLASSIFIER_SETS:
        raise ValueError(f"unknown classifier set {set_name!r}; choose from {sorted(CLASSIFIER_SETS)}")
    return replace(CLASSIFIER_CONFIG, steps=CLASSIFIER_STEPS[set_name])


def train_classifier_set(
    bases,
    beta=CLASSIFIER_BETA,
    config: ClassifierTrainConfig = CLASSIFIER_CONFIG,
    arch: dict | None = None,
    progress: bool = True,
    desc: str = "classifier",
    checkpoint_path=None,
    beta_range=CLASSIFIER_BETA_RANGE,
):
    """Train a graph classifier between β-conditional ``bases`` (2: α-conditioned, 3: exchangeable);
    ``beta="conditional"``: β-conditional over ``beta_range``, a number: at that one β.
    Returns (classifier, history)."""
    if len(bases) not in (2, 3):
        raise ValueError(f"molecule classifier sets have 2 or 3 bases, got {len(bases)}")
    conditional = beta == "conditional"
    if not conditional and not isinstance(beta, (int, float)):
        raise ValueError(f"beta must be 'conditional' or a number, got {beta!r}")
    env = FragmentGraphEnv(bases[0].env.max_frags)
    clf = make_graph_classifier(
        env, len(bases), **(arch or CLASSIFIER_ARCH), beta_conditioned=conditional, seed=config.seed
    )
    if conditional:
        hist = train_classifier(
            clf,
            list(bases),
            config,
            progress=progress,
            desc=desc,
            checkpoint_path=checkpoint_path,
            context=BetaRange(*beta_range),
        )
    else:
        hist = train_classifier(
            clf, [b.at_beta(beta) for b in bases], config, progress=progress, desc=desc, checkpoint_path=checkpoint_path
        )
    return clf.eval(), hist


def train_classifier_sets(
    jobs: dict,
    beta=CLASSIFIER_BETA,
    arch: dict | None = None,
    workers: int | str = 1,
    progress: bool = True,
    beta_range=CLASSIFIER_BETA_RANGE,
) -> dict:
    """{set name: (classifier, history)} for ``jobs`` = {set name: (bases, config)}
    (:func:`train_classifier_set`, each seeded by its config). ``workers`` > 1 trains that many sets
    at a time in forked processes of one torch thread each (:func:`sculpting.infrastructure.workers.fork_map`): the
    same weights as one at a time, bit for bit; their progress bars are off and one line is printed
    per set. The set with the most steps starts first."""

    workers = resolve_workers(workers)

    conditional = beta == "conditional"

    def one(name):
        bases, cfg = jobs[name]
        clf, hist = train_classifier_set(
            bases, beta, cfg, arch, progress=progress and workers == 1, desc=name, beta_range=beta_range
        )
        return clf.state_dict(), hist  # the weights travel back; the classifier is rebuilt here

    order = sorted(jobs, key=lambda n: -jobs[n][1].steps)  # stable: ties keep their order
    trained = dict(zip(order, fork_map(one, order, workers)))
    out = {}
    for name in jobs:
        bases, cfg = jobs[name]
        state, hist = trained[name]
        clf = make_graph_classifier(
            FragmentGraphEnv(bases[0].env.max_frags),
            len(bases),
            **(arch or CLASSIFIER_ARCH),
            beta_conditioned=conditional,
            seed=cfg.seed,
        )
        clf.load_state_dict(state)
        out[name] = (clf.eval(), hist)
        if workers > 1 and progress:
            print(f"classifier {name}: trained in {hist['wall_time_s']:.0f} s", flush=True)
    return out


def build_classifier_sets(out: Path, sets=None, smoke: bool = False):
    """Train and save ``classifier_<set>.pt`` next to the bases in ``out``."""
    for name in sets or list(CLASSIFIER_SETS):
        if name not in CLASSIFIER_SETS:
            raise ValueError(f"unknown classifier set {name!r}; choose from {sorted(CLASSIFIER_SETS)}")
        bases = [load_molecule_gflownet(Path(out) / f"base_{o}.pt") for o in CLASSIFIER_SETS[name]]
        cfg, arch = (SMOKE_CONFIG, SMOKE_ARCH) if smoke else (config_for(name), CLASSIFIER_ARCH)
        clf, hist = train_classifier_set(
            bases,
            CLASSIFIER_BETA,
            cfg,
            arch,
            progress=not smoke,
            desc=name,
            checkpoint_path=Path(out) / ".resume" / f"classifier_{name}.pt",
        )
        save_graph_classifier(
            clf,
            Path(out) / f"classifier_{name}.pt",
            half=True,
            set=name,
            bases=list(CLASSIFIER_SETS[name]),
            beta=CLASSIFIER_BETA,
            beta_range=list(CLASSIFIER_BETA_RANGE),
            train_config=cfg.to_dict(),
            seed=cfg.seed,
            train_time_s=hist["wall_time_s"],
            loss_history=hist["loss"][::10],
            data_source="trajectories of the frozen bases at this β (see bases' data_source)",
            command=f"python -m sculpting.domains.molecules.build --stages classifiers --sets {name}",
        )
        print(f"{name}: {hist['wall_time_s']:.0f} s, final loss {hist['loss'][-1]:.3f}")
