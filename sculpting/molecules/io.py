"""Saving and loading molecule GFlowNets and graph classifiers (see :mod:`sculpting.checkpoints`)."""
from __future__ import annotations

from ..checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .env import FragmentGraphEnv

__all__ = ["save_molecule_gflownet", "load_molecule_gflownet", "save_graph_classifier", "load_graph_classifier"]


def _load_into(module, sd, path):
    try:
        module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match the model it describes: {e}") from e


def save_molecule_gflownet(model, path, half: bool = False, **meta):
    return save_checkpoint(path, "molecule_gflownet", model.state_dict(),
                           {"env": model.env.config, "arch": model.arch, **meta}, half=half)


def load_molecule_gflownet(path):
    from .policy import MoleculeGFlowNet
    sd, meta = load_checkpoint(path, "molecule_gflownet")
    model = MoleculeGFlowNet(FragmentGraphEnv(**meta["env"]), **meta["arch"])
    _load_into(model, sd, path)
    model.meta = meta
    return model.eval()


def save_graph_classifier(classifier, path, half: bool = False, **meta):
    return save_checkpoint(path, "graph_classifier", classifier.state_dict(),
                           {"env": {"max_frags": classifier.env.max_frags}, "arch": classifier.arch,
                            "body": classifier.body.arch, **meta}, half=half)


def load_graph_classifier(path):
    from .classifier import make_graph_classifier
    sd, meta = load_checkpoint(path, "graph_classifier")
    clf = make_graph_classifier(FragmentGraphEnv(**meta["env"]), **{k: meta["arch"][k] for k in
                                ("n_bases", "n_slots", "alpha_conditioned", "exchangeable")}, **meta["body"])
    _load_into(clf, sd, path)
    clf.meta = meta
    return clf.eval()
