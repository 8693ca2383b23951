"""Regression tests of the reliability issues: each fails on the code before its fix."""
import math

import pytest
import torch

import sculpting as sc
from sculpting.algebra import Composition


# ------------------------------------------------------------------ algebra validation
@pytest.mark.parametrize("make, match", [
    (lambda: Composition(2.7, (1,)), "n_bases must be an integer"),
    (lambda: Composition(2, (1.9,)), "observation label must be an integer"),
    (lambda: Composition(2, (1, 2), ((math.nan, 0.5), (0.5, 0.5))), "positive weights"),
    (lambda: Composition(2, (1, 2), ((0.5, 0.5), (math.inf, 0.5))), "positive weights"),
])
def test_bad_compositions_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("lp, match", [
    (torch.tensor([[0, 1], [1, 0]]), "floating point"),
    (torch.tensor([[math.nan, 0.0], [0.0, 0.0]]), "NaN or \\+inf"),
    (torch.tensor([[math.inf, 0.0], [0.0, 0.0]]), "NaN or \\+inf"),
    (torch.tensor([[-math.inf, -math.inf], [0.0, 0.0]]), "no mass"),
    (torch.tensor([[0.0, -math.inf], [-math.inf, 0.0]]), "no support"),
])
def test_bad_base_log_probs_are_refused(lp, match):
    with pytest.raises(ValueError, match=match):
        Composition.two_base("harmonic").target_log_prob(lp)


def test_mixture_of_disjoint_bases_is_fine():
    lp = torch.tensor([[0.0, -math.inf], [-math.inf, 0.0]])
    assert torch.allclose(Composition.two_base("mixture", 0.3).target_log_prob(lp).exp(), torch.tensor([0.3, 0.7]))


def test_infinite_gamma_is_refused():
    bases, clf = sc.load_pretrained("mnist/M1_M2")
    for g in (math.inf, math.nan, -1.0):
        with pytest.raises(ValueError, match="gamma must be a finite number"):
            sc.compose(bases, clf, "contrast", gamma=g)
