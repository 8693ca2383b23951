import math

import pytest
import torch

from sculpting.algebra import Composition, l1_distance
from sculpting.domains.grid import GridEnv
from sculpting.domains.grid.experiments import guided_distribution
from sculpting.gflownet.classifier import ClassifierQ, SculptingClassifier
from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
from sculpting.gflownet.exact import exact_policy_from_reward
from sculpting.gflownet.policy import TabularPolicy


def test_exchangeable_head_has_ten_classes_and_normalises():
    env = GridEnv(6, 2, "corners")
    clf = SculptingClassifier(env, n_bases=3, n_slots=3)
    assert clf.nonterminal_head.out_features == 10
    j = clf.nonterminal_log_joint(env.all_states()[:5])
    assert j.shape == (5, 27)
    assert torch.allclose(torch.logsumexp(j, 1), torch.zeros(5), atol=1e-5)
    jj = j.reshape(5, 3, 3, 3)  # exchangeable: invariant under permutations of the slots
    assert torch.allclose(jj, jj.permute(0, 2, 1, 3)) and torch.allclose(jj, jj.permute(0, 3, 2, 1))


def test_alpha_model_terminal_prior_shift():
    env = GridEnv(6, 2, "corners")
    clf = SculptingClassifier(env, n_bases=2, n_slots=2)
    s = env.all_states()[:7]
    o = clf.terminal_log_posterior(s)
    alpha = 0.2
    _, q_y = ClassifierQ(clf, Composition.two_base("reverse_contrast", alpha)).terminal(s)
    o_logit = o[:, 1] - o[:, 0]  # p(y=2|x) = σ(o)
    expected = torch.log(torch.sigmoid(o_logit)) + torch.log(torch.sigmoid(o_logit - math.log(alpha / (1 - alpha))))
    assert torch.allclose(q_y, expected, atol=1e-5)
    with pytest.raises(ValueError, match="logit_alpha"):
        clf.nonterminal_log_joint(s)


def test_classifier_rejects_incompatible_compositions():
    env = GridEnv(6, 2, "corners")
    with pytest.raises(ValueError, match="classifier is for 2 bases"):
        ClassifierQ(SculptingClassifier(env, 2, 2), Composition.uniform(3, (1, 2)))
    with pytest.raises(ValueError, match="uniform priors"):
        ClassifierQ(SculptingClassifier(env, 2, 2, alpha_conditioned=False), Composition.two_base("harmonic", 0.2))
    with pytest.raises(ValueError, match="models 2 observations"):
        ClassifierQ(SculptingClassifier(env, 3, 2), Composition.uniform(3, (1, 2, 3)))


def test_training_learns_the_composition():
    """On a 6×6 grid, a short training brings the guided HM close to its exact target."""
    torch.manual_seed(0)
    env = GridEnv(6, 2, "corners")
    bases = [
        TabularPolicy(env, exact_policy_from_reward(env, GridEnv(6, 2, r, 0.5).log_reward_table))
        for r in ("symmetric_shubert", "diag_sigmoid")
    ]
    clf = SculptingClassifier(env, 2, 2, hidden=64)
    comps = [Composition.two_base("harmonic", a) for a in (0.2, 0.5, 0.8)] + [Composition.two_base("contrast")]
    before = max(l1_distance(*guided_distribution(bases, c, clf, "anchored")) for c in comps)
    train_classifier(
        clf,
        bases,
        ClassifierTrainConfig(steps=1500, batch_per_base=64, lr=3e-3, warmup_steps=300, alpha_groups=2),
        progress=False,
    )
    after = {
        (c.label(), form): l1_distance(*guided_distribution(bases, c, clf, form))
        for c in comps
        for form in ("anchored", "paper")
    }
    assert before > 0.2
    assert max(after.values()) < 0.15, after


def test_training_rejects_mismatched_bases():
    env, other = GridEnv(6, 2, "corners"), GridEnv(8, 2, "corners")
    clf = SculptingClassifier(env, 2, 2)
    bases = [TabularPolicy(other, exact_policy_from_reward(other, other.log_reward_table))] * 2
    with pytest.raises(ValueError, match="classifier on"):
        train_classifier(clf, bases, ClassifierTrainConfig(steps=1), progress=False)


def test_exact_estimator_is_the_limit_of_the_sampled_losses():
    """On an enumerable grid the DP losses equal the sampled losses averaged over many trajectories."""
    from sculpting.labels import slot_tail_weights
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.classifier import SculptingClassifier
    from sculpting.gflownet.classifier_training import (
        ClassifierTrainConfig,
        _draw_batch,
        _ExactLosses,
        _nonterminal_loss,
    )
    from sculpting.gflownet.policy import GFlowNet, policy_table

    env = GridEnv(6, 2, "circle1")
    torch.manual_seed(3)
    bases = [GFlowNet(env, hidden=16) for _ in range(3)]
    clf = SculptingClassifier(env, 3, 3, hidden=16)
    tables = [policy_table(env, b) for b in bases]
    cfg = ClassifierTrainConfig(batch_per_base=20000, alpha_groups=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        l_term, l_nt = _ExactLosses(clf, env, tables)(clf, clf, cfg, gen)
        d = _draw_batch(env, bases, tables, cfg, gen)
        tail = slot_tail_weights(clf.terminal_log_posterior(d["terminal"]), d["logit_alpha"], 3, False)
        s_term = -clf.terminal_log_posterior(d["terminal"])[torch.arange(len(d["labels"])), d["labels"]].mean()
        s_nt = _nonterminal_loss(clf, env, d, tail, cfg, env.all_states())
    assert abs(float(l_term / s_term) - 1) < 0.01 and abs(float(l_nt / s_nt) - 1) < 0.01, (l_term, s_term, l_nt, s_nt)


class _TemperatureFamily:
    """Bases indexed by a context c: the exact GFlowNet of R_i^c, for c in ``values``."""

    def __init__(self, env, rewards, values=(0.5, 2.0)):
        self.values = values
        self.tables = {
            c: [exact_policy_from_reward(env, c * GridEnv(6, 2, r, 0.5).log_reward_table) for r in rewards]
            for c in values
        }

    def sample(self, generator):
        return self.values[int(torch.randint(len(self.values), (), generator=generator))]

    def bind(self, base, c):
        return TabularPolicy(base.env, self.tables[c][base.index])


def _context_guided_l1(env, fam, clf, comp, c_true, c_input):
    from sculpting.gflownet.exact import terminal_log_probs
    from sculpting.gflownet.guidance import GuidedPolicy

    bases = [TabularPolicy(env, t) for t in fam.tables[c_true]]
    g = GuidedPolicy(bases, ClassifierQ(clf, comp, c_input), "anchored")
    target = comp.target_log_prob(torch.stack([terminal_log_probs(env, t) for t in fam.tables[c_true]]))
    return l1_distance(terminal_log_probs(env, g.table_on(env)), target)


def test_context_conditioned_classifier_serves_every_member_of_a_base_family():
    """One classifier for bases at two temperatures (context c = β): with the right c as input the
    guided compositions are close to exact at both c; the same network fed the other c is not,
    so the context is really used."""
    torch.manual_seed(0)
    env = GridEnv(6, 2, "corners")
    fam = _TemperatureFamily(env, ("symmetric_shubert", "diag_sigmoid"))
    from types import SimpleNamespace

    members = [SimpleNamespace(env=env, index=i) for i in range(2)]
    clf = SculptingClassifier(env, 2, 2, hidden=64, context_conditioned=True)
    with pytest.raises(ValueError, match="pass context"):
        clf.terminal_log_posterior(env.all_states()[:3])
    with pytest.raises(ValueError, match="needs context"):
        train_classifier(clf, members, ClassifierTrainConfig(steps=1), progress=False)
    with pytest.raises(ValueError, match="pass the bases' context"):
        ClassifierQ(clf, Composition.two_base("harmonic"))
    train_classifier(
        clf,
        members,
        ClassifierTrainConfig(steps=1500, batch_per_base=64, lr=3e-3, warmup_steps=300),
        progress=False,
        context=fam,
    )
    comps = [Composition.two_base("harmonic", 0.5), Composition.two_base("contrast", 0.5)]
    for c, other in ((0.5, 2.0), (2.0, 0.5)):
        right = max(_context_guided_l1(env, fam, clf, comp, c, c) for comp in comps)
        wrong = max(_context_guided_l1(env, fam, clf, comp, c, other) for comp in comps)
        assert right < 0.2 and wrong > right + 0.1, (c, right, wrong)
