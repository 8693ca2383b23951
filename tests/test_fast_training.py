"""The diffusion trainer's fast path (sculpting.diffusion.fast) and its host reads: every switch
trains the same model within noise, the default path is unchanged bit for bit, and the losses read
on the host in batches are the floats a per-step read gives."""

import json

import pytest
import torch

from sculpting.diffusion import model as model_module
from sculpting.diffusion.fast import FastPath
from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model


def _train(fast=None, steps=60, seed=3, perturb=0.0, **kw):
    """Train the smoke score model; ``perturb``: multiply every initial weight by 1 ± perturb
    (random signs, fixed) — a rounding-sized change of the starting point."""
    images = torch.rand(48, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    model = ScoreModel(3, "smoke", seed=1)
    if perturb:
        g = torch.Generator().manual_seed(99)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + perturb * (torch.randint(0, 2, p.shape, generator=g) * 2 - 1))
    hist = train_score_model(
        model,
        images,
        DiffusionTrainConfig(steps=steps, batch_size=8, seed=seed, ema_decay=0.9),
        progress=False,
        fast=fast,
        **kw,
    )
    return model, hist


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_losses_read_in_batches_are_the_per_step_floats(monkeypatch, tmp_path):
    """One host read per LOSS_READ_EVERY steps (and at checkpoints) records what one read per step does."""
    monkeypatch.setattr(model_module, "LOSS_READ_EVERY", 1)
    m1, h1 = _train(steps=57)
    monkeypatch.setattr(model_module, "LOSS_READ_EVERY", 50)
    m50, h50 = _train(steps=57, checkpoint_path=tmp_path / "r.pt", checkpoint_every=20)
    assert h1["loss"] == h50["loss"] and len(h50["loss"]) == 57 and _same_weights(m1, m50)
    saved = torch.load(tmp_path / "r.pt", weights_only=True)
    assert len(json.loads(saved["hist"])["loss"]) == 57  # the last checkpoint holds every loss
    _, other = _train(steps=57, seed=4)
    assert other["loss"] != h1["loss"]  # control: another seed, other losses


@pytest.mark.parametrize("switches, unit", [("channels_last", 2**-24), ("bf16", 2**-8), ("channels_last,bf16", 2**-8)])
def test_each_switch_trains_the_same_model_within_noise(switches, unit):
    """Same randomness, per-step losses within a bound of float32 contiguous training, derived from
    rounding. A switch changes each of the L layers' results by about the unit roundoff u (float32
    reassociation: 2⁻²⁴; bf16 operands: 2⁻⁸) in each forward and backward pass of the S steps:
    summed as a random walk, a relative change of sqrt(2·S·L)·u, injected over the run. Injected
    all at once at the start instead (every initial weight × (1 ± that), random signs), it is
    amplified by the training for longest: the losses of that run bound what the switch can do,
    and the bound is 4 times their largest relative difference (measured on an AVX2 EPYC:
    float32 1.8e-6 against 2e-7 for channels-last; bf16 0.19 against 7e-4). Control: other
    randomness differs by more (0.42)."""
    steps = 80
    _, ref = _train(steps=steps)
    n_layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in ScoreModel(3, "smoke", seed=1).modules())
    _, nudged = _train(steps=steps, perturb=(2 * steps * n_layers) ** 0.5 * unit)
    model, hist = _train(switches, steps=steps)
    _, other = _train(steps=steps, seed=4)
    rel = lambda h: max(abs(a - b) / b for a, b in zip(h["loss"], ref["loss"]))  # noqa: E731
    bound = 4 * rel(nudged)
    assert rel(hist) < bound < rel(other), (rel(hist), bound, rel(other))
    assert hist["fast"] == switches
    assert all(p.is_contiguous() for p in model.parameters())  # handed back in the usual layout
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_compiled_training_matches_eager_and_keeps_the_state_dict():
    """torch.compile (the GPU path's fused kernels; here on the CPU) trains the same weights as eager
    within float32 reassociation, bounded as in the test above: 4 times what a start nudged by
    sqrt(2·S·L)·2⁻²⁴ does to the losses and to the weights (largest difference over the largest
    weight of each tensor); the state dict has the usual keys (no wrapper)."""
    steps = 12
    eager, he = _train(steps=steps)
    n_layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in eager.modules())
    nudged, hn = _train(steps=steps, perturb=(2 * steps * n_layers) ** 0.5 * 2**-24)
    compiled, hc = _train("compile", steps=steps)
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    rel = lambda h: max(abs(a - b) / b for a, b in zip(h["loss"], he["loss"]))  # noqa: E731
    assert rel(hc) < 4 * rel(hn), (rel(hc), rel(hn))
    _, ho = _train(steps=steps, seed=4)
    assert rel(ho) > 4 * rel(hn)  # control: other randomness is outside the bound

    def moved(m):  # the largest weight change of a tensor, relative to its largest weight
        return max(
            float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
            for a, b in zip(m.state_dict().values(), eager.state_dict().values())
            if b.is_floating_point()
        )

    assert moved(compiled) < 4 * moved(nudged), (moved(compiled), moved(nudged))


def test_the_fast_path_is_parsed_and_refused_clearly():
    assert FastPath.parse("auto", "cuda") == FastPath(True, True, "reduce-overhead")
    assert FastPath.parse("auto", "cpu") == FastPath() == FastPath.parse(None) == FastPath.parse("off")
    assert not FastPath.parse("auto", "cpu").on and FastPath().label == "off"
    for spec in ("channels_last", "bf16", "compile", "cudagraphs", "channels_last,bf16,cudagraphs"):
        assert FastPath.parse(spec).label == spec
    with pytest.raises(ValueError, match="unknown fast-path switch"):
        FastPath.parse("channels_last,fp8")
    with pytest.raises(TypeError, match="fast must be"):
        FastPath.parse(3)


def test_the_cli_records_and_checks_the_fast_switches(tmp_path, capsys):
    from sculpting.infrastructure import cli

    with pytest.raises(SystemExit):
        cli.main(["mnist-base", "--preset", "smoke", "--steps", "3", "--fast", "turbo", "--out", str(tmp_path / "a")])
    assert "unknown fast-path switch" in capsys.readouterr().err
    summary = cli.main(
        ["mnist-base", "--preset", "smoke", "--steps", "3", "--fast", "channels_last", "--out", str(tmp_path / "b")]
    )
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["final_loss"] == summary["final_loss"]
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["invocation"]["arguments"]["fast"] == "channels_last"  # it changes the floats: part of the run


def test_composed_sampling_on_the_fast_path_draws_the_same_images_within_noise():
    """sc.sample(fast=): the same noise gives the same images up to the rounding of the path's
    arithmetic; the networks are handed back contiguous; compile is a training switch; GFlowNets
    take no fast=.

    The bound, derived from what it bounds: each of the ``L`` layers (convolutions, linear maps) of
    the deepest network adds a relative rounding error of about the unit roundoff ``u`` (2^-24 for
    float32 reassociation — channels-last only reorders the sums —, 2^-8 for bf16 operands) with a
    random sign, in each of at most ``2·steps`` network calls of the Heun (EDM) sampler. Summed as
    a random walk, an image moves by about ``sqrt(2·steps·L)·u·max|x|``; the bound is 4 times that
    (4 standard deviations). It holds for an image's largest pixel difference, on the median
    image: the guidance gradient of a ReLU / max-pool classifier is piecewise constant, so a
    rounding-sized change that crosses a kink changes it by O(1) on the few images where that
    happens (measured: 1 in 16 on an AVX2 EPYC; its mean over pixels was what failed before).
    Controls: γ = 1.001 instead of 1 (float32 bound) and another seed (bf16 bound) exceed them."""
    import math

    import sculpting as sc

    bases, clf = sc.load_pretrained("mnist/M1_M2")
    model = sc.compose(bases, clf, "harmonic")
    steps = 6
    draw = lambda m=model, seed=0, **kw: sc.sample(m, 16, seed=seed, steps=steps, sampler="edm", **kw)  # noqa: E731
    ref = draw()
    layers = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    depth = max(sum(isinstance(m, layers) for m in net.modules()) for net in (*bases, clf))
    bound = lambda u: 4 * math.sqrt(2 * steps * depth) * u * float(ref.abs().max())  # noqa: E731
    median_image = lambda x: float((x - ref).abs().flatten(1).amax(1).median())  # noqa: E731
    for fast, u in (("channels_last", 2.0**-24), ("bf16", 2.0**-8), ("channels_last,bf16", 2.0**-8)):
        x = draw(fast=fast)
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
        assert median_image(x) < bound(u), (fast, median_image(x), bound(u))
    assert median_image(draw(sc.compose(bases, clf, "harmonic", gamma=1.001))) > bound(2.0**-24)  # control
    assert median_image(draw(seed=1)) > bound(2.0**-8)  # control
    assert torch.equal(draw(fast="auto"), ref)  # auto on the CPU: the plain path
    assert all(p.is_contiguous() for m in (*bases, clf) for p in m.parameters())
    with pytest.raises(ValueError, match="training switches"):
        draw(fast="cudagraphs")
    grid, _ = sc.load_pretrained("grid/shubert_sigmoid")
    with pytest.raises(TypeError, match="fast"):
        sc.sample(grid[0], 4, seed=0, fast="bf16")
