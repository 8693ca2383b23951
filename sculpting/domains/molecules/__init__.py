"""Fragment-based molecule domain (Bengio et al. 2021 fragments, sEH proxy, QED, SA).

Modules: :mod:`.data` (data directory, download), :mod:`.proxy` / :mod:`.rewards`, :mod:`.fragments`
(readable reference environment), :mod:`.env` (batched tensor environment), :mod:`.graph_transformer`,
:mod:`.policy` (β-conditional GFlowNet), :mod:`.classifier` (graph classifiers),
:mod:`.experiments`, :mod:`.metrics`, :mod:`.plotting`, :mod:`.widgets`, :mod:`.io`,
:mod:`.enumerated` (exact checks on tiny worlds).
"""

import warnings

# torch-geometric 2.8 calls torch.jit.script at import time, which torch ≥ 2.10 deprecates
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


def __getattr__(name):  # lazy: ``python -m sculpting.domains.molecules.data`` must not import data first
    if name == "seh_reward":
        from sculpting.domains.molecules.proxy import seh_reward

        return seh_reward
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
