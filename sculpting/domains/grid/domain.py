"""The grid domain's declaration (:class:`sculpting.infrastructure.registry.Domain`): its pretrained sets, the
``grid`` environment kind, and the ``grid-base`` / ``grid-classifier`` training commands with
their presets (``cpu``: the shipped models' pinned settings; ``paper``: ``docs/grid.md``; ``smoke``)."""

from __future__ import annotations

from dataclasses import replace

from sculpting.infrastructure.distributed import on_main
from sculpting.domains.grid import build
from sculpting.domains.grid.env import GridEnv
from sculpting.domains.grid.experiments import CLASSIFIER_SETS, GRID_BASES, make_classifier
from sculpting.domains.grid.io import load_grid_base, load_grid_pair
from sculpting.gflownet.classifier_training import train_classifier
from sculpting.gflownet.io import save_classifier, save_gflownet
from sculpting.gflownet.policy import GFlowNet
from sculpting.gflownet.training import GFlowNetTrainConfig, exact_l1_to_reward, train_gflownet
from sculpting.infrastructure.registry import Command, Domain

__all__ = ["DOMAIN"]


def _pair_loader(name):
    def load(directory=None, base_directory=None):
        return load_grid_pair(name, directory, base_directory=base_directory)

    return load


def _bases_loader(name):
    def load(directory=None):
        return [load_grid_base(n, directory) for n in CLASSIFIER_SETS[name]]

    return load


def _base_presets(name, args=None):
    return {
        "cpu": build.BASE_CONFIG,
        "smoke": build.SMOKE_BASE,
        "paper": GFlowNetTrainConfig(steps=20000, batch_size=16, lr=1e-3, lr_log_z=0.1, epsilon=0.05, eval_every=500),
    }[name]


def _classifier_presets(name, args=None):
    return {
        "cpu": build.CLASSIFIER_CONFIG,
        "smoke": build.SMOKE_CLASSIFIER,
        "paper": replace(
            build.CLASSIFIER_CONFIG,
            steps=15000,
            batch_per_base=64,
            lr=1e-3,
            lr_schedule="constant",
            warmup_steps=3000,
            estimator="sampled",
        ),
    }[name]


def _reward_of(a) -> tuple[str, float]:
    """(reward, temperature) from ``--base NAME`` (a base of the shipped sets) or ``--reward`` / ``--temperature``."""

    if a.base is None:
        return a.reward or "symmetric_shubert", 1.0 if a.temperature is None else a.temperature
    reward, temperature = GRID_BASES[a.base]
    if (a.reward not in (None, reward)) or (a.temperature not in (None, temperature)):
        raise SystemExit(
            f"--base {a.base} is reward {reward} at temperature {temperature:g}; leave out --reward "
            "and --temperature, or leave out --base"
        )
    return reward, temperature


def _normalise_base(a) -> None:
    """Resolve --reward / --temperature (their defaults, or the values of --base) in place: an
    explicit default is the same run as none."""
    try:
        a.reward, a.temperature = _reward_of(a)
    except SystemExit as e:
        raise ValueError(str(e)) from None


def _base(a, cfg, out, device):
    reward, temperature = _reward_of(a)
    model = GFlowNet(GridEnv(a.horizon, a.ndim, reward, temperature), seed=cfg.seed).to(device)
    hist = train_gflownet(
        model, cfg, desc=a.base or reward, checkpoint_path=out / "resume.pt", checkpoint_every=a.checkpoint_every
    )
    l1 = exact_l1_to_reward(model)
    on_main(save_gflownet)(
        model,
        out / "model.pt",
        **({"name": a.base} if a.base else {}),
        train_config=cfg.to_dict(),
        seed=cfg.seed,
        exact_l1_to_reward=l1,
        train_time_s=hist["train_time_s"],
        data_source="reward function (no data)",
    )
    return {"exact_l1_to_reward": l1}


def _classifier(a, cfg, out, device):
    bases = _bases_loader(a.set)(a.bases_dir)
    clf = make_classifier(a.set, bases[0].env, cfg.seed)
    hist = train_classifier(
        clf, bases, cfg, desc=a.set, checkpoint_path=out / "resume.pt", checkpoint_every=a.checkpoint_every
    )
    on_main(save_classifier)(
        clf,
        out / "model.pt",
        set=a.set,
        train_config=cfg.to_dict(),
        seed=cfg.seed,
        train_time_s=hist["wall_time_s"],
        data_source="samples of the base GFlowNets",
    )
    return {"train_time_s": hist["wall_time_s"]}


_SETS = ("shubert_sigmoid", "circles")

DOMAIN = Domain(
    name="grid",
    description="2-D hypergrid GFlowNets (exactly enumerable; docs/grid.md)",
    pretrained={s: _pair_loader(s) for s in _SETS},
    bases={s: _bases_loader(s) for s in _SETS},
    env_kinds={"grid": GridEnv},
    commands={
        "grid-base": Command(
            _base,
            _base_presets,
            help="a base GFlowNet on a grid reward",
            normalise=_normalise_base,
            arguments=[
                (
                    ("--base",),
                    {
                        "default": None,
                        "choices": ("shubert", "sigmoid", "circle1", "circle2", "circle3"),
                        "help": "a base of the shipped sets (its reward and temperature); its folder then "
                        "serves grid-classifier --bases-dir",
                    },
                ),
                (("--reward",), {"default": None, "help": "a grid reward name (default symmetric_shubert)"}),
                (("--temperature",), {"type": float, "default": None, "help": "log R = log r / T (default 1)"}),
                (("--horizon",), {"type": int, "default": 32, "help": "grid side"}),
                (("--ndim",), {"type": int, "default": 2, "help": "grid dimension"}),
            ],
        ),
        "grid-classifier": Command(
            _classifier,
            _classifier_presets,
            help="a classifier of a shipped grid set",
            inputs=lambda a: _bases_loader(a.set)(a.bases_dir),
            arguments=[
                (("--set",), {"default": "shubert_sigmoid", "choices": _SETS, "help": "the classifier set"}),
                (
                    ("--bases-dir",),
                    {
                        "type": __import__("pathlib").Path,
                        "default": None,
                        "help": "folder of the bases: DIR/<base>/model.pt (grid-base --base <base> --out DIR/<base>) "
                        "or DIR/base_<base>.pt (default: shipped)",
                    },
                ),
            ],
        ),
    },
)
