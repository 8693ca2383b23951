"""The three reference domains, each self-contained (environment or data, rewards, experiments,
plots, an interactive panel, shipped models and their builder): :mod:`.grid`, :mod:`.mnist`,
:mod:`.molecules`. They use the method packages (:mod:`sculpting.gflownet`,
:mod:`sculpting.diffusion`); the method never imports a domain."""
