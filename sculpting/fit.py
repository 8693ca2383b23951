"""The public training step between "bases" and "compose": :func:`fit_classifier`, and :func:`save`.

    clf = sc.fit_classifier(bases, "harmonic")          # or 2 / 3 (observation slots), a Composition
    model = sc.compose(bases, clf, "harmonic", alpha=0.3)
    sc.save(clf, "runs/clf.pt"); clf = sc.load_model("runs/clf.pt")

``fit_classifier`` dispatches on the bases' family:

* **GFlowNets** (``env`` + ``log_probs``): a :class:`~sculpting.gflownet.classifier.SculptingClassifier`
  on ``env.encode`` trained by :func:`~sculpting.gflownet.classifier_training.train_classifier` on
  the bases' own trajectories; on an enumerable environment (:func:`sculpting.protocols.is_enumerable`)
  the *expected* losses are computed by dynamic programming instead (``estimator="exact"``).
* **diffusion models** (``sde`` + ``score``): a :class:`~sculpting.diffusion.classifier.TimeClassifier`
  trained by :func:`~sculpting.diffusion.classifier_training.train_time_classifier` on pools drawn
  from the bases (EDM sampler, forward-noised).

The number of observation slots n decides which compositions the classifier serves: every
composition with at most n observed labels (two bases: n ≥ 2 and α-conditioned, so one classifier
serves every α; three or more: exchangeable). Randomness comes from ``config.seed`` only (same seed,
same bytes) and torch's global generator is left as it was.
"""

from __future__ import annotations

from dataclasses import fields, replace
from numbers import Integral

import torch

from sculpting.algebra import Composition, parse_composition
from sculpting.infrastructure.checkpoints import SAVERS, check_destination, check_extra_meta, replacing
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.io import save_score_model, save_time_classifier
from sculpting.diffusion.model import ScoreModel
from sculpting.families import FAMILIES, family_of_bases
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.gflownet.io import save_classifier, save_gflownet
from sculpting.gflownet.policy import GFlowNet
from sculpting.infrastructure.runtime import device_of

__all__ = ["fit_classifier", "save", "n_slots_for", "default_config"]


def n_slots_for(spec, n_bases: int) -> int:
    """Observation slots a classifier needs: an int n, or the largest number of observations of an
    operation name / label tuple / :class:`Composition` (at least 2 for two bases, the α-model)."""
    if isinstance(spec, bool) or spec is None:
        raise TypeError(f"operation_family_or_n_slots is an operation or a number of slots, got {spec!r}")
    if isinstance(spec, Integral):
        n = int(spec)
        if not 1 <= n <= 8:
            raise ValueError(f"n_slots must be in 1..8, got {n}")
    else:
        comp = spec if isinstance(spec, Composition) else parse_composition(spec, n_bases, 0.5)
        n = max(comp.n_observations, 1)
    return max(n, 2) if n_bases == 2 else n


def default_config(family, enumerable: bool = False):
    """The training config ``fit_classifier`` uses when given none (a dict updates it); ``family``:
    "gflownet", "diffusion" or a :class:`~sculpting.families.ModelFamily`."""

    if isinstance(family, str):
        family = next((f for f in FAMILIES if f.name == family), None) or _unknown_family(family)
    return family.default_config(enumerable)


def _unknown_family(name):
    raise ValueError(f"unknown model family {name!r}; known: {[f.name for f in FAMILIES]}")


def _resolve_config(config, family: str, enumerable: bool, seed):
    base = default_config(family, enumerable)
    if config is None:
        cfg = base
    elif isinstance(config, dict):
        names = {f.name for f in fields(base)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown} for {type(base).__name__}; known: {sorted(names)}")
        cfg = replace(base, **config)
    elif type(config) is type(base):
        cfg = config
    else:
        name = family if isinstance(family, str) else family.name
        raise TypeError(f"config for {name} bases is a {type(base).__name__} or a dict, got {type(config).__name__}")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        cfg = replace(cfg, seed=int(seed))
    return cfg


def _device(model) -> torch.device:
    return device_of(model)


def fit_classifier(
    bases,
    operation_family_or_n_slots,
    config=None,
    *,
    progress: bool = True,
    seed: int | None = None,
    arch: dict | None = None,
    beta: float | None = None,
    checkpoint_path=None,
    checkpoint_every: int = 100,
):
    """Train a sculpting classifier of ``bases`` and return it (eval mode), ready for ``sc.compose``.

    Args:
        bases: m ≥ 2 models of one family over one space, in label order.
        operation_family_or_n_slots: the number of observation slots n, or the operation(s) to
            serve ("harmonic", "contrast", "y=123", a label tuple, a Composition): n is then its
            number of observations (two bases: at least 2).
        config: ``None`` (defaults: :func:`default_config`), a dict of overrides, or the family's
            config dataclass (``ClassifierTrainConfig`` / ``DiffusionClassifierConfig``).
        progress: a progress bar.
        seed: overrides ``config.seed``.
        arch: network options (GFlowNets: ``hidden``, ``n_layers``; diffusion: ``trunk``,
            ``hidden``, ``embed_dim``).
        beta: β-conditional GFlowNet bases: train at this β (compose with the same ``beta=``).
        checkpoint_path: a resume file; rerunning after a kill continues bit-exactly.
    Returns:
        the classifier; ``classifier.meta`` holds its training config and history summary.

    Examples:
        >>> import sculpting as sc
        >>> bases = sc.load_bases("grid/shubert_sigmoid")
        >>> clf = sc.fit_classifier(bases, "harmonic", {"steps": 5}, progress=False, seed=0)
        >>> model = sc.compose(bases, clf, "harmonic")                  # the new classifier composes the bases
        >>> sc.sample(model, 2, seed=0).shape
        torch.Size([2, 2])
    """

    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if isinstance(bases, (str, bytes)) or not hasattr(bases, "__iter__"):
        raise TypeError(f"bases must be a list of models, got {type(bases).__name__}")
    bases = list(bases)
    family = family_of_bases(bases)
    m = len(bases)
    n_slots = n_slots_for(operation_family_or_n_slots, m)
    if arch is not None and not isinstance(arch, dict):
        raise TypeError(f"arch must be a dict of network options or None, got {type(arch).__name__}")
    arch = dict(arch or {})
    bases, enumerable = family.prepare_fit(bases, beta)
    cfg = _resolve_config(config, family, enumerable, seed)
    fit = family.fit
    dev = _device(bases[0])
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the trainers seed torch's generator: keep the caller's
        clf, hist = fit(bases, n_slots, cfg, arch, dev, progress, checkpoint_path, checkpoint_every)
    clf.meta = {
        "train_config": cfg.to_dict(),
        "seed": cfg.seed,
        "n_slots": n_slots,
        "train_time_s": hist.get("wall_time_s", hist.get("train_time_s")),
        "fitted_by": "sculpting.fit_classifier",
    }
    return clf.eval()


def save(model, path, *, overwrite: bool = False, **meta):
    """Save a base or a classifier of this package's families to ``path`` (+ ``.json`` metadata),
    atomically; ``sc.load_model(path)`` rebuilds it (a model on your own environment: register its
    domain with ``env_kinds`` first, :mod:`sculpting.infrastructure.registry`). ``meta``: JSON-able extras.

    Writes exactly those two files. Refused before anything is written: a folder or an empty path,
    a path ending in ``.json`` (the sidecar would be the checkpoint itself), and replacing a file
    (``path`` or its ``.json``) that sculpting did not write, unless ``overwrite=True``.

    Examples:
        >>> import tempfile, pathlib, sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clf.pt"
        >>> sc.save(clf, path, note="my classifier").name              # weights + metadata beside them
        'clf.pt'
        >>> sorted(p.name for p in path.parent.iterdir())
        ['clf.json', 'clf.pt']
    """

    check_destination(path, overwrite)
    with replacing(overwrite):
        return _save(model, path, **meta)


def _save(model, path, **meta):
    check_extra_meta(meta)
    meta = {
        **{
            k: v
            for k, v in (getattr(model, "meta", None) or {}).items()
            if k in ("train_config", "seed", "n_slots", "train_time_s", "fitted_by")
        },
        **meta,
    }

    for cls, saver in SAVERS.items():  # the adapters' models (TorchGFNPolicy, DiffusersScoreModel)
        if isinstance(model, cls):
            return saver(model, path, **meta)
    if isinstance(model, GFlowNet) and type(model).__module__.startswith("sculpting.gflownet"):
        return save_gflownet(model, path, **meta)
    if isinstance(model, SculptingClassifier) and not getattr(model, "custom_body", False):
        return save_classifier(model, path, **meta)
    if isinstance(model, ScoreModel):
        return save_score_model(model, path, **meta)
    if isinstance(model, TimeClassifier):
        return save_time_classifier(model, path, **meta)
    raise TypeError(
        f"sc.save takes a GFlowNet, a SculptingClassifier (MLP body), a ScoreModel, a TimeClassifier, "
        f"a TorchGFNPolicy (built by sculpting.adapters.torchgfn.build) or a DiffusersScoreModel, "
        f"got {type(model).__name__}; domain models have their domain's save functions "
        "(e.g. sculpting.domains.molecules.io), diffusers models their save_pretrained"
    )
