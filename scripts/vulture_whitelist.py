"""Names vulture reports as unused that are used where it does not look: the notebooks, IPython's
display protocol, dataclass fields read by ``vars`` / ``asdict``, attributes read by tests and
benchmarks, and the module ``__getattr__`` protocol. Checked by ``tests/test_lint.py``:
``vulture sculpting tests benchmarks scripts/vulture_whitelist.py --min-confidence 60`` (reports
about sculpting/ and this file only; a test's fixtures look unused to vulture)."""

# ruff: noqa
# fmt: off
from sculpting.domains.grid.experiments import smc_l1
from sculpting.lab.plotting import plot_image_grids
smc_l1                                                                # notebooks/03
plot_image_grids                                                      # notebooks/04, 06, 10
from sculpting.smc_core import SMCRun
SMCRun.final_ess                                                      # public property (docs/smc.md)
from sculpting.lab.panel import Panel
Panel._ipython_display_                                               # IPython's display protocol
from sculpting.sampling import Sampler
Sampler.summary                                                       # the samplers' one-line docs (menus, docs)
__getattr__                                                           # PEP 562 (sculpting.domains.molecules)
exc                                                                   # __exit__(self, *exc)
# counters read by tests, benchmarks and stats reports
_.fallback_states; _.full_states; _.scored_rows; _.envelope_violations; _.hits; _.misses
_.disabled                                                            # ipywidgets' enabled state
_.__spec__                                                            # hiding __main__ from multiprocessing
__dir__                                                               # sculpting.__dir__: what dir(sculpting) lists
