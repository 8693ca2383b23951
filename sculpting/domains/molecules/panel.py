"""Interactive sculpting of fragment-molecule GFlowNets (ipywidgets).

Pick a base or a composition (SEH×SA two-way operations with α, SEH/SA/QED three-way label
sets) and the inverse temperature β (the bases and the classifiers are β-conditional, so every β in
[4, 96] works without retraining; contrasts show best at β ≈ 8–16, where the bases overlap), press "sample": the
guided policy draws molecules, shown as a grid of drawings with their
SEH / SA / QED rewards, next to the SEH–SA scatter of the batch against the bases.
"""

from __future__ import annotations

import io
import time

import ipywidgets as W
import matplotlib.pyplot as plt

from sculpting.domains.molecules.experiments import composition_policy, sample_molecules, summarize_samples
from sculpting.domains.molecules.plotting import draw_molecules, plot_property_scatter
from sculpting.gflownet.samplers import GFLOWNET_SAMPLERS
from sculpting.lab.panel import SculptingPanel
from sculpting.infrastructure.runtime import device_of
from sculpting.infrastructure.workers import default_workers, resolve_workers

__all__ = ["MoleculeSculptingPanel", "PANEL_CHOICES"]

PANEL_CHOICES = {
    "SEH ⊗ SA (harmonic)": "harmonic",
    "SEH ◑ SA (contrast)": "contrast",
    "SA ◑ SEH (reverse contrast)": "reverse_contrast",
    "SEH + SA (mixture)": "mixture",
    "SEH⊗SA⊗QED (y=123)": "y=123",
    "SEH⊗SA (y=12, 3 bases)": "y=12",
    "SEH ◑ {SA,QED} (y=11)": "y=11",
    "SA ◑ {SEH,QED} (y=22)": "y=22",
    "QED ◑ {SEH,SA} (y=33)": "y=33",
    "base SEH": "base seh",
    "base SA": "base sa",
    "base QED": "base qed",
}


class MoleculeSculptingPanel(SculptingPanel):
    """``reference``: optional {label: reward dict} drawn behind each batch in the scatter;
    ``form``: the guidance form ("anchored" or "paper"); ``sampler``: the GFlowNet sampler
    ("auto" = exact rejection, "amortised" = the shipped successor heads' proposal, "full", "smc" =
    sequential Monte Carlo with the amortised proposal, ``particles`` per run; a dropdown in the panel);
    ``workers``: sampling processes of one thread each per press (default: at most 2, following the
    models' device — :func:`sculpting.infrastructure.workers.default_workers`: cores for CPU models, one per GPU for
    CUDA models; each draws ⌈1.25·n / workers⌉ trajectories a round; 1: in this process)."""

    def __init__(
        self,
        models: dict,
        n_molecules: int = 12,
        beta: float = 32.0,
        reference=None,
        seed: int = 0,
        form: str = "anchored",
        sampler: str = "auto",
        workers: int | None = None,
        particles: int = 32,
    ):
        super().__init__()

        if sampler not in GFLOWNET_SAMPLERS:
            raise ValueError(f"unknown GFlowNet sampler {sampler!r}; choose from {sorted(GFLOWNET_SAMPLERS)}")
        if workers is None:
            bases = list((models.get("bases") or {}).values()) if isinstance(models, dict) else []
            workers = min(2, default_workers(device_of(bases[0]) if bases else None))
        self.workers = resolve_workers(workers)
        self.models, self.reference, self.seed, self.form = models, reference or {}, seed, form
        self.sampler_choice = self.dropdown(sorted(GFLOWNET_SAMPLERS), sampler, "sampler", width="200px")
        self.particles = self.slider(particles, 4, 128, 4, "particles", integer=True)
        # "no classifier": the composition the bases' own paths define, sampled by the path SMC
        self.classifier = self.dropdown(["learned", "no classifier"], "learned", "classifier", width="220px")
        self.classifier.observe(self._toggle_sampler, names="value")
        self.sampler_choice.observe(self._toggle_sampler, names="value")
        self.operation = self.dropdown(list(PANEL_CHOICES), "SEH ⊗ SA (harmonic)", "composition", width="360px")
        self.alpha = self.slider(0.5, 0.05, 0.95, 0.05, "α")
        self.beta_slider = self.slider(float(beta), 4.0, 96.0, 4.0, "β")
        self.n = self.slider(n_molecules, 4, 48, 4, "molecules", integer=True)
        self.button = W.Button(description="sample", button_style="primary")
        self.image = W.Image(format="png")
        self.plot = W.Output()
        self.button.on_click(lambda _: self.sample())
        self.operation.observe(self._toggle_alpha, names="value")
        self.widget = W.VBox(
            [
                W.HBox([self.operation, self.alpha]),
                W.HBox([self.beta_slider, self.n, self.button]),
                W.HBox([self.classifier, self.sampler_choice, self.particles]),
                self.status,
                W.HBox([self.image, self.plot]),
            ]
        )
        self._toggle_alpha()
        self._toggle_sampler()

    @property
    def sampler(self) -> str:
        return self.sampler_choice.value

    @property
    def beta(self) -> float:
        return float(self.beta_slider.value)

    def _toggle_sampler(self, *_):
        """With no classifier only the path SMC samples a composition: the sampler menu does nothing;
        the particles slider counts only where SMC samples (no classifier, or the "smc" sampler)."""
        free = self.classifier.value == "no classifier"
        self.sampler_choice.disabled = free
        self.particles.disabled = not (free or self.sampler_choice.value == "smc")

    def _toggle_alpha(self, *_):
        c = PANEL_CHOICES[self.operation.value]
        self.alpha.disabled = c.startswith("base") or c.startswith("y=")

    def sample(self):
        return self.timed(self._sample)

    def _sample(self):
        t0 = time.perf_counter()
        choice = PANEL_CHOICES[self.operation.value]
        free = self.classifier.value == "no classifier"
        policy = composition_policy(self.models, choice, self.alpha.value, self.beta, self.form, classifier=not free)
        self.seed += 1
        n, w = self.n.value, self.workers
        composed = hasattr(policy, "composition")
        sampler = ("smc" if free else self.sampler) if composed else "auto"
        opts = {"particles": self.particles.value} if sampler == "smc" else {}
        s = sample_molecules(
            policy,
            n,
            batch_size=-(-5 * n // (4 * w)) if w > 1 else n,
            seed=self.seed,
            progress=False,
            max_batches=4,
            workers=w,
            sampler=sampler,
            **opts,
        )
        if not s["mols"]:
            self.status.value = "<b>no valid molecule in 4 rounds</b>"
            return {}
        summary, rewards = summarize_samples(s)
        img = draw_molecules(
            s["mols"], {k: rewards[k] for k in ("seh", "sa", "qed")}, n=self.n.value, per_row=4, size=170
        )
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        self.image.value = buf.getvalue()
        self.plot.clear_output(wait=True)
        with self.plot:
            fig, ax = plt.subplots(figsize=(4.2, 4))
            plot_property_scatter(
                {**self.reference, self.operation.value: rewards}, ax=ax, title="this batch vs bases", max_points=300
            )
            plt.show()
        plt.close(fig)  # shown: the figure is not kept open across presses
        cell = summary["table_seh_sa"]["seh+ sa+"]
        self.status.value = (
            f"<b>{self.operation.value}</b>, β={self.beta:g}: {s['n_valid_sampled']} valid of {s['n_sampled']}, "
            f"mean SEH {summary['mean']['seh']:.2f}, SA {summary['mean']['sa']:.2f}, "
            f"QED {summary['mean']['qed']:.2f}; {cell:.0f}% in (SEH ≥ 0.5, SA ≥ 0.6) "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        return {"summary": summary, "rewards": rewards, "mols": s["mols"]}
