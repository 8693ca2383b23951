"""Parts that must belong together, round three (issue 34): one regression test per case.

Each case was a silent wrong result, lost data or an obscure error; each test here checks the
refusal (or the now correct result) *and* a control: the matching, valid input still works.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sculpting as sc

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def grid_pair():
    bases, _ = sc.load_pretrained("grid/shubert_sigmoid")
    return bases


KW = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)


def _python(code: str, **env):
    """Run ``code`` in a fresh interpreter (a fresh registry, a fresh import state)."""
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )
    return r


# ------------------------------------------------------------------ 1–2. diffusers bases: class labels and schedules
@pytest.fixture(scope="module")
def cond_unet():
    diffusers = pytest.importorskip("diffusers")
    from sculpting.adapters.diffusers import class_bases
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.infrastructure.fingerprint import base_fingerprints

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        num_class_embeds=2,
    )
    sched = diffusers.DDPMScheduler(**KW)
    bases = class_bases(unet, sched)
    clf = TimeClassifier((1, 8, 8), 2, 2, trunk=(4, 8), hidden=16, embed_dim=8, sde=bases[0].sde.config, seed=0)
    clf.base_fingerprints = base_fingerprints(bases)  # what sc.fit_classifier records
    return unet, sched, bases, clf


def test_class_conditional_bases_have_their_own_fingerprints(cond_unet):
    from sculpting.infrastructure.fingerprint import weights_sha256

    _, _, bases, clf = cond_unet
    assert weights_sha256(bases[0]) != weights_sha256(bases[1])  # the class label is part of the base
    sc.compose(bases, clf, "contrast")  # control: the bases it was fitted on, in label order
    for wrong in (bases[::-1], [bases[0], bases[0]], [bases[1], bases[1]]):
        with pytest.raises(ValueError, match="trained on other bases"):
            sc.compose(wrong, clf, "contrast")


def test_pipeline_checks_its_composition_file_against_its_bases(cond_unet, tmp_path):
    diffusers = pytest.importorskip("diffusers")
    from sculpting.adapters.diffusers import SculptingPipeline

    _, _, bases, clf = cond_unet
    pipe = SculptingPipeline(bases, clf, diffusers.DDIMScheduler(**KW, clip_sample=False))
    d = pipe.save_pretrained(tmp_path / "pipe")
    SculptingPipeline.from_pretrained(d, bases)  # control
    with pytest.raises(ValueError, match="class labels"):
        SculptingPipeline.from_pretrained(d, bases[::-1])
    info = json.loads((d / "composition.json").read_text())
    (d / "composition.json").write_text(json.dumps({**info, "class_labels": [1, 0]}))
    with pytest.raises(ValueError, match="class labels"):
        SculptingPipeline.from_pretrained(d, bases)
    for garbage, message in (
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"operation": "harmonic"}), "lacks"),
        (json.dumps({**info, "n_bases": "2"}), "wrong type"),
    ):
        (d / "composition.json").write_text(garbage)
        with pytest.raises(ValueError, match=message):
            SculptingPipeline.from_pretrained(d, bases)
    (d / "composition.json").write_text(json.dumps(info))
    (d / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "NoSuchScheduler"}))
    with pytest.raises(ValueError, match="does not describe a diffusers scheduler"):
        SculptingPipeline.from_pretrained(d, bases)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"num_train_timesteps": 500}, "num_train_timesteps=500"),
        ({"beta_end": 0.04}, "β schedule"),
        ({"beta_schedule": "scaled_linear"}, "beta_schedule"),
    ],
)
def test_a_scheduler_of_another_schedule_is_refused(cond_unet, bad, message):
    diffusers = pytest.importorskip("diffusers")
    from sculpting.adapters.diffusers import SculptingPipeline

    _, _, bases, clf = cond_unet
    good = diffusers.DDIMScheduler(**KW, clip_sample=False)
    assert sc.sample(bases[0], 2, seed=0, steps=2, sampler=good).shape == (2, 1, 8, 8)  # control
    other = diffusers.DDIMScheduler(**{**KW, **bad}, clip_sample=False)
    with pytest.raises(ValueError, match=message):
        sc.sample(sc.compose(bases, clf, "harmonic"), 2, seed=0, steps=2, sampler=other)
    with pytest.raises(ValueError, match=message):
        SculptingPipeline(bases, clf, other)


def test_a_scheduler_class_and_bad_pipeline_calls_say_what_to_fix(cond_unet):
    diffusers = pytest.importorskip("diffusers")
    from sculpting.adapters.diffusers import SculptingPipeline

    _, _, bases, clf = cond_unet
    with pytest.raises(TypeError, match="scheduler class DDIMScheduler, not a scheduler"):
        sc.sample(bases[0], 2, steps=2, sampler=diffusers.DDIMScheduler)
    with pytest.raises(TypeError, match="scheduler class"):
        SculptingPipeline(bases, clf, diffusers.DDIMScheduler)
    pipe = SculptingPipeline(bases, clf, diffusers.DDIMScheduler(**KW, clip_sample=False))
    assert pipe(num_inference_steps=2, batch_size=2, generator=torch.Generator().manual_seed(0)).images.shape[0] == 2
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        pipe(num_inference_steps=2, batch_size=0)
    with pytest.raises(TypeError, match="torch.Generator"):
        pipe(num_inference_steps=2, batch_size=1, generator=5)
    with pytest.raises(ValueError, match="would need about"):
        pipe(num_inference_steps=2, batch_size=10**9)


def test_diffusers_base_saves_and_loads_in_a_fresh_process(cond_unet, tmp_path):
    from sculpting.infrastructure.fingerprint import weights_sha256

    _, _, bases, _ = cond_unet
    sc.save(bases[1], tmp_path / "b1.pt")
    x, t = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0.3, 0.7])
    torch.save({"x": x, "t": t}, tmp_path / "xt.pt")
    r = _python(f"""
import torch, sculpting as sc
from sculpting.infrastructure.fingerprint import weights_sha256
b = sc.load_model({str(tmp_path / "b1.pt")!r})
xt = torch.load({str(tmp_path / "xt.pt")!r})
with torch.no_grad():
    torch.save(b.score(xt['x'], xt['t']), {str(tmp_path / "score.pt")!r})
print(b.class_label, weights_sha256(b))
""")
    assert r.returncode == 0, r.stderr
    label, digest = r.stdout.split()
    assert label == "1" and digest == weights_sha256(bases[1])
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "score.pt"), bases[1].score(x, t), atol=1e-5)


# ------------------------------------------------------------------ 6–7. guidance range, SDEs, α held once
def test_samples_far_outside_the_data_range_are_reported():
    from sculpting.diffusion.sde import VESDE

    class Runaway:
        sde, image_shape, device = VESDE(), (1, 2, 2), torch.device("cpu")

        def __init__(self, scale):
            self.scale = scale

        def score(self, x, t):
            return torch.full_like(x, self.scale)

    with pytest.warns(RuntimeWarning, match="sampler diverged"):
        sc.sample(Runaway(1e4), 4, seed=0, steps=3, sampler="ode")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc.sample(Runaway(0.0), 4, seed=0, steps=3, sampler="ode")  # control: inside the range, no report


def test_vp_and_ve_bases_and_a_classifier_of_another_sde_are_refused():
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.gaussian import ExactGaussianClassifier, GaussianMixtureScore
    from sculpting.diffusion.sde import VESDE, VPSDE

    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    vp = [GaussianMixtureScore(means, w, s=0.25, sde=VPSDE()) for w in ([0.5, 0.5], [0.9, 0.1])]
    ve = GaussianMixtureScore(means, [0.9, 0.1], s=0.25, sde=VESDE())
    sc.compose(vp, ExactGaussianClassifier(vp), "harmonic")  # control: one SDE
    with pytest.raises(ValueError, match="different SDEs"):
        sc.compose([vp[0], ve], ExactGaussianClassifier([vp[0], ve]), "harmonic")

    class Img:  # two image bases under the VP-SDE
        sde, image_shape = VPSDE(), (1, 8, 8)

        def score(self, x, t):
            return -x

    clf_ve = TimeClassifier((1, 8, 8), 2, 2, trunk=(4, 8), hidden=16, embed_dim=8, sde=VESDE().config, seed=0)
    clf_vp = TimeClassifier((1, 8, 8), 2, 2, trunk=(4, 8), hidden=16, embed_dim=8, sde=VPSDE().config, seed=0)
    sc.compose([Img(), Img()], clf_vp, "harmonic")  # control
    with pytest.raises(ValueError, match="trained under the SDE"):
        sc.compose([Img(), Img()], clf_ve, "harmonic")


def test_a_composition_holds_alpha_once():
    import math

    from sculpting.algebra import Composition
    from sculpting.labels import classifier_logit_alpha

    with pytest.raises(ValueError, match="disagrees with the priors"):
        Composition(2, (1, 2), ((0.5, 0.5), (0.3, 0.7)), alpha=0.8)
    c = Composition(2, (1, 2), alpha=0.8)  # α alone: the priors carry it, and the classifier reads it
    assert c.priors[1] == pytest.approx((0.8, 0.2))
    assert classifier_logit_alpha(c, 2, 2, True) == pytest.approx(math.log(0.8 / 0.2))
    both = Composition(2, (1, 2), ((0.5, 0.5), (0.8, 0.2)), alpha=0.8)  # control: both given, and they agree
    assert [p for row in both.priors for p in row] == pytest.approx([p for row in c.priors for p in row])
    assert Composition(2, (), alpha=0.3).priors == ((0.3, 0.7),)
    with pytest.raises(ValueError, match="two-base"):
        Composition(3, (1, 2), alpha=0.3)
    with pytest.raises(ValueError, match="2 to 16 bases"):
        Composition(10**9, (1, 2))


# ------------------------------------------------------------------ 8. metadata extras cannot overwrite
def test_metadata_extras_cannot_overwrite_reserved_keys(tmp_path, grid_pair):
    base = grid_pair[0]
    for key in ("env", "kind", "sha256", "base_fingerprints", "arch"):
        with pytest.raises(ValueError, match="checkpoint's own"):
            sc.save(base, tmp_path / "e.pt", **{key: {"horizon": 5}})
        assert not (tmp_path / "e.pt").exists()
    sc.save(base, tmp_path / "ok.pt", note="mine", env_note={"horizon": 5})  # control: other names are kept
    again = sc.load_model(tmp_path / "ok.pt")
    assert again.meta["note"] == "mine" and again.meta["env_note"] == {"horizon": 5}


def test_load_model_of_a_folder_or_a_sidecar_says_what_to_pass(tmp_path, grid_pair):
    sc.save(grid_pair[0], tmp_path / "b.pt")
    from sculpting.infrastructure.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match="is a folder"):
        sc.load_model(tmp_path)
    with pytest.raises(CheckpointError, match="human-readable metadata"):
        sc.load_model(tmp_path / "b.json")
    assert sc.load_model(tmp_path / "b.pt") is not None


# ------------------------------------------------------------------ 9. own models: torchgfn
def test_torchgfn_bases_and_their_classifier_save_and_load_in_a_fresh_process(tmp_path):
    pytest.importorskip("gfn")
    from sculpting.adapters.torchgfn import TorchGFNPolicy, build

    recipe = "sculpting.adapters.torchgfn:hypergrid_policy"
    b1 = build(recipe, ndim=2, height=5, R0=0.1, R1=0.5, R2=2.0, hidden=16, seed=0)
    b2 = build(recipe, ndim=2, height=5, R0=1.0, R1=0.1, R2=0.1, hidden=16, seed=1)
    clf = sc.fit_classifier([b1, b2], "harmonic", {"steps": 20, "warmup_steps": 5}, progress=False, arch={"hidden": 16})
    for name, model in (("b1", b1), ("b2", b2), ("clf", clf)):
        sc.save(model, tmp_path / f"{name}.pt")
    want = sc.exact_distribution(sc.compose([b1, b2], clf, "harmonic"))
    torch.save(want, tmp_path / "want.pt")
    r = _python(f"""
import torch, sculpting as sc
d = {str(tmp_path)!r}
b1, b2, clf = (sc.load_model(f"{{d}}/{{n}}.pt") for n in ("b1", "b2", "clf"))
got = sc.exact_distribution(sc.compose([b1, b2], clf, "harmonic"))
print(float((got.exp() - torch.load(f"{{d}}/want.pt").exp()).abs().sum()))
""")
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) < 1e-6
    with pytest.raises(TypeError, match="not built by a recipe"):  # a policy without its recipe cannot be rebuilt
        sc.save(TorchGFNPolicy(b1.estimator, b1.env.gfn_env), tmp_path / "x.pt")


# ------------------------------------------------------------------ 3. runs: finished outputs verified, invocations
def _grid_base(out, *extra):
    from sculpting.infrastructure.cli import main

    return main(
        [
            "grid-base",
            "--preset",
            "smoke",
            "--horizon",
            "6",
            "--steps",
            "20",
            "--checkpoint-every",
            "5",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_a_finished_run_verifies_its_outputs(tmp_path, capsys):
    """A finished run whose output is missing or corrupt rewrites it from its resume file, with the
    same weights; without the resume file it says so."""
    from sculpting.infrastructure.checkpoints import CheckpointError
    from sculpting.infrastructure.fingerprint import weights_sha256

    out = tmp_path / "a"
    _grid_base(out)
    want = weights_sha256(sc.load_model(out / "model.pt"))
    _grid_base(out)  # control: intact outputs, the no-op
    assert "nothing to do" in capsys.readouterr().err
    (out / "model.pt").unlink()
    _grid_base(out)  # missing: rewritten from the resume file, the same bytes of weights
    assert "rewriting them" in capsys.readouterr().err
    assert weights_sha256(sc.load_model(out / "model.pt")) == want
    raw = bytearray((out / "model.pt").read_bytes())
    raw[len(raw) // 2] ^= 1  # one flipped bit
    (out / "model.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):  # the corruption is real: the file no longer loads
        sc.load_model(out / "model.pt")
    _grid_base(out)
    assert "rewriting them" in capsys.readouterr().err
    assert weights_sha256(sc.load_model(out / "model.pt")) == want
    other = tmp_path / "b"  # control: another seed trains other weights, so the equality says something
    _grid_base(other, "--seed", "1")
    assert weights_sha256(sc.load_model(other / "model.pt")) != want
    for p in out.glob("resume*.pt"):
        p.unlink()
    (out / "model.pt").unlink()
    with pytest.raises(SystemExit, match="no resume file"):
        _grid_base(out)


def test_an_explicit_default_is_the_same_invocation(tmp_path, capsys):
    out = tmp_path / "a"
    _grid_base(out)
    _grid_base(out, "--temperature", "1", "--reward", "symmetric_shubert")
    assert "nothing to do" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="arguments.temperature"):  # control: another value is another run
        _grid_base(out, "--temperature", "2")


def test_input_errors_leave_no_record_and_an_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    from sculpting.infrastructure.cli import main

    with pytest.raises(SystemExit):
        main(["grid-base", "--preset", "smoke", "--out", ""])
    assert "--out needs a folder name" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="leave out --reward"):  # --base and a clashing --reward
        _grid_base(tmp_path / "b", "--base", "shubert", "--reward", "diag_sigmoid")
    assert not (tmp_path / "b" / "run.json").exists()
    with pytest.raises(SystemExit, match="error:"):  # bases that are not there: refused before the folder is bound
        main(
            [
                "grid-classifier",
                "--preset",
                "smoke",
                "--set",
                "circles",
                "--bases-dir",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
    assert not (tmp_path / "c" / "run.json").exists()


def test_a_classifier_run_records_its_bases_by_content(tmp_path, capsys):
    from sculpting.infrastructure.cli import main
    from sculpting.domains.grid.experiments import CLASSIFIER_SETS

    bases_dir = tmp_path / "bases"
    for name in CLASSIFIER_SETS["circles"]:
        main(["grid-base", "--preset", "smoke", "--base", name, "--steps", "5", "--out", str(bases_dir / name)])
    cmd = [
        "grid-classifier",
        "--preset",
        "smoke",
        "--set",
        "circles",
        "--bases-dir",
        str(bases_dir),
        "--steps",
        "5",
        "--out",
        str(tmp_path / "clf"),
    ]
    main(cmd)
    main(cmd)  # control: the same bases, a finished run
    assert "nothing to do" in capsys.readouterr().err
    first = CLASSIFIER_SETS["circles"][0]
    main(
        [
            "grid-base",
            "--preset",
            "smoke",
            "--base",
            first,
            "--steps",
            "6",
            "--restart",
            "--out",
            str(bases_dir / first),
        ]
    )  # a base retrained
    with pytest.raises(SystemExit, match="inputs"):
        main(cmd)


# ------------------------------------------------------------------ 4. the registry
def test_a_command_clash_is_refused_and_the_registry_stays_whole():
    r = _python("""
import sculpting as sc
from sculpting.infrastructure.registry import Command, Domain, domains
cmd = Command(lambda *a: {}, lambda name, args=None: None)
try:
    sc.register_domain(Domain('x', commands={'grid-base': cmd}))
except ValueError as e:
    print('refused:', e)
print(len(sc.pretrained_names()) > 0, type(sc.load_pretrained('grid/circles')).__name__)
sc.register_domain(Domain('y', commands={'y-base': cmd}))
print('y' in domains())
""")
    assert r.returncode == 0, r.stderr
    assert "refused: domain 'x': command(s) ['grid-base'] already belong to 'grid'" in r.stdout
    assert "True" in r.stdout.splitlines()[1] and r.stdout.splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pretrained": {"s": "not callable"}}, "must be callable"),
        ({"pretrained": {"a/b": len}}, "without '/'"),
        ({"commands": {"c": "run"}}, "must be a sculpting.Command"),
        ({"env_kinds": []}, "must be a dict"),
        ({"bases": {"s": len}}, "no pretrained set"),
        ({"description": 3}, "description"),
    ],
)
def test_a_domain_is_checked_when_built(kwargs, message):
    from sculpting.infrastructure.registry import Domain

    with pytest.raises((TypeError, ValueError), match=message):
        Domain("d", **kwargs)
    Domain("d", pretrained={"s": len}, bases={"s": len})  # control


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"run": 3}, "run must be callable"),
        ({"presets": {"cpu": 1}}, "lacks the preset"),
        ({"presets": {"cpu": {"steps": 1}, "smoke": {}, "paper": {}}}, r"presets\['cpu'\] is a dict"),
        ({"presets": 5}, "presets must be a dict"),
        ({"arguments": [("x", {})]}, "arguments must be"),
        ({"arguments": [(("--out",), {})]}, "redefine the common"),
        ({"help": 1}, "help must be a string"),
    ],
)
def test_a_command_is_checked_when_built(kwargs, message):
    from dataclasses import make_dataclass

    from sculpting.infrastructure.registry import Command

    preset = make_dataclass("Preset", [("steps", int, 1)])()
    good = {"run": lambda *a: {}, "presets": {"cpu": preset, "smoke": preset, "paper": preset}}
    with pytest.raises((TypeError, ValueError), match=message):
        Command(**{**good, **kwargs})
    Command(**good, arguments=[(("--x",), {"type": int})])  # control


def test_sculpting_domains_errors_name_the_variable_every_time():
    r = _python(
        """
import sculpting as sc
for _ in range(2):
    try:
        sc.pretrained_names()
    except ImportError as e:
        print('ERR', e)
""",
        SCULPTING_DOMAINS="no_such_module_xyz",
    )
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("ERR")]
    assert len(lines) == 2 and all("$SCULPTING_DOMAINS" in ln and "no_such_module_xyz" in ln for ln in lines)
    ok = _python("import sculpting as sc; print(len(sc.pretrained_names()))")  # control: unset, all is found
    assert ok.returncode == 0 and int(ok.stdout) >= 4


# ------------------------------------------------------------------ 6. bounds before allocating
def test_sizes_are_bounded_before_allocating(grid_pair):
    from sculpting.gflownet.classifier import SculptingClassifier
    from sculpting.gflownet.policy import GFlowNet

    env = grid_pair[0].env
    with pytest.raises(ValueError, match="2 to 16 bases"):
        sc.fit_classifier([grid_pair[0]] * 10**6, 2)
    with pytest.raises(ValueError, match=r"n_bases must lie in \[2, 16\]"):
        SculptingClassifier(env, 10**6, 2)
    with pytest.raises(ValueError, match=r"hidden must lie in \[1, 16384\]"):
        GFlowNet(env, hidden=10**6)
    with pytest.raises(ValueError, match="hidden must lie"):
        sc.fit_classifier(grid_pair, 2, {"steps": 1}, arch={"hidden": 0}, progress=False)
    with pytest.raises(ValueError, match="about .* GB to train"):
        SculptingClassifier(env, 16, 8, hidden=64)  # 16^8 joint outputs
    SculptingClassifier(env, 3, 3, hidden=32)  # control


def test_the_memory_estimate_of_a_grid_draw_bounds_what_it_takes(grid_pair):
    """The estimate is an upper bound of the measured peak (within 4×): measured in a fresh process."""
    from sculpting.families import family_of

    n = 60000
    estimate = family_of(grid_pair[0]).memory_need(grid_pair[0], n, None)
    r = _python(f"""
import resource, torch, sculpting as sc
torch.set_num_threads(1)
s = sc.load_pretrained('grid/circles')
b = s[0][0] if isinstance(s, tuple) else s.bases[0]
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(key))
open('/proc/self/clear_refs', 'w').write('5')  # reset the peak to the current size
before = status('VmRSS:')
sc.sample(b, {n}, seed=0)
print(status('VmHWM:') - before)
""")
    assert r.returncode == 0, r.stderr
    measured = int(r.stdout)
    assert measured <= estimate <= 4 * measured + 2**24, (measured, estimate)


def test_target_distribution_of_bases_on_different_spaces():
    from sculpting.domains.grid.env import GridEnv
    from sculpting.gflownet.policy import GFlowNet

    a, b = GFlowNet(GridEnv(4, 2), hidden=8, seed=0), GFlowNet(GridEnv(5, 2), hidden=8, seed=0)
    with pytest.raises(ValueError, match="different spaces"):
        sc.target_distribution([a, b], "harmonic")
    assert sc.target_distribution([a, GFlowNet(GridEnv(4, 2), hidden=8, seed=1)], "harmonic").shape == (16,)


def test_a_successor_head_reloaded_is_the_same_classifier():
    pytest.importorskip("rdkit")
    from molecule_data import require_data

    require_data()
    from sculpting.domains.molecules.io import PRETRAINED_DIR, load_graph_classifier, load_molecule_models

    if not (PRETRAINED_DIR / "successor_seh_sa.pt").is_file():
        pytest.fail("the shipped molecule successor head is missing")
    models = load_molecule_models(objectives=("seh", "sa"))
    bases, head = [models["bases"]["seh"], models["bases"]["sa"]], models["successor_heads"]["seh_sa"]
    again = load_graph_classifier(PRETRAINED_DIR / "classifier_seh_sa.pt")  # the same classifier, another object
    assert again is not head.classifier
    sc.compose(bases, again, "harmonic", beta=32, successor_head=head)
    with torch.no_grad():  # control: other weights are another classifier
        next(again.parameters()).add_(0.5)
    with pytest.raises(ValueError, match="another classifier"):
        sc.compose(bases, again, "harmonic", beta=32, successor_head=head)
