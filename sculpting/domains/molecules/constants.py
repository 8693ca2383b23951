"""Constants shared by the molecule environment and policies (a leaf module: imports nothing)."""

#: log-reward of a molecule RDKit cannot sanitise (far below any real one)
INVALID_LOG_REWARD = -75.0

#: the classifier sets: name -> the objectives of its bases, in label order
CLASSIFIER_SETS = {"seh_sa": ("seh", "sa"), "seh_sa_qed": ("seh", "sa", "qed")}
