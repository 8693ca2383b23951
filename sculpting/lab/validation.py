"""Validation of notebook parameters, run in the cell right after the papermill ``parameters``
cell so that a bad value fails within seconds, not after an hour of training.

    validate_parameters(globals(), {"steps": "int>0", "lr": "float>0", "form": "one of anchored|paper"})

Rules: ``int>0``, ``int>=0``, ``float>0``, ``float>=0``, ``alpha`` (0 < x < 1), ``prob`` (0 ≤ x ≤ 1),
``beta`` (0 ≤ x ≤ 96), ``workers`` (an integer > 0 or "auto"), ``bool``, ``str``, ``dir?`` (None or an existing
folder), ``one of a|b|c``,
``list of <rule>`` (non-empty), ``<rule>?`` (None allowed), and ``two_way`` / ``labels:m``
(composition specs of the molecule notebook). Every problem is collected and reported at once.
"""

from __future__ import annotations

import math
from pathlib import Path

from sculpting.algebra import TWO_BASE_OPERATIONS

__all__ = ["validate_parameters", "ParameterError"]


class ParameterError(ValueError):
    """One or more notebook parameters are invalid (the message lists them all)."""


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(rule: str, v):
    """None if ``v`` satisfies ``rule``, else a short reason."""
    if rule.endswith("?"):
        return None if v is None else _check(rule[:-1], v)
    if rule.startswith("list of "):
        if not isinstance(v, (list, tuple)) or not v:
            return "must be a non-empty list"
        bad = [(i, r) for i, x in enumerate(v) if (r := _check(rule[8:], x))]
        return f"item {bad[0][0]} {bad[0][1]}" if bad else None
    if rule.startswith("one of "):
        options = rule[7:].split("|")
        return None if v in options else f"must be one of {options}"
    if rule.startswith("labels:"):
        m = int(rule[7:])
        ok = isinstance(v, str) and (v == "mixture" or (v.isdigit() and all(1 <= int(c) <= m for c in v)))
        return None if ok else f"must be 'mixture' or observed labels in 1..{m} such as '12' (got {v!r})"
    if rule == "two_way":
        ok = (
            isinstance(v, (list, tuple))
            and len(v) == 2
            and v[0] in TWO_BASE_OPERATIONS
            and _number(v[1])
            and 0 < v[1] < 1
        )
        return (
            None if ok else f"must be [operation, α] with an operation of {sorted(TWO_BASE_OPERATIONS)} and 0 < α < 1"
        )
    checks = {
        "int>0": (lambda x: isinstance(x, int) and not isinstance(x, bool) and x > 0, "must be an integer > 0"),
        "int>=0": (lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= 0, "must be an integer ≥ 0"),
        "float>0": (lambda x: _number(x) and x > 0, "must be a finite number > 0"),
        "float>=0": (lambda x: _number(x) and x >= 0, "must be a finite number ≥ 0"),
        "alpha": (lambda x: _number(x) and 0 < x < 1, "must lie strictly between 0 and 1"),
        "prob": (lambda x: _number(x) and 0 <= x <= 1, "must lie in [0, 1]"),
        "beta": (lambda x: _number(x) and 0 <= x <= 96, "must lie in [0, 96]"),
        "beta|conditional": (
            lambda x: x == "conditional" or (_number(x) and 0 <= x <= 96),
            "must be 'conditional' or lie in [0, 96]",
        ),
        "workers": (
            lambda x: x == "auto" or (isinstance(x, int) and not isinstance(x, bool) and x > 0),
            "must be 'auto' or an integer > 0",
        ),
        "bool": (lambda x: isinstance(x, bool), "must be True or False"),
        "str": (lambda x: isinstance(x, str) and bool(x), "must be a non-empty string"),
        "dir": (lambda x: isinstance(x, (str, Path)) and Path(x).is_dir(), "must be an existing folder"),
    }
    if rule not in checks:
        raise ValueError(f"unknown parameter rule {rule!r}")
    ok, reason = checks[rule]
    return None if ok(v) else reason


#: names IPython puts in a notebook's globals (never parameters)
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def validate_parameters(values: dict, rules: dict) -> None:
    """Check ``values[name]`` against ``rules[name]`` for every rule; raise one
    :class:`ParameterError` listing every invalid parameter with its value. ``values`` is the
    notebook's ``globals()`` right after its parameters cell: a name there that is no parameter
    (papermill's ``-p stpes 10``, a misspelling) is reported too, with the closest parameter."""
    import difflib
    import inspect

    problems = []
    for name, v in values.items():
        if name.startswith("_") or name in rules or name in _IPYTHON_NAMES or callable(v) or inspect.ismodule(v):
            continue
        close = difflib.get_close_matches(name, list(rules), n=1)
        problems.append(
            f"{name}: not a parameter of this notebook" + (f" (did you mean {close[0]!r}?)" if close else "")
        )
    for name, rule in rules.items():
        if name not in values:
            problems.append(f"{name}: missing")
            continue
        reason = _check(rule, values[name])
        if reason:
            problems.append(f"{name} = {values[name]!r}: {reason}")
    if problems:
        raise ParameterError("invalid notebook parameters:\n  " + "\n  ".join(problems))
