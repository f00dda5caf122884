r"""The controls the blog did not run, one module per kind.

* :mod:`.findings` — :func:`under_controls`: a finding's profile raw, controlled, against its null, next
  to the random-init twin and the activation norms (what every findings chapter draws);
* :mod:`.labellings` — ΔR globally and class-centred (:func:`centering_profile`), under any labelling
  (:func:`labels_profile`), and how much of the activations the noise seed fixes (:func:`seed_spread`);
* :mod:`.sensitivity` — ΔR at every ε (:func:`eps_profile`), whether a depth trend holds at every ε
  (:func:`layer_trend`), the width of every band (:func:`ci_widths`);
* :mod:`.branches` — the CFG branch gap with a paired interval (:func:`branch_gap`);
* :mod:`.models` — profiles of several caches along ``model`` (:func:`stack_models`);
* :mod:`.references` — what structureless data score (:func:`gaussian_hoyer`, :func:`hoyer_references`,
  :func:`isotropy_references`, :func:`isotropy_profile`);
* :mod:`.disk` — disk arithmetic for a capture (:func:`cache_nbytes`, :func:`store_nbytes`).
"""

from .branches import branch_gap
from .disk import cache_nbytes, store_nbytes
from .findings import describe, under_controls
from .labellings import centering_profile, labels_profile, seed_spread
from .models import stack_models
from .references import gaussian_hoyer, hoyer_references, isotropy_profile, isotropy_references
from .sensitivity import ci_widths, eps_profile, layer_trend

__all__ = [
    "branch_gap", "cache_nbytes", "centering_profile", "ci_widths", "describe", "eps_profile", "gaussian_hoyer",
    "hoyer_references", "isotropy_profile", "isotropy_references", "labels_profile", "layer_trend",
    "seed_spread", "stack_models", "store_nbytes", "under_controls",
]
