"""SubspaceLens: training-free subspace interpretability of diffusion transformers.

Data flows one way: prompts -> hooked pipeline (:mod:`subspacelens.capture`) ->
activation cache (:mod:`subspacelens.cache`) -> metrics (:mod:`subspacelens.metrics`)
-> chapter notebooks -> book. Figures live in :mod:`subspacelens.viz`.
"""

__version__ = "0.1.0"
