"""Domains that declare themselves: the one place the package learns what a domain offers.

A :class:`Domain` lists, as data, everything the package-level entry points need from a domain:

* ``pretrained``: set name → ``loader(directory=None, base_directory=None) -> (bases, classifier)``
  (``sc.load_pretrained("<domain>/<set>")``);
* ``bases`` (optional): set name → ``loader(directory=None) -> bases`` (``sc.load_bases``: the bases
  alone, e.g. to train a classifier of them; default: the pretrained loader's bases);
* ``env_kinds``: environment kind (``env.space["kind"]``) → class rebuilt as ``cls(**env.config)``
  when a checkpoint of a model on it is loaded (``sc.load_model``);
* ``checkpoint_loaders``: checkpoint kind → ``loader(path)`` for the domain's own model kinds;
* ``commands``: CLI command name → :class:`Command` (``python -m sculpting.train <command>``), each
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
from typing import Callable

__all__ = ["Domain", "Command", "register_domain", "domains", "get_domain", "find_pretrained", "PRESETS"]

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
    """

    run: Callable
    presets: dict | Callable
    arguments: list = field(default_factory=list)
    help: str = ""

    def preset(self, name: str, args=None):
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")
        return self.presets(name, args) if callable(self.presets) else self.presets[name]


@dataclass
class Domain:
    """A domain's declaration (see the module docstring)."""

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


_REGISTERED: dict[str, Domain] = {}
_DISCOVERED = False


def register_domain(domain: Domain) -> Domain:
    """Register ``domain`` (replacing one of the same name): its pretrained sets, environment
    kinds, checkpoint kinds and CLI commands become visible to ``sc.load_pretrained``,
    ``sc.load_model`` and ``python -m sculpting.train``."""
    if not isinstance(domain, Domain):
        raise TypeError(f"register_domain takes a sculpting.registry.Domain, got {type(domain).__name__}")
    for other in _REGISTERED.values():
        clash = set(other.commands) & set(domain.commands) if other.name != domain.name else set()
        if clash:
            raise ValueError(f"domain {domain.name!r}: command(s) {sorted(clash)} already belong to {other.name!r}")
    _REGISTERED[domain.name] = domain
    if domain.env_kinds:
        from sculpting.gflownet.io import register_env
        for kind, cls in domain.env_kinds.items():
            register_env(kind, cls)
    if domain.checkpoint_loaders:
        from sculpting.checkpoints import register_loader
        for kind, loader in domain.checkpoint_loaders.items():
            register_loader(kind, loader)
    return domain


def _import_declaring(module_name: str):
    mod = importlib.import_module(module_name)
    dom = getattr(mod, "DOMAIN", None)
    if dom is None:
        raise ImportError(f"module {module_name} declares no DOMAIN")
    if dom.name not in _REGISTERED:
        register_domain(dom)


def discover() -> None:
    """Find the built-in, installed and ``$SCULPTING_DOMAINS`` domains (once per process)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import sculpting.domains as pkg
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        name = f"{pkg.__name__}.{info.name}"
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
    return d.pretrained[key]


def find_bases(name: str):
    """``loader(directory=None) -> bases`` of ``"<domain>/<set>"``: the domain's own ``bases``
    loader, else its pretrained loader's bases (read from ``base_directory=directory``)."""
    full = find_pretrained(name)
    dom, key = name.split("/")
    own = _REGISTERED[dom].bases.get(key)
    return own if own is not None else (lambda directory=None: full(base_directory=directory)[0])
