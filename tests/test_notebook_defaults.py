"""The training notebooks' default parameters are the pinned settings the shipped models were built
with, so running a notebook at its defaults reproduces the shipped experiment."""

import ast
from pathlib import Path

import nbformat
import pytest

from sculpting.domains.grid import build as build_grid
from sculpting.domains.mnist import build as build_mnist
from sculpting.domains.molecules import build as build_molecules
from sculpting.domains.molecules import classifier_sets

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def defaults(name: str) -> dict:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    out = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign), f"{name}: parameters cell holds only assignments"
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def _same(nb: dict, pinned: dict, keys):
    return {k: (nb[k], pinned[k]) for k in keys if nb[k] != pinned[k]}


@pytest.mark.parametrize(
    "name, pinned, keys",
    [
        (
            "01_grid_base_gflownets",
            build_grid.BASE_CONFIG.to_dict(),
            ["steps", "batch_size", "lr", "lr_log_z", "epsilon", "seed"],
        ),
        (
            "02_grid_classifiers",
            build_grid.CLASSIFIER_CONFIG.to_dict(),
            ["steps", "batch_per_base", "lr", "warmup_steps", "alpha_groups", "estimator", "seed"],
        ),
        ("04_mnist_base_diffusion", build_mnist.BASE_CONFIG.to_dict(), ["steps", "batch_size", "lr", "seed"]),
        (
            "05_mnist_classifiers",
            build_mnist.CLASSIFIER_CONFIG.to_dict(),
            ["pool_size", "pool_steps", "noising", "pool_sampler", "t_max", "updates", "batch", "seed"],
        ),
        ("08_molecule_classifiers", classifier_sets.CLASSIFIER_CONFIG.to_dict(), ["batch_per_base", "warmup_steps"]),
    ],
)
def test_training_notebook_defaults_are_the_pinned_settings(name, pinned, keys):
    assert _same(defaults(name), pinned, keys) == {}


def test_other_pinned_settings():
    assert defaults("05_mnist_classifiers")["judge_epochs"] == build_mnist.JUDGE_EPOCHS
    assert {"blocks_per_level": defaults("04_mnist_base_diffusion")["blocks_per_level"]} == build_mnist.BASE_ARCH
    d7 = defaults("07_molecule_base_gflownets")
    assert (d7["steps"], d7["max_frags"], d7["preset"]) == (
        build_molecules.BASE_STEPS,
        build_molecules.MAX_FRAGS,
        "cpu",
    )
    d8 = defaults("08_molecule_classifiers")
    assert d8["steps"] is None and d8["beta"] == classifier_sets.CLASSIFIER_BETA == "conditional"  # None: pinned steps
    assert {"width": d8["width"], "n_layers": d8["n_layers"], "n_heads": 2} == classifier_sets.CLASSIFIER_ARCH


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path):
    """Regression: a comment holding "=" made papermill skip a parameter (it could not be set)."""
    import papermill

    names = [p for p in papermill.inspect_notebook(str(path))]
    assert names == list(defaults(path.stem)), path.stem
