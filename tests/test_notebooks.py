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


@pytest.fixture(scope="module")
def mnist_smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    m4 = run("04_mnist_base_diffusion", root / "04", preset="smoke", steps=20, batch_size=8, sample_steps=10,
             n_samples=8)
    return root, m4


def test_04_mnist_base_diffusion(mnist_smoke):
    root, m = mnist_smoke
    assert set(m["bases"]) == {"M1", "M2", "MN1", "MN2", "MN3"}
    for v in m["bases"].values():
        assert v["final_loss"] > 0 and 0 <= v["support_rate"] <= 1
    assert (root / "04" / "models" / "base_MN3.pt").is_file() and (root / "04" / "bases.png").is_file()


def test_05_mnist_classifiers(mnist_smoke):
    root, _ = mnist_smoke
    m = run("05_mnist_classifiers", root / "05", base_dir=str(root / "04" / "models"), judge_epochs=1,
            pool_size=8, pool_steps=6, updates=6, batch=4)
    assert 0 <= m["judge_heldout_accuracy"] <= 1
    assert set(m["classifiers"]) == {"M1_M2", "MN"}
    assert (root / "05" / "models" / "classifier_MN.pt").is_file()


def test_06_mnist_sculpting_on_shipped_models(tmp_path):
    m = run("06_mnist_sculpting", tmp_path / "06", n_samples=4, sample_steps=6)
    s = m["support"]
    for comp in ("M1⊗M2", "M1◑M2", "M2◑M1", "MN y=123", "(MN y=12)◑MN3"):
        assert "gamma=1" in s[comp] and len(s[comp]) == 2, comp
        for cell in s[comp].values():
            assert 0 <= cell["support_rate"] <= 1 and cell["n"] == 4
    assert (tmp_path / "06" / "compositions_sharp.png").is_file()
