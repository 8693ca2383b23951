"""Every notebook runs headlessly through papermill with its smoke settings."""
import json
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
pytestmark = pytest.mark.notebook


def run(name, out_dir, **params):
    out_dir.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(NB / f"{name}.ipynb"), str(out_dir / f"{name}.ipynb"),
                               parameters={"out_dir": str(out_dir), **params}, cwd=str(ROOT),
                               kernel_name="python3", progress_bar=False)
    return json.loads((out_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def grid_smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    m1 = run("01_grid_base_gflownets", root / "01", horizon=8, steps=30, batch_size=16)
    return root, m1


def test_01_grid_base_gflownets(grid_smoke):
    root, m = grid_smoke
    assert set(m["bases"]) == {"shubert", "sigmoid", "circle1", "circle2", "circle3"}
    for v in m["bases"].values():
        assert 0 <= v["l1_to_reward"] <= 2
    assert (root / "01" / "models" / "base_circle3.pt").is_file()
    assert (root / "01" / "bases.png").is_file()


def test_02_grid_classifiers(grid_smoke):
    root, _ = grid_smoke
    m = run("02_grid_classifiers", root / "02", base_dir=str(root / "01" / "models"), steps=15,
            batch_per_base=8, warmup_steps=5)
    assert len(m["shubert_sigmoid"]["compositions"]) == 9 and len(m["circles"]["compositions"]) == 10
    for row in m["circles"]["compositions"]:
        assert row["l1_anchored_oracle"] < 1e-4  # exact on the freshly trained 8×8 bases
    assert (root / "02" / "models" / "classifier_circles.pt").is_file()


def test_03_grid_sculpting_on_shipped_models(tmp_path):
    m = run("03_grid_sculpting", tmp_path / "03", alphas=[0.05, 0.5, 0.95], latency_repeats=3)
    for op in ("harmonic", "contrast", "reverse_contrast"):
        assert set(m["shubert_sigmoid"][op]) == {"0.05", "0.5", "0.95"}
        for cell in m["shubert_sigmoid"][op].values():
            assert {"l1_paper_learned", "l1_anchored_learned", "l1_paper_oracle", "l1_anchored_oracle"} <= set(cell)
            assert cell["l1_anchored_oracle"] < 1e-4
            assert cell["l1_anchored_learned"] <= 0.1 and cell["l1_paper_learned"] <= 0.1
    assert len(m["circles"]) == 10
    assert m["slider_update_ms_median"] > 0
    assert (tmp_path / "03" / "shubert_sigmoid.png").is_file() and (tmp_path / "03" / "circles.png").is_file()
