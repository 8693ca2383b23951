"""The training command line: one entry point for every model the package trains.

    python -m sculpting --help                      # every registered domain's commands
    python -m sculpting grid-base --base shubert --out runs/grid/shubert   # or --reward NAME --temperature T
    python -m sculpting grid-classifier --set shubert_sigmoid --bases-dir runs/grid --out runs/grid/ss
    python -m sculpting mnist-base --base M1 --out runs/m1 [--source torchvision --root DIR]
    python -m sculpting mnist-classifier --set M1_M2 --out runs/m12 [--bases-dir DIR]
    python -m sculpting molecule-base --objective seh --out runs/seh
    python -m sculpting molecule-classifier --set seh_sa --out runs/seh_sa [--bases-dir DIR]

The commands come from the registered domains (:mod:`sculpting.infrastructure.registry`): a domain of yours
adds its own without editing this file. Settings: ``--preset`` (``cpu``: the pinned settings of the shipped
models, the default; ``paper``:
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
import sys
from dataclasses import fields, replace
from pathlib import Path

import torch

from sculpting.infrastructure.checkpoints import CheckpointError, atomic_write
from sculpting.infrastructure.distributed import init_from_env, shutdown, world
from sculpting.infrastructure.fingerprint import base_fingerprints
from sculpting.infrastructure.registry import PRESETS, domains
from sculpting.infrastructure.runs import RunFolder, RunFolderError, output_checksums
from sculpting.version import __version__ as _version

__all__ = ["main", "parser", "commands"]


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
    try:
        return replace(config, **settings)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"invalid setting: {e}") from None


def _read_config(path: Path) -> dict:
    try:
        settings = json.loads(path.read_text())
    except OSError as e:
        raise SystemExit(f"--config {path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise SystemExit(f"--config {path} is not JSON: {e}") from None
    if not isinstance(settings, dict):
        raise SystemExit(f"--config {path} must hold a JSON object of settings, got a {type(settings).__name__}")
    return settings


#: options that do not change a run's result (left out of its recorded invocation)
_NOT_RESULT = ("out", "threads", "device", "checkpoint_every", "restart", "config")


def _out_folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--out needs a folder name (an empty one would write into the current folder)")
    return Path(text)


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", type=_out_folder, required=True, help="output folder (model.pt, resume.pt, summary.json)")
    ap.add_argument("--preset", choices=PRESETS, default="cpu")
    ap.add_argument("--config", type=Path, help="JSON file of settings (applied before --key value pairs)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    ap.add_argument("--checkpoint-every", type=int, default=100, help="steps between resume checkpoints")
    ap.add_argument(
        "--restart",
        action="store_true",
        help="discard what OUT holds of an earlier run (its record, summary and resume files)",
    )


def commands() -> dict:
    """CLI command name -> (domain name, :class:`~sculpting.infrastructure.registry.Command`), every domain."""
    return {c: (d.name, cmd) for d in domains().values() for c, cmd in d.commands.items()}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m sculpting", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(
        dest="command", required=True, metavar="command", help="one of the registered domains' commands:"
    )
    for name, (domain, cmd) in sorted(commands().items()):
        p = sub.add_parser(name, help=f"[{domain}] {cmd.help}", description=cmd.help)
        _common(p)
        g = p.add_argument_group("what to train")
        for flags, kwargs in cmd.arguments:
            g.add_argument(*flags, **kwargs)
    return ap


def main(argv=None) -> dict:
    """Run one command. The output folder is held for the whole run (:class:`sculpting.infrastructure.runs.RunFolder`):
    one writer at a time, bound to this invocation; the exact command of a finished run returns
    its summary without training."""
    args, rest = parser().parse_known_args(argv)
    settings = _read_config(args.config) if args.config else {}
    settings.update(_overrides(rest))
    _, cmd = commands()[args.command]
    config = _apply(cmd.preset(args.preset, args), settings)
    if args.threads < 1 or args.checkpoint_every < 1:
        raise SystemExit("--threads and --checkpoint-every must be ≥ 1")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    init_from_env(device)
    if device.type == "cuda" and world()[1] > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    rank, size = world()
    invocation = {
        "command": args.command,
        "arguments": _recorded_arguments(args, cmd),
        "config": config.to_dict() if hasattr(config, "to_dict") else config,
        "world_size": size,
        "sculpting": _version,
    }
    if cmd.inputs is not None:  # what the command reads, by content (input errors surface here, before --out is bound)
        try:
            read = cmd.inputs(args)
        except (CheckpointError, ValueError, OSError) as e:
            raise SystemExit(f"error: {e}") from None
        invocation["inputs"] = [f["sha256"] for f in base_fingerprints(read)]
    folder = RunFolder(args.out, invocation, restart=args.restart) if rank == 0 else None
    try:
        try:
            if folder is not None:
                folder.__enter__()
        except RunFolderError as e:
            raise SystemExit(f"error: {e}") from None
        finished = _agree(folder.finished if folder is not None else None, size)
        if finished is not None:
            if rank == 0:
                print(f"{args.out}: this exact run has finished; nothing to do. Its summary:", file=sys.stderr)
                print(json.dumps(finished, default=str))
            return finished
        try:
            result = cmd.run(args, config, args.out, device)
            if not isinstance(result, dict):
                raise TypeError(
                    f"the command {args.command!r} returned {type(result).__name__}, not a dict of its "
                    "summary's numbers: its Command.run must return a dict (e.g. {} when it has none)"
                )
        except BaseException:
            if folder is not None:
                folder.discard_if_untouched()  # an input error leaves no record of a run that never started
            raise
        summary = {"command": args.command, "preset": args.preset, "settings": settings, "world_size": size, **result}
        if rank == 0:
            summary["outputs"] = output_checksums(args.out)
            atomic_write(
                args.out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2, default=str))
            )
            print(json.dumps(summary, default=str))
        return summary
    finally:
        if folder is not None:
            folder.__exit__(None, None, None)
        shutdown()


def _recorded_arguments(args, cmd) -> dict:
    """The command's arguments as the invocation records them: the command's ``normalise`` applied
    (e.g. ``--temperature 1`` and no ``--temperature`` are one run) and the options that do not
    change the result left out."""
    if cmd.normalise is not None:
        try:
            cmd.normalise(args)
        except (ValueError, TypeError) as e:
            raise SystemExit(f"error: {e}") from None
    return {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_RESULT and k != "command"}


def _agree(value, size: int):
    """Rank 0's ``value`` on every rank (a finished run is skipped by all of them)."""
    if size <= 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


if __name__ == "__main__":
    main()
