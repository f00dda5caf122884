"""SubspaceLens: training-free subspace interpretability of diffusion transformers.

Data flows one way: prompts -> hooked pipeline (:mod:`subspacelens.capture`) ->
activation cache (:mod:`subspacelens.cache`) -> metrics (:mod:`subspacelens.metrics`)
-> chapter notebooks -> book. Figures live in :mod:`subspacelens.viz`.
"""

__version__ = "0.1.0"

import warnings

# Chapters print plain-text progress bars. diffusers imports tqdm.auto, which warns in a kernel
# without ipywidgets; the warning would land in every executed chapter as noise.
warnings.filterwarnings("ignore", message="IProgress not found")
