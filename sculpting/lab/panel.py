"""The base of the sculpting panels: a widget tree, a status line, timed updates.

A domain panel builds its controls with :meth:`SculptingPanel.dropdown` / :meth:`slider`, lays them
out in ``self.widget``, and implements its update as a method wrapped by :meth:`timed` (which stores
the result, plus ``seconds``, in ``self.last`` — what tests and the browser test read).
"""

from __future__ import annotations

import time

import ipywidgets as W

__all__ = ["SculptingPanel"]

STYLE = {"description_width": "90px"}


class SculptingPanel:
    """Common plumbing; subclasses set ``self.widget`` and call :meth:`timed`."""

    def __init__(self):
        self.status = W.HTML()
        self.last: dict = {}
        self.widget = None

    @staticmethod
    def dropdown(options, value, description: str, **layout) -> W.Dropdown:
        return W.Dropdown(
            options=options,
            value=value,
            description=description,
            style=STYLE,
            **({"layout": W.Layout(**layout)} if layout else {}),
        )

    @staticmethod
    def slider(value, lo, hi, step, description: str, continuous: bool = False, integer: bool = False):
        cls = W.IntSlider if integer else W.FloatSlider
        return cls(
            value=value, min=lo, max=hi, step=step, description=description, style=STYLE, continuous_update=continuous
        )

    def timed(self, fn, *args, **kwargs) -> dict:
        """Run ``fn`` (returning a dict), record it with its wall time in ``self.last``."""
        t0 = time.perf_counter()
        out = fn(*args, **kwargs) or {}
        self.last = {**out, "seconds": time.perf_counter() - t0}
        return self.last

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
