"""The reproduction command: resumability and the summary (its notebook runs are the papermill tests)."""
import json
import os
import time

from sculpting import reproduce


def test_up_to_date_logic(tmp_path):
    name = "03_grid_sculpting"
    assert not reproduce.is_up_to_date(name, tmp_path)
    (tmp_path / name).mkdir()
    m = tmp_path / name / "metrics.json"
    m.write_text("{}")
    newest = reproduce.inputs_mtime(name)
    os.utime(m, (newest + 10, newest + 10))
    assert reproduce.is_up_to_date(name, tmp_path)
    os.utime(m, (newest - 10, newest - 10))  # older than the notebook / package: rerun
    assert not reproduce.is_up_to_date(name, tmp_path)


def test_main_skips_up_to_date_notebooks_and_writes_summary(tmp_path, monkeypatch):
    ran, seen = [], []
    monkeypatch.setattr(reproduce, "run_notebook", lambda name, root, params=None: ran.append(name) or seen.append(params) or 1.0)
    monkeypatch.setattr(reproduce, "is_up_to_date", lambda name, root: name.startswith("03"))
    (tmp_path / "03_grid_sculpting").mkdir()
    (tmp_path / "03_grid_sculpting" / "metrics.json").write_text(json.dumps({
        "shubert_sigmoid": {"harmonic": {"0.5": {"l1_anchored_learned": 0.02, "l1_paper_learned": 0.03,
                                                 "l1_anchored_oracle": 1e-16, "l1_paper_oracle": 0.01}}},
        "circles": {"y=123": {"l1_anchored_learned": 0.04, "l1_paper_learned": 0.035,
                              "l1_anchored_oracle": 1e-16, "l1_paper_oracle": 0.014}}}))
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
    monkeypatch.setattr(reproduce, "is_up_to_date", lambda name, root: False)
    reproduce.main(["--root", str(tmp_path), "--only", "01"])
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing == {"01_grid_base_gflownets": {"seconds": 2.0, "threads": 1},
                      "07_molecule_base_gflownets": {"seconds": 5.0, "threads": 1}}
    assert not list(tmp_path.glob("*.tmp"))
    assert "in all: 0.1 min" in (tmp_path / "summary.md").read_text()
