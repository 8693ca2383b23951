"""Adapters that make models of other libraries sculptable bases (optional extras):
:mod:`.torchgfn` (GFlowNets trained with torchgfn on its HyperGrid) and :mod:`.diffusers`
(``UNet2DModel`` score / noise predictors with a VP or VE schedule)."""
