"""The amortised successor head and the sampler that proposes from it (sculpting.gflownet.amortised).

On the tiny enumerated fragment world with a random graph classifier: the head's rows line up with
the true successors, distillation lowers its KL, the sampler's per-step law is exactly the
closed-form π_K (module docs) — π itself when the envelope holds, measurably not π when it fails.
"""

import pytest
import torch

pytest.importorskip("rdkit")

from smc_checks import multinomial_l1_bound  # noqa: E402

from sculpting.algebra import Composition  # noqa: E402
from sculpting.gflownet.classifier import ClassifierQ  # noqa: E402
from sculpting.gflownet.guidance import GuidedPolicy  # noqa: E402

FRAGS = [("C", [0]), ("O", [0]), ("CC", [0, 1]), ("CCC", [0, 1, 2])]


class _Policy:
    """A random but fixed base policy (softmax of seeded logits over the legal actions)."""

    def __init__(self, env, seed):
        self.env, self.seed = env, seed

    def log_probs(self, states):
        from sculpting.gflownet.policy import masked_log_softmax

        h = (states.long() * torch.arange(1, states.shape[1] + 1)).sum(1, keepdim=True)
        a = torch.arange(self.env.n_actions)[None]
        logits = torch.sin(0.37 * h * (self.seed + 1) + 1.3 * a) * 2.0
        return masked_log_softmax(logits, self.env.action_mask(states))


@pytest.fixture(scope="module")
def setup():
    from sculpting.domains.molecules.classifier import make_graph_classifier
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.successor_head import SuccessorHead

    env = FragmentGraphEnv(4, fragments=FRAGS)
    clf = make_graph_classifier(env, 2, width=16, n_layers=1, seed=0)
    with torch.no_grad():  # a sharper random classifier: guidance that matters
        clf.nonterminal_head.weight.mul_(8.0)
    bases = [_Policy(env, 0), _Policy(env, 1)]
    # states: random walks of the first base
    from sculpting.gflownet.rollout import sample_trajectories

    tr = sample_trajectories(env, bases[0], 64, 0.0, torch.Generator().manual_seed(0))
    states = tr.states[:, :-1][tr.valid]
    states = torch.unique(states, dim=0)
    return env, clf, bases, states, SuccessorHead(clf, 32, seed=0)


def _policy(setup, comp, head, form="anchored"):
    env, clf, bases, _, _ = setup
    pol = GuidedPolicy(bases, ClassifierQ(clf, comp), form)
    pol.successor_head = head
    return pol


def test_head_rows_are_the_valid_successors_and_distillation_fits(setup):
    from sculpting.domains.molecules.successor_head import fit_successor_head, successor_targets

    env, clf, bases, states, head = setup
    la = torch.tensor(0.0)
    rows, acts, joint, term = head(states, la)
    t_rows, t_acts, t_joint, t_term = successor_targets(clf, states, la)
    assert torch.equal(rows, t_rows) and torch.equal(acts, t_acts)
    assert joint.shape == t_joint.shape and term.shape == t_term.shape == (len(states), 2)
    assert torch.allclose(joint.exp().sum(1), torch.ones(len(joint)), atol=1e-5)

    class _Base:  # fit_successor_head samples parents from β-conditional bases
        def __init__(self, p):
            self.p, self.env = p, p.env

        def at_beta(self, beta):
            return self.p

    fitted, report = fit_successor_head(
        clf, [_Base(b) for b in bases], [(0.5, None)], n_trajectories=32, epochs=15, hidden=32, progress=False, seed=1
    )
    _, untrained = fit_successor_head(
        clf, [_Base(b) for b in bases], [(0.5, None)], n_trajectories=32, epochs=0, hidden=32, progress=False, seed=1
    )
    assert report["kl_successor"][0] < 0.5 * untrained["kl_successor"][0], (report, untrained)


@pytest.mark.parametrize("envelope", [0.25, 1e9])
@pytest.mark.parametrize(
    "comp", [Composition.two_base("harmonic", 0.5), Composition.two_base("contrast", 0.05)], ids=lambda c: c.label()
)
@pytest.mark.parametrize("form", ["anchored", "paper"])
def test_amortised_sampler_draws_its_closed_form_law(setup, comp, envelope, form):
    """Per-state action frequencies equal π_K; with a huge envelope π_K = π (the exact law), with
    K = 0.25 and an untrained head the envelope fails and π_K measurably differs from π."""
    from sculpting.gflownet.amortised import amortised_sample_actions, sampler_law, step_deviation
    from sculpting.gflownet.rejection import SamplerStats

    env, _, _, states, head = setup
    pol = _policy(setup, comp, head, form)
    mask = env.action_mask(states)
    sel = states[mask.sum(1) >= 4][:5]
    pi, pi_k, _ = sampler_law(pol, sel, envelope)
    n = 6000
    stats = SamplerStats()
    acts = amortised_sample_actions(
        pol, sel.repeat_interleave(n, 0), torch.Generator().manual_seed(2), envelope=envelope, rounds=100, stats=stats
    )
    freq = torch.zeros_like(pi)
    freq.index_put_(
        (torch.arange(len(sel)).repeat_interleave(n), acts), torch.ones(len(acts), dtype=pi.dtype), accumulate=True
    )
    freq /= n
    l1 = (freq - pi_k.exp()).abs().sum(1)
    assert (l1 < multinomial_l1_bound(pi_k.exp(), n, sds=5.0)).all(), l1  # noise alone, per state
    assert stats.fallback_states < 0.002 * len(acts)  # (a fallback draws from π, not π_K)
    dev = step_deviation(pol, sel, envelope)
    if envelope > 1e6:
        assert torch.allclose(pi_k.exp(), pi.exp(), atol=1e-9)
        assert dev["kl_sampler"] < 1e-9 and stats.envelope_violations == 0
    else:
        assert dev["kl_sampler"] > 1e-3 and stats.envelope_violations > 0
        assert (pi_k.exp() - pi.exp()).abs().sum(1).max() > 0.05


def test_amortised_sampler_is_reachable_and_checked(setup):
    import sculpting as sc
    from sculpting.gflownet.rejection import action_sampler_for

    env, clf, bases, _, head = setup
    pol = _policy(setup, Composition.two_base("harmonic", 0.5), None)
    with pytest.raises(ValueError, match="successor head"):
        action_sampler_for(pol, "amortised")
    pol.successor_head = head
    assert action_sampler_for(pol, "amortised") is not None
    mix = _policy(setup, Composition.two_base("mixture", 0.5), head)  # no observation: full policy, no scoring
    x = sc.sample(mix, 8, seed=0, sampler="amortised")
    assert env.is_valid_terminal(x).shape == (8,) or x.shape[0] == 8
    other = type(clf)(env, 2, 2, body=type(clf.body)(env, 16, 1, 2), seed=1)
    with pytest.raises(ValueError, match="another classifier"):
        sc.compose(bases, other, "harmonic", successor_head=head, check=False)


def test_shipped_heads_load_bound_to_their_classifiers_and_the_panel_choice_uses_alpha():
    from molecule_data import require_data

    require_data()
    from sculpting.domains.molecules.experiments import composition_policy
    from sculpting.domains.molecules.io import load_molecule_models

    m = load_molecule_models()
    assert set(m["successor_heads"]) == set(m["classifiers"]) == {"seh_sa", "seh_sa_qed"}
    for name, head in m["successor_heads"].items():
        assert head.classifier is m["classifiers"][name]
    low = composition_policy(m, "contrast", alpha=0.05)
    high = composition_policy(m, "contrast", alpha=0.5)
    assert low.successor_head is m["successor_heads"]["seh_sa"]
    assert low.q.logit_alpha != high.q.logit_alpha  # the panel's α reaches the composition
