"""Class partitions: which columns of ``Z`` belong to which class, as index arrays into the Gram."""

from dataclasses import dataclass

import numpy as np

from ._checks import as_labels, as_samples
from .gram import gram


@dataclass(frozen=True)
class ClassPartition:
    """The columns of each class, laid out for batched sub-block extraction.

    Attributes
    ----------
    classes : (K,) array
        The sorted distinct labels, ``np.unique(labels)``.
    sizes : (K,) int array
        ``N_j``, the number of samples of class j.
    index : (K, n_max) int array
        Row j lists the column positions of class j, padded with 0 past ``sizes[j]`` (see ``mask``).
    """

    classes: np.ndarray
    sizes: np.ndarray
    index: np.ndarray

    @property
    def n_samples(self):
        return int(self.sizes.sum())

    @property
    def codes(self):
        """(N,) int: the class index of every sample position."""
        codes = np.empty(self.n_samples, dtype=np.intp)
        codes[self.index[self.mask]] = np.repeat(np.arange(self.classes.size), self.sizes)
        return codes

    @property
    def mask(self):
        """(K, n_max) bool: which entries of ``index`` are real samples rather than padding."""
        return np.arange(self.index.shape[-1]) < self.sizes[:, None]

    def size_groups(self):
        """Yield ``(n, rows)`` for every distinct class size n, ``rows`` selecting the classes of that size.

        Classes of one size share one stacked (…, K_n, n, n) factorisation; ``index[..., rows, :n]`` holds
        their positions without padding.
        """
        for n in np.unique(self.sizes):
            yield int(n), self.sizes == n


def partition_labels(labels, n_samples, *, min_class_size=1):
    """Partition N sample positions by label; classes are ``np.unique(labels)`` (sorted).

    Raises ``ValueError`` naming ``labels`` when they are not 1-D, their length differs from N, one is
    missing (None or NaN), they cannot be sorted, or a class has fewer than ``min_class_size`` samples.
    """
    labels = as_labels(labels, n_samples)
    classes, codes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    too_small = sizes < min_class_size
    if too_small.any():
        raise ValueError(
            f"labels: class {classes[too_small][0].item()!r} has {sizes[too_small][0]} sample(s); "
            f"this metric needs at least {min_class_size} per class"
        )
    # A stable sort keeps each class's positions in their original order.
    order = np.argsort(codes, kind="stable")
    index = np.zeros((classes.size, sizes.max()), dtype=np.intp)
    index[np.arange(sizes.max()) < sizes[:, None]] = order
    return ClassPartition(classes=classes, sizes=sizes, index=index)


def sorted_partition(partition):
    """The partition of a class-sorted copy of the samples: class j occupies a contiguous run of positions.

    Resampling procedures lay each resample out class by class, so one partition describes all of them.
    """
    return partition_labels(np.repeat(partition.classes, partition.sizes), partition.n_samples)


def labelled_gram(Z, labels, *, center=False, normalize=False, scale=None, min_class_size=1):
    """The common start of every labelled metric: validated ``Z``, its class partition and its Gram.

    Returns ``(Z, partition, G)`` with ``Z`` float64, prepared as asked (``center``, ``scale``: see
    :mod:`.transforms`; ``center="class"`` uses these labels) and ``G = ZᵀZ``.
    """
    raw = as_samples(Z)
    partition = partition_labels(labels, raw.shape[-1], min_class_size=min_class_size)
    Z = as_samples(raw, center=center, normalize=normalize, scale=scale, codes=partition.codes)
    return Z, partition, gram(Z)
