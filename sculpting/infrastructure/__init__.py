"""Infrastructure: what the method runs on, none of it the method itself.

* ``bounds`` — sampling-noise and float32 bounds the checks share.
* ``checkpoints`` / ``fingerprint`` — safe, atomic checkpoints with metadata beside the weights.
* ``workers`` — the one process pool (fork / forkserver / spawn) every parallel run uses.
* ``distributed`` — multi-GPU data-parallel training.
* ``runs`` — run folders that resume.
* ``runtime`` — where a model computes.
* ``training_scaffold`` — configs, seeding, EMA, progress bars and resumable state every trainer shares.
* ``registry`` — domains and their commands; ``pretrained`` — the shipped model sets;
  ``cli`` — ``python -m sculpting``.

This package's ``__init__`` imports nothing, so importing one module never imports the others.
"""
