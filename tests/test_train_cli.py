"""The training command line: every command runs (smoke preset), settings are validated, and the
paper presets carry the reference settings."""

import json

import pytest

from sculpting.infrastructure import cli


@pytest.mark.parametrize(
    "args",
    [
        ["mnist-classifier", "--set", "MN", "--preset", "smoke", "--updates", "4"],
        ["molecule-classifier", "--set", "seh_sa", "--preset", "smoke", "--steps", "2"],
    ],
)
def test_classifier_commands_run(args, tmp_path):
    if args[0].startswith("molecule"):
        from molecule_data import require_data

        require_data()
    s = cli.main(args + ["--out", str(tmp_path), "--checkpoint-every", "2"])
    assert (tmp_path / "model.pt").is_file() and json.loads((tmp_path / "summary.json").read_text()) == json.loads(
        json.dumps(s, default=str)
    )


def test_unknown_settings_and_sets_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown setting"):
        cli.main(["grid-base", "--preset", "smoke", "--out", str(tmp_path), "--stepz", "3"])
    with pytest.raises(SystemExit):  # argparse: invalid choice
        cli.main(["mnist-classifier", "--set", "M3", "--out", str(tmp_path)])
    assert "invalid choice: 'M3'" in capsys.readouterr().err


def _preset(command, name):
    """A command's preset, as its domain declares it."""
    return cli.commands()[command][1].preset(name)


def test_paper_presets_are_the_reference_settings():
    g = _preset("grid-base", "paper")
    assert (g.steps, g.batch_size, g.lr, g.lr_log_z, g.epsilon) == (20000, 16, 1e-3, 0.1, 0.05)
    c = _preset("grid-classifier", "paper")
    assert (c.steps, c.batch_per_base, c.lr, c.warmup_steps, c.estimator, c.lr_schedule) == (
        15000,
        64,
        1e-3,
        3000,
        "sampled",
        "constant",
    )
    m = _preset("mnist-base", "paper")
    assert (m.batch_size, m.lr, m.lr * m.final_lr_fraction, m.ema_decay) == (32, 1e-2, 1e-4, 0.0)
