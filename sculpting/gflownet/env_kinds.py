"""The table of environment kinds a checkpoint can name (a leaf module: the registry, the domains and
the adapters fill it; :func:`sculpting.gflownet.io.make_env` reads it).

``ENVS[kind](**env.config)`` rebuilds an environment whose ``space["kind"]`` is ``kind``.
"""

from __future__ import annotations

__all__ = ["ENVS", "register_env", "set_discovery", "discover_kinds"]

#: environment kind (``env.space["kind"]``) -> class (or factory) built from ``env.config``
ENVS: dict = {}

#: what finds the kinds the domains declare (set by :mod:`sculpting.infrastructure.registry`, a layer above this one)
_DISCOVERY = None


def set_discovery(find) -> None:
    """Install ``find()``, which imports the domains so that their kinds register (the registry's
    discovery: the method layer names no domain)."""
    global _DISCOVERY
    _DISCOVERY = find


def discover_kinds() -> None:
    """Run the installed discovery (nothing if the registry was never imported)."""
    if _DISCOVERY is not None:
        _DISCOVERY()


def register_env(kind: str, cls) -> None:
    """Make checkpoints of environment ``kind`` loadable: ``cls(**env.config)`` rebuilds the env."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"an environment kind is a non-empty string, got {kind!r}")
    if not callable(cls):
        raise TypeError(f"register_env({kind!r}, ...) needs a class or factory, got {cls!r}")
    ENVS[kind] = cls
