"""Domains that declare themselves: the one place the package learns what a domain offers.

A :class:`Domain` lists, as data, everything the package-level entry points need from a domain:

* ``pretrained``: set name → ``loader(directory=None, base_directory=None) -> (bases, classifier)``
  (``sc.load_pretrained("<domain>/<set>")``);
* ``bases`` (optional): set name → ``loader(directory=None) -> bases`` (``sc.load_bases``: the bases
  alone, e.g. to train a classifier of them; default: the pretrained loader's bases);
* ``env_kinds``: environment kind (``env.space["kind"]``) → class rebuilt as ``cls(**env.config)``
  when a checkpoint of a model on it is loaded (``sc.load_model``);
* ``checkpoint_loaders``: checkpoint kind → ``loader(path)`` for the domain's own model kinds;
* ``commands``: CLI command name → :class:`Command` (``python -m sculpting <command>``), each
  with its training presets (``{"cpu": config, "smoke": config, "paper": config}``) as data.

The method core (:mod:`sculpting.algebra`, :mod:`sculpting.compose`, :mod:`sculpting.gflownet`,
:mod:`sculpting.diffusion`) never imports a domain. Domains are found on demand, only by the
entry points that need them (:func:`domains`):

1. every module of the :mod:`sculpting.domains` package that defines ``DOMAIN`` (a package's
   ``domain`` submodule, e.g. ``sculpting/domains/grid/domain.py``);
2. the installed distributions' entry points of group ``sculpting.domains``;
3. the modules named in ``$SCULPTING_DOMAINS`` (comma-separated), each defining ``DOMAIN``;
4. anything passed to :func:`register_domain` in this process.

So adding a domain edits no central file: write a module with ``DOMAIN = Domain(...)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sculpting.infrastructure.checkpoints import ADAPTER_KINDS, register_loader
from sculpting.gflownet.env_kinds import register_env, set_discovery

#: the folder of the reference domains (sculpting.domains), walked by discovery
DOMAINS_DIR = Path(__file__).resolve().parents[1] / "domains"

__all__ = ["Domain", "Command", "DomainError", "register_domain", "domains", "get_domain", "find_pretrained", "PRESETS"]

#: the preset names every command offers
PRESETS = ("cpu", "smoke", "paper")


@dataclass
class Command:
    """One CLI training command.

    Attributes:
        run: ``run(args, config, out: Path, device) -> dict`` trains with the resolved ``config``
            (the preset's, updated by ``--config`` / ``--key value``), writes ``out/model.pt``
            and returns the summary's numbers.
        presets: ``{"cpu": config, "smoke": config, "paper": config}`` (dataclass configs), or a
            callable ``preset(name, args) -> config`` when the preset depends on the arguments.
        arguments: ``[(flags, argparse kwargs), ...]``, the command's own options.
        help: one line for ``--help``.
        inputs: optional ``inputs(args) -> models`` the command reads (a classifier command: its
            bases); their fingerprints are part of the recorded invocation, so a folder whose
            inputs changed since is another run, not a finished one.
        normalise: optional ``normalise(args)`` resolving defaults in place before the invocation is
            recorded (an explicit flag equal to its default is the same run); it raises
            ``ValueError`` for arguments that do not go together, before the folder is bound.

    Every field is checked when the command is built (a ``TypeError`` / ``ValueError`` naming it).

    Examples:
        >>> import sculpting as sc
        >>> def run(args, config, out, device):                        # train, write out/model.pt, return numbers
        ...     return {}
        >>> from dataclasses import dataclass
        >>> from sculpting.infrastructure.training_scaffold import TrainConfig
        >>> @dataclass
        ... class MyConfig(TrainConfig):                             # its fields are the --key options
        ...     steps: int = 1000
        >>> presets = {"cpu": MyConfig(), "smoke": MyConfig(steps=2), "paper": MyConfig(steps=20_000)}
        >>> cmd = sc.Command(run, presets, help="my trainer")
        >>> cmd.help
        'my trainer'
    """

    run: Callable
    presets: dict | Callable
    arguments: list = field(default_factory=list)
    help: str = ""
    inputs: Callable | None = None
    normalise: Callable | None = None

    def __post_init__(self):
        if not callable(self.run):
            raise TypeError(f"Command.run must be callable (run(args, config, out, device) -> dict), got {self.run!r}")
        if not callable(self.presets):
            if not isinstance(self.presets, dict):
                raise TypeError(
                    "Command.presets must be a dict {'cpu': config, 'smoke': config, 'paper': config} or "
                    f"a callable preset(name, args), got {type(self.presets).__name__}"
                )
            missing = [p for p in PRESETS if p not in self.presets]
            if missing:
                raise ValueError(f"Command.presets lacks the preset(s) {missing} (every command offers {PRESETS})")
            import dataclasses

            plain = [
                p
                for p in PRESETS
                if not (dataclasses.is_dataclass(self.presets[p]) and not isinstance(self.presets[p], type))
            ]
            if plain:
                raise TypeError(
                    f"Command.presets[{plain[0]!r}] is a {type(self.presets[plain[0]]).__name__}; a preset is "
                    "a dataclass config instance (its fields are the --key options), e.g. "
                    "TrainConfig(steps=100)"
                )
        if not isinstance(self.arguments, (list, tuple)) or not all(
            isinstance(a, (list, tuple))
            and len(a) == 2
            and isinstance(a[0], (list, tuple))
            and a[0]
            and all(isinstance(f, str) and f.startswith("-") for f in a[0])
            and isinstance(a[1], dict)
            for a in self.arguments
        ):
            raise TypeError(
                "Command.arguments must be a list of ((flags, ...), argparse kwargs) pairs, flags "
                f"starting with '-', got {self.arguments!r}"
            )
        reserved = {"--out", "--preset", "--config", "--device", "--threads", "--checkpoint-every", "--restart"}
        taken = sorted(reserved & {f for flags, _ in self.arguments for f in flags})
        if taken:
            raise ValueError(f"Command.arguments redefine the common option(s) {taken}")
        if not isinstance(self.help, str):
            raise TypeError(f"Command.help must be a string, got {type(self.help).__name__}")
        for hook in ("inputs", "normalise"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise TypeError(f"Command.{hook} must be callable or None, got {getattr(self, hook)!r}")

    def preset(self, name: str, args=None):
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")
        return self.presets(name, args) if callable(self.presets) else self.presets[name]


@dataclass
class Domain:
    """A domain's declaration (see the module docstring).

    Examples:
        >>> import sculpting as sc
        >>> d = sc.Domain("docs_example", description="a domain with nothing in it yet")
        >>> d.name, d.pretrained, d.commands
        ('docs_example', {}, {})
    """

    name: str
    description: str = ""
    pretrained: dict = field(default_factory=dict)
    bases: dict = field(default_factory=dict)
    env_kinds: dict = field(default_factory=dict)
    checkpoint_loaders: dict = field(default_factory=dict)
    commands: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"a domain name is a non-empty string without '/', got {self.name!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"domain {self.name!r}: description must be a string")
        for what in ("pretrained", "bases", "env_kinds", "checkpoint_loaders", "commands"):
            table = getattr(self, what)
            if not isinstance(table, dict):
                raise TypeError(f"domain {self.name!r}: {what} must be a dict, got {type(table).__name__}")
            for key, value in table.items():
                if not isinstance(key, str) or not key or (what in ("pretrained", "bases") and "/" in key):
                    raise ValueError(
                        f"domain {self.name!r}: the {what} key {key!r} must be a non-empty string"
                        + (" without '/'" if what in ("pretrained", "bases") else "")
                    )
                if what == "commands":
                    if not isinstance(value, Command):
                        raise TypeError(
                            f"domain {self.name!r}: command {key!r} must be a sculpting.Command, "
                            f"got {type(value).__name__}"
                        )
                    if key.startswith("-") or " " in key:
                        raise ValueError(
                            f"domain {self.name!r}: command name {key!r} cannot start with '-' or hold spaces"
                        )
                elif not callable(value):
                    raise TypeError(
                        f"domain {self.name!r}: {what}[{key!r}] must be callable (a loader or a class), got {value!r}"
                    )
        unknown = sorted(set(self.bases) - set(self.pretrained))
        if unknown:
            raise ValueError(f"domain {self.name!r}: bases {unknown} have no pretrained set of that name")


_REGISTERED: dict[str, Domain] = {}
_DISCOVERED: bool | str = False  # False, or the $SCULPTING_DOMAINS value the last complete discovery read
_discovering = False


def _discovery_for_check() -> None:
    global _discovering
    _discovering = True
    try:
        discover()
    finally:
        _discovering = False


def register_domain(domain: Domain) -> Domain:
    """Register ``domain`` (replacing one of the same name): its pretrained sets, environment
    kinds, checkpoint kinds and CLI commands become visible to ``sc.load_pretrained``,
    ``sc.load_model`` and ``python -m sculpting``.

    Examples:
        >>> import sculpting as sc
        >>> d = sc.register_domain(sc.Domain("docs_example_registered"))
        >>> d.name
        'docs_example_registered'
    """
    if not isinstance(domain, Domain):
        raise TypeError(
            f"register_domain takes a sculpting.infrastructure.registry.Domain, got {type(domain).__name__}"
        )
    if _DISCOVERED is False and not _discovering:  # clashes are judged against every domain, the built-in ones too
        _discovery_for_check()
    for other in _REGISTERED.values():
        clash = set(other.commands) & set(domain.commands) if other.name != domain.name else set()
        if clash:
            raise ValueError(f"domain {domain.name!r}: command(s) {sorted(clash)} already belong to {other.name!r}")
    _check_kinds(domain)
    _REGISTERED[domain.name] = domain
    if domain.env_kinds:
        for kind, cls in domain.env_kinds.items():
            register_env(kind, cls)
    if domain.checkpoint_loaders:
        for kind, loader in domain.checkpoint_loaders.items():
            register_loader(kind, loader)
    return domain


def _check_kinds(domain: Domain) -> None:
    """Refuse environment or checkpoint kinds that another registered domain declares with something
    else, and the checkpoint kinds the package loads itself: replacing them would silently break
    those checkpoints (or never take effect, for the package's own kinds)."""

    for what in ("env_kinds", "checkpoint_loaders"):
        for kind, value in getattr(domain, what).items():
            if what == "checkpoint_loaders" and (kind in ADAPTER_KINDS or kind in _BUILT_IN_CHECKPOINT_KINDS):
                raise ValueError(
                    f"domain {domain.name!r}: {what} key {kind!r} is already served by the package; replacing it "
                    "would break every checkpoint of that kind — name your kind otherwise"
                )
            for other in _REGISTERED.values():
                theirs = getattr(other, what).get(kind)
                if other.name != domain.name and theirs is not None and theirs is not value:
                    raise ValueError(
                        f"domain {domain.name!r}: {what} key {kind!r} is already served by {theirs!r} (domain "
                        f"{other.name!r}); replacing it would break every checkpoint of that kind — name your kind "
                        "otherwise"
                    )


#: checkpoint kinds the package loads itself (sc.load_model dispatches them before any domain's loader)
_BUILT_IN_CHECKPOINT_KINDS = frozenset({"gflownet", "classifier", "score_model", "time_classifier"})


class DomainError(ImportError):
    """A domain named by ``$SCULPTING_DOMAINS`` (or found otherwise) cannot be registered."""


def _import_declaring(module_name: str):
    try:
        mod = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 (whatever the module raises while it is imported)
        raise DomainError(
            f"$SCULPTING_DOMAINS names the module {module_name!r}, which cannot be imported "
            f"({type(e).__name__}: {e}); fix or unset the variable"
        ) from None
    dom = getattr(mod, "DOMAIN", None)
    if not isinstance(dom, Domain):
        raise DomainError(
            f"$SCULPTING_DOMAINS names the module {module_name!r}, which declares no DOMAIN "
            "(a sculpting.infrastructure.registry.Domain); fix or unset the variable"
        )
    if dom.name not in _REGISTERED:
        try:
            register_domain(dom)
        except (TypeError, ValueError) as e:
            raise DomainError(f"$SCULPTING_DOMAINS: the domain of {module_name!r} cannot be registered: {e}") from None


def discover() -> None:
    """Find the built-in, installed and ``$SCULPTING_DOMAINS`` domains. Discovery is complete or
    raises: a failing domain names itself (the others stay registered) and the next call tries
    again, so the error is raised every time until it is fixed."""
    global _DISCOVERED, _discovering
    wanted = os.environ.get("SCULPTING_DOMAINS", "")
    if _DISCOVERED is not False and _DISCOVERED == wanted:
        return
    was, _discovering = _discovering, True
    try:
        _discover()
    finally:
        _discovering = was
    _DISCOVERED = wanted  # the value of $SCULPTING_DOMAINS this discovery read (a change is read again)


def _discover() -> None:

    # the domain packages by their folder: `import sculpting` itself imports no domain (nor their package)
    for info in sorted(pkgutil.iter_modules([str(DOMAINS_DIR)]), key=lambda i: i.name):
        name = f"sculpting.domains.{info.name}"
        if info.ispkg:
            if importlib.util.find_spec(f"{name}.domain") is None:
                continue
            name = f"{name}.domain"
        mod = importlib.import_module(name)
        if isinstance(getattr(mod, "DOMAIN", None), Domain) and mod.DOMAIN.name not in _REGISTERED:
            register_domain(mod.DOMAIN)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="sculpting.domains"):
            dom = ep.load()
            if isinstance(dom, Domain) and dom.name not in _REGISTERED:
                register_domain(dom)
    except Exception as e:  # a broken third-party plugin must not break the package
        import warnings

        warnings.warn(f"sculpting.domains entry points could not be loaded: {e}", stacklevel=2)
    for name in filter(None, (s.strip() for s in os.environ.get("SCULPTING_DOMAINS", "").split(","))):
        _import_declaring(name)


def domains() -> dict[str, Domain]:
    """Every registered domain, by name (discovering them on the first call)."""
    discover()
    return dict(_REGISTERED)


def get_domain(name: str) -> Domain:
    all_ = domains()
    if name not in all_:
        raise ValueError(f"unknown domain {name!r}; registered: {', '.join(sorted(all_))}")
    return all_[name]


def find_pretrained(name: str):
    """The loader of ``"<domain>/<set>"``; a ``ValueError`` listing every valid name otherwise."""
    valid = [f"{d.name}/{s}" for d in domains().values() for s in d.pretrained]
    if not isinstance(name, str) or name.count("/") != 1:
        raise ValueError(f"a pretrained set is named '<domain>/<set>', got {name!r}; choose from {', '.join(valid)}")
    dom, key = name.split("/")
    d = _REGISTERED.get(dom)
    if d is None or key not in d.pretrained:
        raise ValueError(f"unknown pretrained set {name!r}; choose from {', '.join(valid)}")
    return _checked_loader(name, d.pretrained[key])


def _checked_loader(name: str, loader):
    """``loader`` whose result is checked: a pair (bases, classifier), bases a list of ≥ 2 models."""

    def load(*args, **kwargs):
        out = loader(*args, **kwargs)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (list, tuple)) and len(out[0]) >= 2):
            raise TypeError(
                f"the pretrained loader of {name!r} ({getattr(loader, '__qualname__', loader)!r}) returned "
                f"{type(out).__name__}, not (bases, classifier) with a list of ≥ 2 bases; fix the "
                "domain's loader"
            )
        return out

    return load


def find_bases(name: str):
    """``loader(directory=None) -> bases`` of ``"<domain>/<set>"``: the domain's own ``bases``
    loader, else its pretrained loader's bases (read from ``base_directory=directory``)."""
    full = find_pretrained(name)
    dom, key = name.split("/")
    own = _REGISTERED[dom].bases.get(key)
    return own if own is not None else (lambda directory=None: full(base_directory=directory)[0])


set_discovery(discover)  # checkpoint loaders of the method layer find the domains' kinds through this
