"""fork_map: independent jobs in forked processes (sculpting.forked)."""
import os

import pytest
import torch

from sculpting.forked import fork_map


def test_results_come_back_in_item_order_from_other_processes():
    big = torch.arange(10.0)  # shared with the children by fork, not pickled

    def job(i):
        return i, os.getpid(), big * i, torch.get_num_threads()
    out = fork_map(job, range(5), workers=2)
    assert [o[0] for o in out] == list(range(5))
    assert all(o[1] != os.getpid() for o in out)
    assert all(torch.equal(o[2], big * i) for i, o in enumerate(out))
    assert {o[3] for o in out} == {1}
    assert fork_map(job, range(3), workers=1)[2][1] == os.getpid()  # one worker: in this process


def test_a_failing_or_dying_job_is_reported():
    def job(i):
        if i == 1:
            raise ValueError("bad item")
        return i
    with pytest.raises(RuntimeError, match="job 1: ValueError: bad item"):
        fork_map(job, range(3), workers=2)

    def dies(i):
        if i == 0:
            os._exit(3)
        return i
    with pytest.raises(RuntimeError, match="job 0: the worker process died"):
        fork_map(dies, range(2), workers=2)
    with pytest.raises(ValueError, match="workers must be"):
        fork_map(dies, range(2), workers=0)
