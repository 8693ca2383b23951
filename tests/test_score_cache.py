"""The classifier-output cache of guided GFlowNet policies (sculpting.gflownet.score_cache)."""

import pytest
import torch

import sculpting as sc
from sculpting.gflownet.score_cache import ScoreCache


def _rows(n, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randint(-3, 50, (n, d), generator=g),
        torch.randn(n, 2, generator=g).double(),
        torch.randn(n, generator=g).double(),
    )


def test_lookup_returns_what_was_stored_and_misses_the_rest():
    s, f, y = _rows(40)
    c = ScoreCache(100, 2)
    c.store(s[:30], f[:30], y[:30])
    hit, f2, y2 = c.lookup(s)
    assert hit[:30].all() and not hit[30:].any()
    assert torch.equal(f2[:30], f[:30]) and torch.equal(y2[:30], y[:30])
    assert torch.isinf(f2[30:]).all() and torch.isinf(y2[30:]).all()
    assert (c.hits, c.misses) == (30, 10)


def test_a_hash_collision_is_a_miss_not_a_wrong_value(monkeypatch):
    s, f, y = _rows(2)
    c = ScoreCache(10, 2)
    monkeypatch.setattr(c, "_keys", lambda states: [7] * len(states))  # every state collides
    c.store(s[:1], f[:1], y[:1])
    hit, _, _ = c.lookup(s[1:])
    assert not hit.any()
    hit, f2, _ = c.lookup(s[:1])
    assert hit.all() and torch.equal(f2, f[:1])


def test_capacity_overflow_starts_again_and_an_optimiser_step_invalidates():
    s, f, y = _rows(30)
    c = ScoreCache(20, 2)
    c.store(s[:15], f[:15], y[:15])
    c.store(s[15:], f[15:], y[15:])  # 30 > 20: emptied, then the 15 new rows kept
    assert len(c) == 15 and not c.lookup(s[:15])[0].any() and c.lookup(s[15:])[0].all()
    w = torch.nn.Parameter(torch.ones(3))
    c = ScoreCache(20, 2, [w])
    c.store(s[:5], f[:5], y[:5])
    assert c.lookup(s[:5])[0].all()
    with torch.no_grad():
        w.add_(1.0)  # in place, like an optimiser step
    assert not c.lookup(s[:5])[0].any() and len(c) == 0
    with pytest.raises(ValueError, match="capacity"):
        ScoreCache(0, 2)


def test_guided_policy_with_cache_equals_without():
    """Log-probabilities of a learned grid composition: the second call is served from the cache
    (hits) and equals the first; a policy without a cache computes the same numbers."""
    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    cached = sc.compose(bases, clf, "harmonic", alpha=0.5)
    assert cached.cache is not None
    plain = sc.compose(bases, clf, "harmonic", alpha=0.5)
    plain.cache = None
    states = bases[0].env.all_states()[::7]
    with torch.no_grad():
        first = cached.log_probs(states)
        hits = cached.cache.hits
        second = cached.log_probs(states)
        ref = plain.log_probs(states)
    assert cached.cache.hits > hits + len(states)
    assert torch.equal(first, second)
    assert torch.allclose(first, ref, atol=1e-9, equal_nan=True)
