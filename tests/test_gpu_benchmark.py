"""The synchronisation counter of benchmarks/gpu.py: it counts the package's own host reads —
explicit (item, bool, tolist, …) and implicit (boolean-mask indexing, one-argument where) — and
nothing outside the package; it sees a change in the number of reads."""

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_counter_counts_the_package_reads_only(gpu, monkeypatch):
    import sculpting.infrastructure.runtime as runtime

    def reads(x):
        mask = x > 0
        a = x.sum().item()  # explicit
        b = bool(mask.any())  # explicit
        c = x[mask]  # implicit: boolean mask
        d = torch.where(mask)  # implicit: one-argument where
        e = x[1:]  # no read
        return a, b, c, d, e

    reads.__code__ = reads.__code__.replace(co_filename=runtime.__file__)  # as if written in the package
    monkeypatch.setattr(runtime, "reads", reads, raising=False)
    x = torch.tensor([1.0, -1.0, 2.0], device="cpu")
    with gpu.SyncCounter() as counter:
        runtime.reads(x)
        x.sum().item()  # outside the package: not counted
        x[x > 0]
    assert (counter.count, counter.implicit) == (2, 2)
    assert len(counter.sites) == 4 and all(site.startswith("infrastructure/runtime.py:") for site in counter.sites)


def test_the_counter_sees_the_grid_samplers_exit_tests(gpu, monkeypatch):
    """Testing "all stopped?" after every trajectory step (the control) reads the host more often
    than every EXIT_TEST_EVERY steps: the counter sees the difference."""
    from sculpting.gflownet import rollout

    counts = {}
    for every in (1, rollout.EXIT_TEST_EVERY):
        monkeypatch.setattr(rollout, "EXIT_TEST_EVERY", every)
        _, (explicit, _) = gpu._train("grid-base", 3, "cpu", ["--base", "shubert"], count_syncs=True)
        counts[every] = explicit
    assert counts[1] > counts[rollout.EXIT_TEST_EVERY] > 0, counts
