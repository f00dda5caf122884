r"""Cache → metric profiles: every metric over every (layer, step, branch) slice of an activation cache.

Modules, along the library's concepts:

* :mod:`.access` — ``open_dataset``, ``select``, ``slice_matrix`` (the blog's ``(layer, d, N)`` Z),
  ``labels_of`` (``"coarse"``, ``"fine"`` or any sample coordinate), ``relative_depth``;
* :mod:`.profiles` — ``profile``/``profiles`` (one kernel lifted with ``xr.apply_ufunc`` over
  ``("feature", "sample")``; ``scale``, ``center`` incl. ``"class"``, cluster or stratified bootstrap),
  ``average_over_steps``, ``sweep_profile``;
* :mod:`.nulls` — ``permutation_profile`` (free or restricted ``within=`` nulls, class-centred nulls,
  multiplicity-corrected p-values), ``overlap_null_profile``, ``split_profile`` (ΔR = class-mean part +
  within-class geometry part);
* :mod:`.derived` — intervals for ratios (``block_ratio``), depth trends (``depth_trend``, Spearman ρ) and
  landmark locations (``landmark``, with a "flat, no landmark" verdict);
* :mod:`.sample_size` — ``sample_size_curve``: what 2 … 20 images per class can estimate;
* :mod:`.overlaps` — ``overlap_matrix``, ``transition_layer``/``transition_landmark``, ``rank_bounds``.

Metric names accepted by :func:`profile` (``METRICS``): ``delta_R``, ``R``, ``Rc``, ``Rc_over_R``
(rate-reduction family; ``R`` needs no labels), ``effective_rank`` (Roy–Vetterli), ``participation_ratio``,
``mean_overlap`` (mean off-diagonal class-subspace overlap; adds a ``chance`` variable), ``hoyer``,
``jb_rejection`` and ``sigreg`` (isotropy test on random projections).
"""

from .access import (
    LABELLED,
    METRICS,
    RATE_METRICS,
    SCHEMES,
    labels_of,
    num_layers_total,
    open_dataset,
    relative_depth,
    select,
    slice_matrix,
)
from .derived import block_ratio, depth_trend, landmark
from .nulls import overlap_null_profile, permutation_profile, split_profile
from .overlaps import category_of_subject, overlap_matrix, rank_bounds, transition_landmark, transition_layer
from .profiles import average_over_steps, bootstrap_rows, evaluate, profile, profiles, replicates, sweep_profile
from .sample_size import sample_size_curve

__all__ = [
    "LABELLED",
    "METRICS",
    "RATE_METRICS",
    "SCHEMES",
    "average_over_steps",
    "block_ratio",
    "bootstrap_rows",
    "category_of_subject",
    "depth_trend",
    "evaluate",
    "labels_of",
    "landmark",
    "num_layers_total",
    "open_dataset",
    "overlap_matrix",
    "overlap_null_profile",
    "permutation_profile",
    "profile",
    "profiles",
    "rank_bounds",
    "relative_depth",
    "replicates",
    "sample_size_curve",
    "select",
    "slice_matrix",
    "split_profile",
    "sweep_profile",
    "transition_landmark",
    "transition_layer",
]
