r"""Hoyer sparsity of activation vectors: are they sparse (dictionary-like) or dense?"""

import numpy as np

from ._checks import as_samples


def hoyer_sparsity(Z):
    r"""Mean over columns of Hoyer's sparsity :math:`(\sqrt d - \|z\|_1/\|z\|_2)/(\sqrt d - 1)`.

    ``Z`` is ``(..., d, N)``; each column z scores 1 when it has a single nonzero entry and 0 when all its
    entries have equal magnitude. Returns shape ``Z.shape[:-2]``. Needs d ≥ 2 and no zero column.
    """
    Z = as_samples(Z)
    d = Z.shape[-2]
    if d < 2:
        raise ValueError("Z: Hoyer sparsity needs feature dimension d >= 2")
    l2 = np.linalg.norm(Z, axis=-2)
    if not (l2 > 0).all():
        raise ValueError("Z: a column is all zero, so its Hoyer sparsity is undefined")
    l1 = np.abs(Z).sum(axis=-2)
    root_d = np.sqrt(d)
    return ((root_d - l1 / l2) / (root_d - 1.0)).mean(axis=-1)
