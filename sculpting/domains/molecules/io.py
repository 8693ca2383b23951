"""Saving and loading molecule GFlowNets and graph classifiers (see :mod:`sculpting.infrastructure.checkpoints`)."""

from __future__ import annotations

from pathlib import Path

from sculpting.infrastructure.checkpoints import (
    CheckpointError,
    base_file,
    fingerprint_meta,
    load_checkpoint,
    rebuild,
    register_loader,
    save_checkpoint,
)
from sculpting.domains.molecules.classifier import make_graph_classifier
from sculpting.domains.molecules.constants import CLASSIFIER_SETS
from sculpting.domains.molecules.env import FragmentGraphEnv
from sculpting.domains.molecules.policy import MoleculeGFlowNet
from sculpting.domains.molecules.successor_head import load_successor_head

__all__ = [
    "save_molecule_gflownet",
    "load_molecule_gflownet",
    "save_graph_classifier",
    "load_graph_classifier",
    "PRETRAINED_DIR",
    "load_molecule_models",
]

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def save_molecule_gflownet(model, path, half: bool = False, **meta):
    return save_checkpoint(
        path, "molecule_gflownet", model.state_dict(), {"env": model.env.config, "arch": model.arch, **meta}, half=half
    )


def load_molecule_gflownet(path):
    sd, meta = load_checkpoint(path, "molecule_gflownet")
    env = _env(meta, path)
    return rebuild(lambda: MoleculeGFlowNet(env, **meta["arch"]), sd, meta, path)


def save_graph_classifier(classifier, path, half: bool = False, **meta):
    return save_checkpoint(
        path,
        "graph_classifier",
        classifier.state_dict(),
        {
            "env": {"max_frags": classifier.env.max_frags},
            "arch": classifier.arch,
            "body": classifier.body.arch,
            **fingerprint_meta(classifier),
            **meta,
        },
        half=half,
    )


def load_graph_classifier(path):
    sd, meta = load_checkpoint(path, "graph_classifier")
    env = _env(meta, path)
    return rebuild(
        lambda: make_graph_classifier(
            env,
            **{k: meta["arch"][k] for k in ("n_bases", "n_slots", "alpha_conditioned", "exchangeable")},
            **meta["body"],
        ),
        sd,
        meta,
        path,
    )


def _env(meta, path):
    try:
        return FragmentGraphEnv(**meta["env"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot rebuild its fragment environment ({type(e).__name__}: {e})") from e


def load_molecule_models(directory=None, objectives=("seh", "sa", "qed")) -> dict:
    """The fragment-molecule models: {"bases": {objective: MoleculeGFlowNet},
    "classifiers": {set: graph SculptingClassifier}, "successor_heads": {set: SuccessorHead}}
    (classifiers and heads present in the folder; ``sc.compose(..., successor_head=head)``).
    Regenerate with ``python -m sculpting.domains.molecules.build`` (needs the molecule data)."""

    d = Path(directory) if directory else PRETRAINED_DIR

    out = {"bases": {o: load_molecule_gflownet(base_file(d, o)) for o in objectives}, "classifiers": {}}
    for o, model in out["bases"].items():
        if model.env.objective not in (None, o):
            raise CheckpointError(f"{base_file(d, o)} holds a base of objective {model.env.objective!r}, not {o!r}")
    out["successor_heads"] = {}
    for name in CLASSIFIER_SETS:
        if (d / f"classifier_{name}.pt").is_file():
            out["classifiers"][name] = load_graph_classifier(d / f"classifier_{name}.pt")
            if (d / f"successor_{name}.pt").is_file():
                out["successor_heads"][name] = load_successor_head(d / f"successor_{name}.pt", out["classifiers"][name])
    return out


register_loader("molecule_gflownet", load_molecule_gflownet)
register_loader("graph_classifier", load_graph_classifier)
