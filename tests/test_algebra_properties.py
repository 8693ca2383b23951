"""Property-based tests of the sculpting algebra (hypothesis): random bases with −inf entries,
priors, observation tuples and α; identities of docs/algebra.md."""

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sculpting.algebra import Composition, parse_composition

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEG = -float("inf")


def ratio(num, den):
    """num / den with 0 where den = 0 (points no base produces carry no mass)."""
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


@st.composite
def bases(draw, m=None):
    """``[m, N]`` normalised log-probabilities; point 0 is in every base's support (overlap)."""
    m = m or draw(st.integers(2, 4))
    n = draw(st.integers(2, 7))
    vals = draw(
        st.lists(st.lists(st.one_of(st.floats(-8, 3), st.just(NEG)), min_size=n, max_size=n), min_size=m, max_size=m)
    )
    lp = torch.tensor(vals, dtype=torch.float64)
    lp[:, 0] = torch.tensor(draw(st.lists(st.floats(-8, 3), min_size=m, max_size=m)), dtype=torch.float64)
    return torch.log_softmax(lp, dim=1)


@st.composite
def priors(draw, m, n_slots):
    rows = []
    for _ in range(n_slots):
        w = draw(st.lists(st.floats(0.05, 1.0), min_size=m, max_size=m))
        rows.append(tuple(x / sum(w) for x in w))
    return tuple(rows)


def direct(lp, obs, pri):
    """p̄(x) Π_k ω^k_{y_k} p_{y_k}(x) / Σ_j ω^k_j p_j(x), normalised (in probability space)."""
    p = lp.exp()
    w = torch.tensor(pri, dtype=torch.float64)
    out = (w[0][:, None] * p).sum(0)
    for k, y in enumerate(obs):
        out = ratio(out * w[k][y - 1] * p[y - 1], (w[k][:, None] * p).sum(0))
    return out / out.sum()


@SETTINGS
@given(data=st.data())
def test_target_is_the_normalised_posterior_formula(data):
    lp = data.draw(bases())
    m = lp.shape[0]
    obs = tuple(data.draw(st.lists(st.integers(1, m), min_size=0, max_size=3)))
    pri = data.draw(priors(m, max(len(obs), 1)))
    c = Composition(m, obs, pri)
    t = c.target_log_prob(lp)
    assert not torch.isnan(t).any()
    assert abs(float(t.exp().sum()) - 1) < 1e-9
    assert torch.allclose(t.exp(), direct(lp, obs, pri), atol=1e-9)
    assert bool(torch.isfinite(t[0]))  # the shared point keeps mass


@SETTINGS
@given(lp=bases(m=2), alpha=st.floats(0.01, 0.99))
def test_two_base_identities(lp, alpha):
    p1, p2 = lp.exp()
    den = alpha * p1 + (1 - alpha) * p2
    want = {
        "harmonic": ratio(p1 * p2, den),
        "contrast": ratio(p1**2, den),
        "reverse_contrast": ratio(p2**2, den),
        "mixture": den,
    }
    for op, f in want.items():
        got = parse_composition(op, 2, alpha).target_log_prob(lp).exp()
        assert torch.allclose(got, f / f.sum(), atol=1e-9), op


@SETTINGS
@given(lp=bases(m=3))
def test_three_base_identities(lp):
    p = lp.exp()
    s = p.sum(0)
    want = {
        (1, 2, 3): ratio(p[0] * p[1] * p[2], s**2),
        (2, 2): ratio(p[1] ** 2, s),
        (1, 3): ratio(p[0] * p[2], s),
        (3, 3, 3): ratio(p[2] ** 3, s**2),
    }
    for obs, f in want.items():
        assert torch.allclose(Composition.uniform(3, obs).target_log_prob(lp).exp(), f / f.sum(), atol=1e-9), obs


@SETTINGS
@given(data=st.data())
def test_composition_of_a_composition(data):
    lp = data.draw(bases(m=3))
    inner_obs = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    op = data.draw(st.sampled_from(["harmonic", "contrast", "reverse_contrast", "mixture"]))
    alpha = data.draw(st.floats(0.05, 0.95))
    inner = Composition.uniform(3, inner_obs).target_log_prob(lp)
    outer = parse_composition(op, 2, alpha).target_log_prob(torch.stack([inner, lp[2]]))
    p1, p2 = inner.exp(), lp[2].exp()
    den = alpha * p1 + (1 - alpha) * p2
    f = {
        "harmonic": ratio(p1 * p2, den),
        "contrast": ratio(p1**2, den),
        "reverse_contrast": ratio(p2**2, den),
        "mixture": den,
    }[op]
    assert abs(float(outer.exp().sum()) - 1) < 1e-9
    assert torch.allclose(outer.exp(), f / f.sum(), atol=1e-9)


@SETTINGS
@given(bad=st.sampled_from([float("nan"), float("inf"), -0.2, 0.0, 1.0, 1.5]))
def test_bad_alpha_and_priors_are_refused(bad):
    import pytest

    with pytest.raises(ValueError):
        Composition.two_base("harmonic", bad)
    with pytest.raises(ValueError):
        Composition(2, (1, 2), ((0.5, 0.5), (bad, 1 - bad if math.isfinite(bad) else 0.5)))
