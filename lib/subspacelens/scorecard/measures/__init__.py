"""The scorecard's measures, one module per chapter of the book (importing this package registers them)."""

from . import (  # noqa: F401
    cond_vs_uncond,
    controls,
    dense_not_sparse,
    effective_rank,
    isotropy,
    per_subject,
    rate_reduction,
    steering_through_subspaces,
    transition_block,
)
