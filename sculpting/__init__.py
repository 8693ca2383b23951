"""sculpting: compositional sculpting of iterative generative models (Garipov et al. 2023)."""
__version__ = "0.1.0"

from .algebra import Composition, l1_distance  # noqa: E402,F401
