import math

import pytest
import torch

from sculpting.algebra import Composition, l1_distance, parse_composition


def _norm(p):
    return p / p.sum()


@pytest.fixture
def bases():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(3, 50, generator=g, dtype=torch.float64) + 0.01
    return p / p.sum(1, keepdim=True)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 0.5, 0.95])
def test_two_base_closed_forms(bases, alpha):
    p1, p2 = bases[0], bases[1]
    den = alpha * p1 + (1 - alpha) * p2
    expected = {
        "harmonic": p1 * p2 / den,
        "contrast": p1**2 / den,
        "reverse_contrast": p2**2 / den,
        "mixture": alpha * p1 + (1 - alpha) * p2,
        "p1": p1,
        "p2": p2,
    }
    lp = bases[:2].log()
    for op, e in expected.items():
        got = Composition.two_base(op, alpha).target_log_prob(lp).exp()
        assert torch.allclose(got, _norm(e), atol=1e-12), op


def test_three_base_closed_forms(bases):
    p1, p2, p3 = bases
    s = p1 + p2 + p3
    cases = {
        (1, 2): p1 * p2 / s,
        (2, 3): p2 * p3 / s,
        (1, 2, 3): p1 * p2 * p3 / s**2,
        (1, 1): p1**2 / s,
        (3, 3, 3): p3**3 / s**2,
        (2,): p2,
        (): s,
    }
    for y, e in cases.items():
        got = Composition.uniform(3, y).target_log_prob(bases.log()).exp()
        assert torch.allclose(got, _norm(e), atol=1e-12), y


def test_log_space_survives_tiny_probabilities():
    lp = torch.tensor([[-800.0, -801.0], [-802.0, -800.5]], dtype=torch.float64)
    t = Composition.two_base("harmonic").target_log_prob(lp)
    assert torch.isfinite(t).all() and math.isclose(float(t.exp().sum()), 1.0, rel_tol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_alpha_outside_open_interval_is_rejected(alpha):
    with pytest.raises(ValueError, match="alpha"):
        Composition.two_base("harmonic", alpha)


def test_label_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="outside 1..3"):
        Composition.uniform(3, (1, 4))
    with pytest.raises(ValueError, match="outside 1..2"):
        Composition(2, (0,))


def test_unknown_operation_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown operation"):
        Composition.two_base("sum")
    with pytest.raises(ValueError, match="shape"):
        Composition.two_base("harmonic").target_log_prob(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="positive weights"):
        Composition(2, (1, 2), ((0.5, 0.5), (0.7, 0.7)))


def test_labels_use_symbols():
    assert Composition.two_base("harmonic").label(["a", "b"]) == "a ⊗ b (α=0.5)"  # the weight is always named, 0.5 too
    assert "◑" in Composition.two_base("contrast", 0.05).label()
    assert "◐" in Composition.two_base("reverse_contrast").label()
    assert "α=0.05" in Composition.two_base("contrast", 0.05).label()
    assert Composition.uniform(3, (1, 2, 3)).label() == "y=123"
    assert parse_composition("y=12", 3).observations == (1, 2)


def test_l1_distance():
    p = torch.tensor([0.5, 0.5]).log()
    q = torch.tensor([1.0, 1e-300]).log()
    assert abs(l1_distance(p, q) - 1.0) < 1e-12


def test_the_operators_figure_shows_what_each_operator_does():
    """docs/algebra.md's figure: the harmonic mean puts most mass on the mode both bases share, the
    contrast on p1's own mode (controls: the mixture and the reverse contrast do not)."""
    from sculpting.lab.concepts import PANELS, plot_operators, two_densities

    x, lp = two_densities()
    shared, own1 = (x - 0.5).abs() < 1.0, (x + 2.0).abs() < 1.0
    mass = {c.name: c.target_log_prob(lp).exp() for c, _ in PANELS}
    assert mass["harmonic"][shared].sum() > 0.9 and mass["mixture"][shared].sum() < 0.6
    assert mass["contrast"][own1].sum() > 0.5 and mass["reverse_contrast"][own1].sum() < 0.05
    fig = plot_operators()
    assert len(fig.axes) == 4 and all(ax.get_title() and ax.get_xlabel() == "x" for ax in fig.axes)
