"""Notebook tooling, kept apart from the method.

* :mod:`.validation` — checks a notebook's papermill parameters before any work starts;
* :mod:`.reporting` — output folders, figures, ``metrics.json``, thread counts, tables;
* :mod:`.plotting` — generic plots (grid panels, guided vs target, image grids);
* :mod:`.panel` — the ipywidgets base class of every domain's sculpting panel;
* :mod:`.reproduce` — ``python -m sculpting.lab.reproduce`` runs the numbered notebooks.

Nothing in the method core (``sculpting.algebra``, ``sculpting.compose``, ``sculpting.gflownet``,
``sculpting.diffusion``) imports this package.
"""
