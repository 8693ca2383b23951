import pytest
import torch

from sculpting.domains.grid import GridEnv
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.gflownet.policy import GFlowNet


@pytest.fixture
def panel():
    from sculpting.domains.grid.panel import GridSculptingPanel

    torch.manual_seed(0)
    env = GridEnv(8, 2, "symmetric_shubert")
    bases = [GFlowNet(env, hidden=16), GFlowNet(GridEnv(8, 2, "diag_sigmoid"), hidden=16)]
    return GridSculptingPanel(bases, SculptingClassifier(env, 2, 2, hidden=16))


def test_slider_and_dropdown_redraw(panel):
    z0 = panel.figure.data[0].z.copy()
    l1_0 = panel.last["l1"]
    panel.alpha.value = 0.1
    assert (panel.figure.data[0].z != z0).any()
    assert panel.last["l1"] != l1_0
    assert "α=0.1" in panel.status.value
    panel.operation.value = "contrast"
    assert "◑" in panel.status.value
    panel.source.value = "oracle"
    panel.form.value = "anchored"
    assert panel.last["l1"] < 1e-4  # the oracle with anchored guidance is exact


def test_three_base_panel_and_mismatch():
    from sculpting.domains.grid.panel import GridSculptingPanel

    env = GridEnv(8, 2, "circle1")
    bases = [GFlowNet(GridEnv(8, 2, f"circle{i}"), hidden=16) for i in (1, 2, 3)]
    p = GridSculptingPanel(bases, SculptingClassifier(env, 3, 3, hidden=16))
    assert p.composition().observations == (1, 2, 3)
    p.pickers[2].value = 0
    assert p.composition().observations == (1, 2)
    with pytest.raises(ValueError, match="classifier was built for"):
        GridSculptingPanel(bases, SculptingClassifier(GridEnv(6, 2, "corners"), 3, 3, hidden=16))


def test_grid_panel_shows_each_control_once():
    """Regression: the two-base panel once displayed α and the guidance toggle twice."""
    from sculpting.domains.grid.io import load_grid_pair
    from sculpting.domains.grid.panel import GridSculptingPanel

    for pair in ("shubert_sigmoid", "circles"):
        bases, clf = load_grid_pair(pair)
        panel = GridSculptingPanel(bases, clf)
        seen = []

        def walk(w):
            seen.append(id(w))
            for c in getattr(w, "children", ()):
                walk(c)

        walk(panel.widget)
        assert len(seen) == len(set(seen)), pair
        assert id(panel.alpha) in seen and id(panel.form) in seen and id(panel.source) in seen


def test_molecule_panel_samples_and_draws():
    from molecule_data import require_data

    require_data()
    from sculpting.domains.molecules.io import load_molecule_models
    from sculpting.domains.molecules.panel import MoleculeSculptingPanel

    panel = MoleculeSculptingPanel(load_molecule_models(), n_molecules=4)
    assert not panel.alpha.disabled
    assert panel.particles.disabled  # the exact samplers take no particles
    panel.sampler_choice.value = "smc"
    assert not panel.particles.disabled  # control
    panel.sampler_choice.value = "auto"
    panel.classifier.value = "no classifier"
    assert not panel.particles.disabled and panel.sampler_choice.disabled  # the path SMC counts them
    panel.classifier.value = "learned"
    out = panel.sample()
    assert len(out["mols"]) == 4 and panel.image.value[:4] == b"\x89PNG"
    assert "in (SEH ≥ 0.5, SA ≥ 0.6)" in panel.status.value
    panel.operation.value = "base QED"
    assert panel.alpha.disabled
    assert len(panel.sample()["mols"]) == 4
    panel.operation.value = "SEH ◑ SA (contrast)"
    panel.beta_slider.value = 12.0  # one β-conditional classifier serves every β
    assert len(panel.sample()["mols"]) == 4 and "β=12" in panel.status.value
    assert not panel.sampler_choice.disabled
    panel.classifier.value = "no classifier"  # the path composition: no classifier, the path SMC
    assert panel.sampler_choice.disabled
    assert len(panel.sample()["mols"]) == 4 and "β=12" in panel.status.value


def test_mnist_panel_offers_the_data_oracle():
    from sculpting.domains.mnist.io import load_mnist_models
    from sculpting.domains.mnist.panel import MnistSculptingPanel

    panel = MnistSculptingPanel(load_mnist_models(), n_images=4, steps=10)
    first = panel.draw()
    assert first["n"] == 4 and panel._oracles is None  # the learned classifier by default
    panel.classifier.value = "data oracle"  # redraws, guided by the exact classifier of the data sets
    assert panel._oracles is not None and set(panel._oracles) == {"M1_M2", "MN", "nested"}
    assert "M1⊗M2" in panel.status.value
    assert not panel.sampler_name.disabled
    panel.classifier.value = "no classifier"  # redraws: the path composition, sampled by the path SMC
    assert panel.sampler_name.disabled and panel.last["n"] == 4 and "M1⊗M2" in panel.status.value
    with pytest.raises(ValueError, match="'learned', 'data oracle', 'no classifier'"):
        MnistSculptingPanel(load_mnist_models(), classifier="oracle")


def test_notebooks_write_to_the_repository_figures_wherever_they_start(tmp_path, monkeypatch):
    """JupyterLab starts a notebook in notebooks/: its relative out_dir still lands in the
    repository's figures/ (control: outside a repository the path is the working directory's)."""
    from sculpting.lab.reporting import prepare_out_dir

    repo = tmp_path / "repo"
    for d in ("sculpting", "notebooks"):
        (repo / d).mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(repo / "notebooks")
    assert prepare_out_dir("figures/03_grid_sculpting") == repo / "figures" / "03_grid_sculpting"
    assert not (repo / "notebooks" / "figures").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert prepare_out_dir("figures/x").resolve() == elsewhere / "figures" / "x"  # control
    assert prepare_out_dir(tmp_path / "abs") == tmp_path / "abs"


def test_the_grid_panel_is_readable_and_its_controls_honest(panel):
    """Axis titles on both maps, one colour scale for the pair (its bar titled), the mode bar clear
    of the title, the particles slider usable only with the SMC sampler (control: it is with SMC),
    and the panel's state is the last value set."""
    fig = panel.figure
    assert fig.layout.xaxis.title.text == "z₁" and fig.layout.yaxis2.title.text == "z₀"
    assert fig.data[0].zmax == fig.data[1].zmax and fig.data[0].zmin == 0 == fig.data[1].zmin
    assert fig.data[1].showscale and not fig.data[0].showscale and "probability" in fig.data[1].colorbar.title.text
    assert fig.layout.modebar.orientation == "v"
    assert panel.particles.disabled  # exact sampler: N does nothing
    panel.sampler.value = "smc"
    assert not panel.particles.disabled  # control
    panel.sampler.value = "exact"
    for a in (0.2, 0.7, 0.4):
        panel.alpha.value = a
    assert panel.alpha.value == 0.4 and "α=0.4" in panel.status.value
