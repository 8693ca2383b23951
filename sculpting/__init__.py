"""sculpting: compositional sculpting of iterative generative models (Garipov et al. 2023).

The public API::

    import sculpting as sc
    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    model = sc.compose(bases, clf, "harmonic", alpha=0.3)
    x = sc.sample(model, 64, seed=0)
    sc.exact_distribution(model), sc.target_distribution(bases, "harmonic", alpha=0.3)
"""

from sculpting.algebra import Composition, l1_distance, parse_composition  # noqa: E402,F401
from sculpting.compose import compose, exact_distribution, sample, smc, target_distribution  # noqa: E402,F401
from sculpting.diffusion.oracle import data_oracle  # noqa: E402,F401
from sculpting.fit import fit_classifier, save  # noqa: E402,F401
from sculpting.infrastructure.pretrained import load_bases, load_model, load_pretrained, pretrained_names  # noqa: E402,F401
from sculpting.infrastructure.registry import Command, Domain, register_domain  # noqa: E402,F401
from sculpting.version import __version__  # noqa: F401

__all__ = [
    "Composition",
    "parse_composition",
    "l1_distance",
    "compose",
    "sample",
    "smc",
    "exact_distribution",
    "target_distribution",
    "load_pretrained",
    "load_bases",
    "load_model",
    "pretrained_names",
    "fit_classifier",
    "save",
    "Domain",
    "Command",
    "register_domain",
    "data_oracle",
]


def __dir__():
    """The public names (the submodules a package import binds are not part of the API)."""
    return sorted([*__all__, "__version__"])
