import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")
# SCULPTING_TEST_NO_MKLDNN=1 runs the suite without oneDNN kernels (with ATEN_CPU_CAPABILITY=default
# as well: the unvectorised path), to check that no tolerance leans on one CPU's kernels
# (docs/testing.md, "Kernels")
if os.environ.get("SCULPTING_TEST_NO_MKLDNN") == "1":
    torch.backends.mkldnn.enabled = False


@pytest.fixture
def small_env():
    from sculpting.domains.grid import GridEnv

    return GridEnv(8, 2, "corners")


def random_table(env, scale=1.5, seed=0):
    from sculpting.gflownet.policy import masked_log_softmax

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(env.n_states, env.n_actions, generator=g, dtype=torch.float64) * scale
    return masked_log_softmax(logits, env.action_mask(env.all_states()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report as ``item.rep_<phase>`` (the browser test screenshots failures)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def pytest_collection_modifyitems(config, items):
    """The documentation site's tests run last: they render the notebooks the notebook tests executed."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_docs.py"))
