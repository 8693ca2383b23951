"""Interactive sculpting panels (ipywidgets + plotly) used by the notebooks.

:class:`GridSculptingPanel`: pick the operation (two bases) or the observations (three bases),
the weight α, the guidance form and the classifier (learned / oracle); the exact guided
distribution and its exact target are recomputed and redrawn on every change, with the L1
between them in the title. With the sampler set to "SMC", the left panel shows instead the
histogram of ``smc_samples`` sequential Monte Carlo samples (N = ``particles`` per run) and its L1
to the composition the classifier's terminal head defines (``docs/smc.md``).
"""

from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sculpting.algebra import TWO_BASE_OPERATIONS, Composition, l1_distance, parse_composition
from sculpting.compose import compose, sample
from sculpting.domains.grid.experiments import base_tables, guided_distribution
from sculpting.gflownet.exact import terminal_log_probs
from sculpting.gflownet.guidance import GUIDANCE_FORMS
from sculpting.gflownet.smc import terminal_target
from sculpting.lab.panel import SculptingPanel

__all__ = ["GridSculptingPanel"]


class GridSculptingPanel(SculptingPanel):
    """Live sculpting of grid GFlowNets.

    Args:
        bases: m base GFlowNets on one grid; classifier: their sculpting classifier.
        base_names: display names. ``update()`` can be called directly (tests, benchmarks).
    """

    def __init__(
        self,
        bases,
        classifier,
        base_names=None,
        operation: str | None = None,
        alpha: float = 0.5,
        form: str = "anchored",
        sampler: str = "exact",
        particles: int = 64,
        smc_samples: int = 1024,
    ):
        super().__init__()
        if classifier.space != bases[0].env.space:
            raise ValueError(f"classifier was built for {classifier.space}, the bases for {bases[0].env.space}")
        self.bases, self.classifier, self.env = list(bases), classifier, bases[0].env
        self.m = len(bases)
        self.names = list(base_names or [f"p{i + 1}" for i in range(self.m)])
        self.tables = base_tables(self.bases)
        self.base_lp = terminal_log_probs(self.env, self.tables)
        style = {"description_width": "90px"}
        if self.m == 2:
            self.operation = self.dropdown(list(TWO_BASE_OPERATIONS), operation or "harmonic", "operation")
            self.pickers = []
        else:
            slots = classifier.n_slots
            opts = [("—", 0)] + [(self.names[i], i + 1) for i in range(self.m)]
            self.pickers = [
                W.Dropdown(
                    options=opts,
                    value=[1, 2, 3][k] if k < 3 else 0,
                    description=f"y{k + 1}",
                    style=style,
                    layout=W.Layout(width="200px"),
                )
                for k in range(slots)
            ]
            self.operation = None
        self.alpha = W.FloatSlider(
            value=alpha,
            min=0.01,
            max=0.99,
            step=0.01,
            description="α",
            continuous_update=True,
            style=style,
            disabled=self.m != 2,
        )
        self.form = W.ToggleButtons(options=list(GUIDANCE_FORMS), value=form, description="guidance", style=style)
        self.source = W.ToggleButtons(
            options=["learned", "oracle"], value="learned", description="classifier", style=style
        )
        if sampler not in ("exact", "smc"):
            raise ValueError(f"sampler must be 'exact' (the guided policy's law) or 'smc', got {sampler!r}")
        self.sampler = W.ToggleButtons(options=["exact", "smc"], value=sampler, description="sampler", style=style)
        self.particles = W.IntSlider(
            value=particles, min=4, max=1024, step=4, description="particles", continuous_update=False, style=style
        )
        self.smc_samples = smc_samples
        self.figure = go.FigureWidget(
            make_subplots(rows=1, cols=2, subplot_titles=("guided", "target"), horizontal_spacing=0.08)
        )
        z = self.env.as_image(self.base_lp[0].exp()).numpy()
        bar = dict(title=dict(text="probability<br>(both maps)", side="right"), thickness=12)
        for col in (1, 2):  # one colour scale for both maps (set in _update), its bar beside the target
            self.figure.add_trace(
                go.Heatmap(z=z, colorscale="Viridis", showscale=col == 2, colorbar=bar, zmin=0), row=1, col=col
            )
        # the mode bar stands vertically at the right edge, clear of the title
        self.figure.update_layout(width=800, height=400, margin=dict(l=50, r=40, t=70, b=45), modebar_orientation="v")
        self.figure.update_xaxes(title_text="z₁", showticklabels=False)
        self.figure.update_yaxes(title_text="z₀", showticklabels=False, scaleanchor="x", constrain="domain")
        controls = [
            c
            for c in [self.operation, *self.pickers, self.alpha, self.form, self.source, self.sampler, self.particles]
            if c is not None
        ]
        for c in controls:
            c.observe(self.update, names="value")
        top = [self.operation, self.alpha] if self.m == 2 else self.pickers
        rest = [c for c in controls if all(c is not t for t in top)]
        self.widget = W.VBox([W.HBox(top), W.HBox(rest), self.status, self.figure])
        self.update()

    def composition(self) -> Composition:
        if self.m == 2:
            return parse_composition(self.operation.value, 2, self.alpha.value)
        return parse_composition(tuple(p.value for p in self.pickers if p.value), self.m)

    def update(self, *_):
        """Recompute the exact guided distribution and its target; redraw. Returns the numbers."""
        return self.timed(self._update)

    def _update(self):
        c = self.composition()
        clf = None if self.source.value == "oracle" else self.classifier
        guided, target = guided_distribution(self.bases, c, clf, self.form.value, self.tables)
        what = "guided"
        if self.sampler.value == "smc":
            import torch

            model = compose(self.bases, clf, c, form=self.form.value)
            target, _ = terminal_target(model)  # the oracle's is the true target
            x = sample(model, self.smc_samples, seed=0, sampler="smc", particles=self.particles.value)
            h = torch.bincount(self.env.index(x), minlength=self.env.n_states).double() / len(x)
            guided, what = h.clamp_min(1e-300).log(), f"SMC N={self.particles.value}"
        l1 = l1_distance(guided, target)
        label = c.label(self.names)
        self.particles.disabled = self.sampler.value != "smc"  # N means nothing to the exact law
        zmax = float(max(guided.exp().max(), target.exp().max()))
        with self.figure.batch_update():
            self.figure.data[0].z = self.env.as_image(guided.exp()).numpy()
            self.figure.data[1].z = self.env.as_image(target.exp()).numpy()
            for trace in self.figure.data:
                trace.zmax = zmax
            self.figure.layout.title = f"{label} — {self.form.value} guidance, {self.source.value} classifier"
            self.figure.layout.annotations[0].text = f"{what} (L1 = {l1:.4f})"
        self.updates = getattr(self, "updates", 0) + 1
        # written after the figure's batch update: "update N" tells a watcher (the browser test) that
        # redraw N has been sent
        self.status.value = f"<b>{label}</b>: L1({what}, target) = {l1:.4f} <small>(update {self.updates})</small>"
        return {"label": label, "l1": l1, "guided": guided, "target": target, "sampler": self.sampler.value}
