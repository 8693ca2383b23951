"""The fragment-molecule domain's declaration (:class:`sculpting.infrastructure.registry.Domain`): its pretrained
sets, checkpoint kinds, and the ``molecule-base`` / ``molecule-classifier`` training commands with
their presets (``cpu``: the shipped models' pinned settings; ``paper``: ``docs/molecules.md``).
Nothing here imports RDKit until a loader or a command runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sculpting.infrastructure.checkpoints import base_file
from sculpting.infrastructure.distributed import on_main
from sculpting.domains.molecules import io
from sculpting.domains.molecules.classifier import BetaRange, make_graph_classifier
from sculpting.domains.molecules.classifier_sets import (
    CLASSIFIER_ARCH,
    CLASSIFIER_BETA,
    CLASSIFIER_BETA_RANGE,
    CLASSIFIER_SETS,
    SMOKE_ARCH,
    SMOKE_CONFIG,
    config_for,
)
from sculpting.domains.molecules.env import FragmentGraphEnv
from sculpting.domains.molecules.experiments import base_train_config
from sculpting.domains.molecules.io import (
    PRETRAINED_DIR,
    load_graph_classifier,
    load_molecule_models,
    save_graph_classifier,
    save_molecule_gflownet,
)
from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet
from sculpting.gflownet.classifier_training import train_classifier
from sculpting.gflownet.training import train_gflownet
from sculpting.infrastructure.registry import Command, Domain

__all__ = ["DOMAIN", "CLASSIFIER_SET_NAMES"]

CLASSIFIER_SET_NAMES = ("seh_sa", "seh_sa_qed")
#: the model architecture of each preset: base GFlowNet steps / batch, classifier width
BASE_STEPS = {"cpu": (800, 64), "paper": (20000, 64), "smoke": (3, 8)}
CLASSIFIER_ARCHS = {"paper": {"width": 128, "n_layers": 4, "n_heads": 2}}


def load_set_bases(key: str, directory=None) -> list:
    """The β-conditional bases of a classifier set from ``directory`` (``<objective>/model.pt`` or
    ``base_<objective>.pt``; default: shipped), in label order, each checked to be its objective."""

    loaded = load_molecule_models(directory, objectives=CLASSIFIER_SETS[key])["bases"]
    return [loaded[o] for o in CLASSIFIER_SETS[key]]


def _set_loader(key):
    def load(directory=None, base_directory=None):
        bases = load_molecule_models(base_directory or directory, objectives=CLASSIFIER_SETS[key])["bases"]

        clf = load_graph_classifier(base_file(directory or PRETRAINED_DIR, key, "classifier"))
        return [bases[o] for o in CLASSIFIER_SETS[key]], clf

    return load


def _lazy_loader(name):
    def load(path):
        return getattr(io, name)(path)

    return load


def _base_presets(name, args):
    steps, batch = BASE_STEPS[name]
    return base_train_config(args.objective if args is not None else "seh", steps, batch)


def _classifier_presets(name, args):
    s = args.set if args is not None else "seh_sa"
    return {
        "cpu": config_for(s),
        "smoke": SMOKE_CONFIG,
        "paper": replace(
            config_for(s), steps=15000, batch_per_base=8, weight_decay=1e-6, warmup_steps=4000, logit_alpha_range=5.5
        ),
    }[name]


def _base(a, cfg, out, device):
    model = MoleculeGFlowNet(
        FragmentGraphEnv(3 if a.preset == "smoke" else 9, a.objective), **PRESETS[a.preset], seed=cfg.seed
    )
    hist = train_gflownet(
        model.to(device),
        cfg,
        desc=a.objective,
        conditioning=BetaConditioning(),
        checkpoint_path=out / "resume.pt",
        checkpoint_every=a.checkpoint_every,
        trajectory_workers=a.trajectory_workers,
    )
    on_main(save_molecule_gflownet)(
        model,
        out / "model.pt",
        objective=a.objective,
        preset=a.preset,
        seed=cfg.seed,
        train_config=cfg.to_dict(),
        train_time_s=hist["train_time_s"],
    )
    return {"final_loss": hist["loss"][-1]}


def _classifier(a, cfg, out, device):
    arch = {"cpu": CLASSIFIER_ARCH, "smoke": SMOKE_ARCH, **CLASSIFIER_ARCHS}[a.preset]
    bases = load_set_bases(a.set, a.bases_dir)
    beta = a.beta if a.beta is not None else CLASSIFIER_BETA  # default: β-conditional
    conditional = beta == "conditional"
    clf = make_graph_classifier(
        FragmentGraphEnv(bases[0].env.max_frags), len(bases), **arch, beta_conditioned=conditional, seed=cfg.seed
    )
    members, context = (
        (bases, BetaRange(*CLASSIFIER_BETA_RANGE)) if conditional else ([b.at_beta(beta) for b in bases], None)
    )
    hist = train_classifier(
        clf,
        members,
        cfg,
        desc=a.set,
        checkpoint_path=out / "resume.pt",
        checkpoint_every=a.checkpoint_every,
        context=context,
    )
    on_main(save_graph_classifier)(
        clf.eval(),
        out / "model.pt",
        set=a.set,
        beta=beta,
        train_config=cfg.to_dict(),
        seed=cfg.seed,
        train_time_s=hist["wall_time_s"],
        **({"beta_range": list(CLASSIFIER_BETA_RANGE)} if conditional else {}),
    )
    return {"train_time_s": hist["wall_time_s"]}


DOMAIN = Domain(
    name="molecules",
    description="fragment-based molecule GFlowNets (RDKit; needs the molecule data, docs/molecules.md)",
    pretrained={s: _set_loader(s) for s in CLASSIFIER_SET_NAMES},
    bases={s: (lambda directory=None, _s=s: load_set_bases(_s, directory)) for s in CLASSIFIER_SET_NAMES},
    checkpoint_loaders={
        "molecule_gflownet": _lazy_loader("load_molecule_gflownet"),
        "graph_classifier": _lazy_loader("load_graph_classifier"),
    },
    commands={
        "molecule-base": Command(
            _base,
            _base_presets,
            help="a β-conditional fragment GFlowNet",
            arguments=[
                (("--objective",), {"default": "seh", "choices": ("seh", "sa", "qed", "mw"), "help": "the reward"}),
                (
                    ("--trajectory-workers",),
                    {
                        "type": int,
                        "default": 0,
                        "metavar": "W",
                        "help": "CPU processes drawing each batch one step ahead while the device "
                        "trains (0: in this process; sculpting.gflownet.pipeline)",
                    },
                ),
            ],
        ),
        "molecule-classifier": Command(
            _classifier,
            _classifier_presets,
            inputs=lambda a: load_set_bases(a.set, a.bases_dir),
            help="a graph classifier of a shipped set",
            arguments=[
                (("--set",), {"default": "seh_sa", "choices": CLASSIFIER_SET_NAMES, "help": "the classifier set"}),
                (
                    ("--beta",),
                    {
                        "type": float,
                        "default": None,
                        "help": "train at this one β of the bases (default: β-conditional over [0, 96])",
                    },
                ),
                (("--bases-dir",), {"type": Path, "default": None, "help": "folder of the bases (default: shipped)"}),
            ],
        ),
    },
)
