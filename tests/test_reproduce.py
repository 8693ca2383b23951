"""The reproduction command: resumability and the summary (its notebook runs are the papermill tests)."""

import json
import os
import time

import pytest

from sculpting.lab import reproduce


def test_up_to_date_logic_keys_on_contents_and_parameters(tmp_path):
    name = "03_grid_sculpting"
    assert not reproduce.is_up_to_date(name, tmp_path)
    (tmp_path / name).mkdir()
    m = tmp_path / name / "metrics.json"
    m.write_text('{"x": 1}')
    assert not reproduce.is_up_to_date(name, tmp_path)  # no key: never trusted, whatever its time
    os.utime(m, (time.time() + 1e6, time.time() + 1e6))
    assert not reproduce.is_up_to_date(name, tmp_path)
    reproduce.stamp(name, tmp_path, None)
    assert reproduce.is_up_to_date(name, tmp_path) and json.loads(m.read_text())["x"] == 1
    assert not reproduce.is_up_to_date(name, tmp_path, {"latency_repeats": 2})  # other parameters
    assert reproduce.run_key(name, None) != reproduce.run_key("02_grid_classifiers", None)


def test_smoke_runs_never_touch_figures(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(reproduce, "run_notebook", lambda name, root, params=None: ran.append((name, root)) or 1.0)
    with pytest.raises(SystemExit, match="never writes into figures"):
        reproduce.main(["--smoke", "--root", str(reproduce.ROOT / "figures"), "--only", "03"])
    assert ran == []
    reproduce.main(["--smoke", "--root", str(tmp_path), "--only", "03"])
    assert ran == [("03_grid_sculpting", tmp_path)]
    monkeypatch.setattr(reproduce, "ROOT", tmp_path / "repo")  # the default root, away from this checkout
    reproduce.main(["--smoke", "--only", "03"])
    assert ran[-1] == ("03_grid_sculpting", tmp_path / "repo" / "runs" / "smoke")


def test_main_skips_up_to_date_notebooks_and_writes_summary(tmp_path, monkeypatch):
    ran, seen = [], []
    monkeypatch.setattr(
        reproduce, "run_notebook", lambda name, root, params=None: ran.append(name) or seen.append(params) or 1.0
    )
    monkeypatch.setattr(reproduce, "is_up_to_date", lambda name, root, params=None: name.startswith("03"))
    (tmp_path / "03_grid_sculpting").mkdir()
    (tmp_path / "03_grid_sculpting" / "metrics.json").write_text(
        json.dumps(
            {
                "shubert_sigmoid": {
                    "harmonic": {
                        "0.5": {
                            "l1_anchored_learned": 0.02,
                            "l1_paper_learned": 0.03,
                            "l1_anchored_oracle": 1e-16,
                            "l1_paper_oracle": 0.01,
                        }
                    }
                },
                "circles": {
                    "y=123": {
                        "l1_anchored_learned": 0.04,
                        "l1_paper_learned": 0.035,
                        "l1_anchored_oracle": 1e-16,
                        "l1_paper_oracle": 0.014,
                    }
                },
            }
        )
    )
    reproduce.main(["--root", str(tmp_path), "--only", "02", "03"])
    assert ran == ["02_grid_classifiers"]
    summary = (tmp_path / "summary.md").read_text()
    assert "harmonic (α=0.5) | 0.0200 | 0.0300" in summary and "circles y=123 | 0.0400" in summary
    assert json.loads((tmp_path / "timing.json").read_text()) == {"02_grid_classifiers": {"seconds": 1.0, "threads": 1}}
    ran.clear()
    reproduce.main(["--root", str(tmp_path), "--only", "03", "--force", "--threads", "2"])
    assert ran == ["03_grid_sculpting"] and seen[-1] == {"threads": 2}
    assert json.loads((tmp_path / "timing.json").read_text())["03_grid_sculpting"] == {"seconds": 1.0, "threads": 2}
    assert "03_grid_sculpting: 0.0 min (2 threads)" in (tmp_path / "summary.md").read_text()
    time.sleep(0)


def test_timing_of_a_run_side_by_side_is_kept(tmp_path, monkeypatch):
    """Two ``--only`` runs on disjoint notebooks share timing.json: neither drops the other's entry."""

    def other_process_finishes_meanwhile(name, root, params=None):
        reproduce.record_timing(root / "timing.json", "07_molecule_base_gflownets", {"seconds": 5.0, "threads": 1})
        return 2.0

    monkeypatch.setattr(reproduce, "run_notebook", other_process_finishes_meanwhile)
    monkeypatch.setattr(reproduce, "is_up_to_date", lambda name, root, params=None: False)
    reproduce.main(["--root", str(tmp_path), "--only", "01"])
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing == {
        "01_grid_base_gflownets": {"seconds": 2.0, "threads": 1},
        "07_molecule_base_gflownets": {"seconds": 5.0, "threads": 1},
    }
    assert not list(tmp_path.glob("*.tmp"))
    assert "in all: 0.1 min" in (tmp_path / "summary.md").read_text()


def test_summary_lists_the_models_the_training_notebooks_made(tmp_path):
    def put(name, m):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))

    put("01_grid_base_gflownets", {"bases": {"shubert": {"l1_to_reward": 0.0331, "train_time_s": 133.0}}})
    put(
        "02_grid_classifiers",
        {
            "circles": {
                "train_time_s": 300.0,
                "compositions": [
                    {"label": "y=12", "l1_anchored_learned": 0.02},
                    {"label": "y=123", "l1_anchored_learned": 0.045},
                ],
            }
        },
    )
    put(
        "04_mnist_base_diffusion",
        {"bases": {"M1": {"train_time_s": 700.0, "support_rate": 0.83}, "M2": {"train_time_s": 1.0}}},
    )
    put("05_mnist_classifiers", {"judge_heldout_accuracy": 0.97, "classifiers": {"MN": {"final_terminal_loss": 0.2}}})
    put(
        "07_molecule_base_gflownets",
        {
            "models": {
                "seh": {"train_time_s": 1100.0, "untrained": {"mean": {"seh": 0.21}}, "β=32": {"mean": {"seh": 0.756}}}
            }
        },
    )
    put("08_molecule_classifiers", {"classifiers": {"seh_sa": {"terminal_accuracy": 0.998, "train_time_s": 2600.0}}})
    s = reproduce.build_summary(tmp_path)
    assert "grid base shubert: exact L1 to its reward 0.0331, 133 s" in s
    assert "grid classifier circles: largest exact L1 (anchored guidance) over 2 compositions 0.0450" in s
    assert "MNIST base M1: judge support rate 83.0%" in s and "MNIST base M2: judge support rate –%" in s
    assert "MNIST judge: held-out accuracy 0.970" in s and "MNIST classifier MN: final terminal loss 0.200" in s
    assert "molecule base SEH: mean seh reward 0.756 (untrained 0.210), 1100 s" in s
    assert "molecule classifier seh_sa: which-base accuracy 0.998, 2600 s" in s
