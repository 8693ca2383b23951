"""Named sets of pretrained models: ``load_pretrained("<domain>/<set>") -> (bases, classifier)``.

Every registered domain (:mod:`sculpting.infrastructure.registry`) contributes its sets; the shipped ones:

=========================  ==========================================  =====================
name                       bases, in label order (y = 1, 2, 3)         classifier
=========================  ==========================================  =====================
``grid/shubert_sigmoid``   symmetric Shubert, diagonal sigmoid         α-conditioned
``grid/circles``           circle1, circle2, circle3                   exchangeable
``mnist/M1_M2``            M1 (red/green 0), M2 (green 0/1)            α-conditioned
``mnist/MN``               MN1, MN2, MN3                               exchangeable
``molecules/seh_sa``       SEH, SA (β-conditional)                     β-conditional
``molecules/seh_sa_qed``   SEH, SA, QED (β-conditional)                β-conditional, exchangeable
=========================  ==========================================  =====================

The molecule sets need the molecule data (``docs/molecules.md``).
"""

from __future__ import annotations

import sculpting.diffusion.io  # noqa: F401  (registers the method's own checkpoint kinds)
import sculpting.gflownet.io  # noqa: F401
from sculpting.infrastructure.checkpoints import CheckpointError, load
from sculpting.infrastructure.fingerprint import check_bases
from sculpting.infrastructure.registry import discover, domains, find_bases, find_pretrained

__all__ = ["pretrained_names", "load_pretrained", "load_bases", "load_model"]


def _check_dir(name: str, value) -> None:
    import os

    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path or None, got {type(value).__name__}")
    if not str(value):
        raise ValueError(f"{name} must be a folder path or None, got an empty string")


def pretrained_names() -> list[str]:
    """Every ``"<domain>/<set>"`` name of the registered domains.

    Examples:
        >>> import sculpting as sc
        >>> [n for n in sc.pretrained_names() if n.startswith("grid/")]
        ['grid/shubert_sigmoid', 'grid/circles']
    """

    return [f"{d.name}/{s}" for d in domains().values() for s in d.pretrained]


def load_pretrained(name: str, directory=None, base_directory=None):
    """``(bases, classifier)`` of a named set (bases in label order).

    ``directory`` reads the same file names from another folder (e.g. a notebook's ``models/``);
    ``base_directory`` reads the bases from yet another one (default: ``directory``). A classifier
    that records the bases it was trained on is checked against the bases loaded: files of another
    set, renamed into the folder, are refused (:class:`sculpting.infrastructure.checkpoints.CheckpointError`).

    Examples:
        >>> import sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/circles")
        >>> len(bases), clf.n_bases
        (3, 3)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'grid/shubert_sigmoid', got {type(name).__name__}")
    _check_dir("directory", directory)
    _check_dir("base_directory", base_directory)

    bases, classifier = find_pretrained(name)(directory=directory, base_directory=base_directory)
    if classifier is not None:
        try:
            check_bases(classifier, bases)
        except ValueError as e:
            where = f" from {base_directory or directory}" if (directory or base_directory) else ""
            raise CheckpointError(
                f"{name}: the bases loaded{where} are not the ones its classifier was trained on ({e})"
            ) from e
    return bases, classifier


def load_bases(name: str, directory=None) -> list:
    """The bases of a named set, in label order, from ``directory`` (``<base>/model.pt`` as the
    training CLI writes, or the shipped ``base_<base>.pt``; default: the shipped ones), without
    its classifier (e.g. to fit a new classifier to freshly trained bases).

    Examples:
        >>> import sculpting as sc
        >>> [b.env.reward_name for b in sc.load_bases("grid/shubert_sigmoid")]
        ['symmetric_shubert', 'diag_sigmoid']
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'grid/shubert_sigmoid', got {type(name).__name__}")
    _check_dir("directory", directory)

    return find_bases(name)(directory=directory)


def load_model(path):
    """Any checkpoint this package or a registered domain writes (base, classifier, judge), by its
    kind; the model's environment kind comes from the registered domains too.

    Examples:
        >>> import tempfile, pathlib, sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clf.pt"
        >>> sc.save(clf, path).name
        'clf.pt'
        >>> type(sc.load_model(path)).__name__
        'SculptingClassifier'
    """
    discover()
    return load(path)
