"""Interactive sculpting of colored-MNIST diffusion models (ipywidgets).

Pick a composition (or a base), α for the two-base operations, the guidance scale γ, the sampler
and its steps, and press "new batch": the composed model draws images, shown as a grid titled with
the judge's support rate, beside the exact type masses and the batch's judged type frequencies.
The default sampler is EDM with 50 steps (99 score calls; ``docs/diffusion.md``): a batch of 16 in
a few seconds on one CPU thread; "pc" is the predictor–corrector sampler (2 calls per step).
The classifier is the shipped learned one, or the **data oracle** (the exact classifier of the
bases' finite training sets, :mod:`sculpting.domains.mnist.oracle`): the difference between the two
is the classifier's share of a composition's error.
"""

from __future__ import annotations

import time

import ipywidgets as W
import matplotlib.pyplot as plt
import torch

from sculpting.compose import compose
from sculpting.diffusion.paths import DiffusionPathComposition
from sculpting.diffusion.samplers import SAMPLERS
from sculpting.domains.mnist.experiments import BASE_SUPPORT, CLASSIFIER_SETS, COMPOSITIONS, exact_masses, judge_samples
from sculpting.domains.mnist.oracle import oracle_classifiers
from sculpting.domains.mnist.types import TYPES
from sculpting.lab.panel import SculptingPanel
from sculpting.lab.plotting import show_image_grid

#: "no classifier": the composition the bases' own paths define, sampled by the path SMC
CLASSIFIER_CHOICES = ("learned", "data oracle", "no classifier")

__all__ = ["MnistSculptingPanel"]


class MnistSculptingPanel(SculptingPanel):
    def __init__(
        self,
        models: dict,
        n_images: int = 16,
        steps: int = 50,
        gamma: float = 1.0,
        seed: int = 0,
        sampler: str = "edm",
        classifier: str = "learned",
        oracles: dict | None = None,
    ):
        super().__init__()
        self.models, self._oracles = models, oracles
        if classifier not in CLASSIFIER_CHOICES:
            raise ValueError(f"classifier must be one of {CLASSIFIER_CHOICES}, got {classifier!r}")
        self.classifier = self.dropdown(list(CLASSIFIER_CHOICES), classifier, "classifier")
        options = list(COMPOSITIONS) + [f"base {n}" for n in models["bases"]]
        self.operation = self.dropdown(options, "M1⊗M2", "composition")
        self.alpha = self.slider(0.5, 0.05, 0.95, 0.05, "α")
        self.gamma = self.slider(gamma, 0.0, 30.0, 0.5, "γ")
        self.n_images = self.slider(n_images, 4, 64, 4, "images", integer=True)
        menu = sorted(n for n, c in SAMPLERS.items() if not c.required)  # no required option
        if sampler not in menu:
            raise ValueError(f"unknown diffusion sampler {sampler!r}; choose from {menu}")
        self.sampler_name = self.dropdown(menu, sampler, "sampler")
        self.steps = self.slider(steps, 10, 500, 10, "steps", integer=True)
        self.button = W.Button(description="new batch", button_style="primary")
        self.output = W.Output()
        self.button.on_click(lambda _: self.draw())
        self.operation.observe(self._toggle_alpha, names="value")
        self.classifier.observe(self._toggle_sampler, names="value")
        self.classifier.observe(lambda _: self.draw(), names="value")
        self.widget = W.VBox(
            [
                W.HBox([self.operation, self.alpha, self.gamma, self.classifier]),
                W.HBox([self.n_images, self.sampler_name, self.steps, self.button]),
                self.status,
                self.output,
            ]
        )
        self.generator = torch.Generator().manual_seed(seed)
        self._toggle_alpha()

    def _toggle_sampler(self, *_):
        """With no classifier the composition is sampled by the path SMC: the sampler menu does nothing."""
        self.sampler_name.disabled = self.classifier.value == "no classifier"

    def _toggle_alpha(self, *_):
        op = self.operation.value
        self.alpha.disabled = op.startswith("base") or COMPOSITIONS[op][0] != "M1_M2"
        self.gamma.disabled = op.startswith("base")

    def sampler(self):
        op = self.operation.value
        if op.startswith("base "):
            name = op[5:]
            return self.models["bases"][name], BASE_SUPPORT[name]
        set_name, operation, support = COMPOSITIONS[op]
        bases = [self.models["bases"][n] for n in CLASSIFIER_SETS[set_name]]
        choice = self.classifier.value
        if choice == "no classifier":  # the composition the bases' own paths define (docs/classifier_free.md)
            clf = None
        else:
            clf = self.models["classifiers"][set_name] if choice == "learned" else self.oracles()[set_name]
        return compose(bases, clf, operation, alpha=self.alpha.value, gamma=self.gamma.value), support

    def oracles(self) -> dict:
        """The data oracles of the classifier sets (built on first use: about a second)."""
        if self._oracles is None:
            self._oracles = oracle_classifiers(self.models)
        return self._oracles

    def draw(self):
        return self.timed(self._draw)

    def _draw(self):
        t0 = time.perf_counter()
        model, support = self.sampler()
        name = self.sampler_name.value
        if isinstance(model, DiffusionPathComposition):
            name = "smc"  # no classifier: only the path SMC samples it
        if name == "smc" and not hasattr(model, "composition"):
            name = "edm"  # a base is sampled exactly; SMC weighs compositions
        # SMC moves by Euler–Maruyama steps, which need ≥ 100 on the shipped VE models
        steps = max(self.steps.value, 100) if name == "smc" else self.steps.value
        images = SAMPLERS[name]().draw(model, self.n_images.value, self.generator, steps=steps)
        op = self.operation.value
        masses = exact_masses(op[5:] if op.startswith("base ") else op, self.alpha.value)
        verdict = judge_samples(self.models["judge"], images, support, masses)
        exact = "" if self.gamma.value != 1.0 and not op.startswith("base ") else f", TV to exact {verdict['tv']:.2f}"
        title = f"{op} — support {verdict['support_rate']:.0%}{exact}"
        self.output.clear_output(wait=True)
        with self.output:
            fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 4), gridspec_kw={"width_ratios": [1, 1.1]})
            show_image_grid(ax, images, title, nrow=int(len(images) ** 0.5 + 0.999))
            plot_type_bars(bx, masses, verdict["types"])
            plt.show()
        plt.close(fig)  # shown: the figure is not kept open across presses
        self.status.value = f"<b>{title}</b> ({time.perf_counter() - t0:.1f} s; judge: {verdict['types']})"
        return {"images": images, **verdict}


def plot_type_bars(ax, masses: dict, judged: dict):
    """Exact type masses (γ = 1) beside the judged type frequencies of a batch."""
    n = max(sum(judged.values()), 1)
    keys = [k for k in TYPES if k in masses or k in judged] + sorted(set(judged) - set(TYPES))
    xs = range(len(keys))
    ax.bar([x - 0.2 for x in xs], [masses.get(k, 0.0) for k in keys], width=0.4, label="exact (γ = 1)")
    ax.bar([x + 0.2 for x in xs], [judged.get(k, 0) / n for k in keys], width=0.4, label="judged, this batch")
    ax.set_xticks(list(xs), keys, rotation=45, fontsize=8)
    ax.set(ylim=(0, 1), ylabel="share of images")
    ax.legend(fontsize=8)
