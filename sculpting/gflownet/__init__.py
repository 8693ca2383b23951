"""GFlowNets: environments kinds, policies, guidance, samplers (one per file in samplers/), SMC."""
