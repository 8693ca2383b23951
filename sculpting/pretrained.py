"""Named sets of shipped pretrained models: ``load_pretrained(name) -> (bases, classifier)``.

=========================  ==========================================  =====================
name                       bases, in label order (y = 1, 2, 3)         classifier
=========================  ==========================================  =====================
``grid/shubert_sigmoid``   symmetric Shubert, diagonal sigmoid         α-conditioned
``grid/circles``           circle1, circle2, circle3                   exchangeable
``mnist/M1_M2``            M1 (red/green 0), M2 (green 0/1)            α-conditioned
``mnist/MN``               MN1, MN2, MN3                               exchangeable
``molecules/seh_sa``       SEH, SA (β-conditional)                     α-conditioned, β = 32
``molecules/seh_sa_qed``   SEH, SA, QED (β-conditional)                exchangeable, β = 32
=========================  ==========================================  =====================

The molecule sets need the molecule data (``docs/molecules.md``). Each domain also has its own
loaders with every model (e.g. :func:`sculpting.domains.mnist.io.load_mnist_models`).
"""
from __future__ import annotations

__all__ = ["PRETRAINED", "load_pretrained", "load_model"]

#: name -> (domain, set) ; see the table above
PRETRAINED = {
    "grid/shubert_sigmoid": ("grid", "shubert_sigmoid"),
    "grid/circles": ("grid", "circles"),
    "mnist/M1_M2": ("mnist", "M1_M2"),
    "mnist/MN": ("mnist", "MN"),
    "molecules/seh_sa": ("molecules", "seh_sa"),
    "molecules/seh_sa_qed": ("molecules", "seh_sa_qed"),
}


def load_pretrained(name: str, directory=None, base_directory=None):
    """``(bases, classifier)`` of a named shipped set (order of the table above).

    ``directory`` reads the same file names from another folder (e.g. a notebook's ``models/``);
    ``base_directory`` reads the bases from yet another one (default: ``directory``).
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained set {name!r}; choose from {', '.join(PRETRAINED)}")
    domain, key = PRETRAINED[name]
    if domain == "grid":
        from sculpting.domains.grid.io import load_grid_pair
        return load_grid_pair(key, directory, base_directory=base_directory)
    if domain == "mnist":
        from sculpting.diffusion.io import load_score_model, load_time_classifier
        from sculpting.domains.mnist.experiments import CLASSIFIER_SETS
        from sculpting.domains.mnist.io import PRETRAINED_DIR
        from pathlib import Path
        d = Path(directory or PRETRAINED_DIR)
        db = Path(base_directory or d)
        return ([load_score_model(db / f"base_{n}.pt") for n in CLASSIFIER_SETS[key]],
                load_time_classifier(d / f"classifier_{key}.pt"))
    from sculpting.domains.molecules.classifier_sets import CLASSIFIER_SETS
    from sculpting.domains.molecules.io import load_molecule_models
    bases = load_molecule_models(base_directory or directory, objectives=CLASSIFIER_SETS[key])["bases"]
    from sculpting.domains.molecules.io import PRETRAINED_DIR, load_graph_classifier
    from pathlib import Path
    clf = load_graph_classifier(Path(directory or PRETRAINED_DIR) / f"classifier_{key}.pt")
    return [bases[o] for o in CLASSIFIER_SETS[key]], clf


def load_model(path):
    """Any checkpoint this package writes (base, classifier, judge of any domain), by its kind."""
    import sculpting.diffusion.io  # noqa: F401  (each io module registers the kinds it saves)
    import sculpting.domains.mnist.judge  # noqa: F401
    import sculpting.domains.molecules.io  # noqa: F401
    import sculpting.gflownet.io  # noqa: F401
    from sculpting.checkpoints import load
    return load(path)
