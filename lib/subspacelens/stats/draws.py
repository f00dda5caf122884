r"""Every random draw of the library: bootstrap index sets and label permutations.

The contract: a draw takes the sample-side structure (strata, clusters, groups) and an ``int`` seed, uses
``numpy.random.default_rng(seed)`` and returns an ``(n_sets, N)`` integer array. Row ``b`` lists, for each
position of the resampled (or relabelled) data set, which original column sits there. A metric evaluates a
row by gathering those columns (or the matching Gram entries), so the same draws serve every layer, step and
branch of a batched ``Z`` and replicates are paired across slices.

Designs
-------
*Stratified bootstrap* (:func:`stratified_bootstrap`): within every stratum j, :math:`N_j` draws with
replacement; class sizes are kept. Treats the samples of a class as independent.

*Cluster bootstrap* (:func:`cluster_bootstrap`): draw whole clusters with replacement and keep all their
samples. In the v2 design every subject is rendered at the same 20 noise seeds (a crossed subject × seed
design), so the samples sharing a seed are not independent: resampling seeds as clusters keeps each
subject's count (one sample per seed) and carries the seed-to-seed dependence into the interval.

*Permutations* (:func:`permutation_indices`): a uniformly random permutation of the N positions, or, with
``within=groups``, an independent permutation inside every group (a label is only ever exchanged with a
sample of the same group): the restricted null "labels carry nothing beyond the group".
"""

import numpy as np

from .._validate import as_positive_int


def _as_codes(name, values, n_samples=None):
    """``values`` (1-D, length N) → (distinct values, integer codes), ``ValueError`` naming ``name``."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {values.shape}")
    if n_samples is not None and values.shape[0] != n_samples:
        raise ValueError(f"{name}: has length {values.shape[0]} but there are N={n_samples} samples")
    if values.dtype == object and any(v is None for v in values):
        raise ValueError(f"{name}: contains None")
    return np.unique(values, return_inverse=True)


def check_groups(within, n_samples):
    """Integer group codes of ``within`` (length N); every group needs at least 2 members to permute."""
    groups, codes = _as_codes("within", within, n_samples)
    sizes = np.bincount(codes, minlength=groups.size)
    if (sizes < 2).any():
        lonely = groups[sizes < 2][0]
        raise ValueError(f"within: group {lonely.item()!r} has a single sample, so nothing can be permuted in it")
    return codes


def permutation_indices(n_samples, n_permutations, seed=0, *, within=None):
    """``(n_permutations, N)`` permutations of ``range(N)``; with ``within``, each only inside its group.

    Row p relabels the data: column ``row[i]`` takes the label of position i, so the class-j columns of the
    permuted labelling are ``row[positions of class j]`` (the permuted labels are ``labels[argsort(row)]``).
    """
    n_permutations = as_positive_int("n_permutations", n_permutations)
    rng = np.random.default_rng(seed)
    if within is None:
        return rng.permuted(np.tile(np.arange(n_samples), (n_permutations, 1)), axis=1)
    codes = check_groups(within, n_samples)
    out = np.tile(np.arange(n_samples), (n_permutations, 1))
    for group in range(codes.max() + 1):
        members = np.flatnonzero(codes == group)
        out[:, members] = rng.permuted(np.tile(members, (n_permutations, 1)), axis=1)
    return out


def stratified_bootstrap(strata, n_boot, seed=0):
    """``(n_boot, N)``: every row draws :math:`N_j` members of each stratum j with replacement, stratum by stratum."""
    n_boot = as_positive_int("n_boot", n_boot)
    _, codes = _as_codes("strata", strata)
    rng = np.random.default_rng(seed)
    parts = []
    for stratum in range(codes.max() + 1):
        members = np.flatnonzero(codes == stratum)
        parts.append(members[rng.integers(0, members.size, size=(n_boot, members.size))])
    return np.concatenate(parts, axis=1)


def cluster_bootstrap(clusters, n_boot, seed=0, *, strata=None):
    """``(n_boot, N)``: every row draws as many clusters as there are, with replacement, keeping all their members.

    All clusters must have the same size, so every resample has N samples. With ``strata`` (e.g. the subject
    labels) each row is laid out stratum by stratum (stable within a stratum), which keeps every stratum's
    size when each cluster holds the same number of each stratum (a crossed design) — checked.
    """
    n_boot = as_positive_int("n_boot", n_boot)
    _, codes = _as_codes("clusters", clusters)
    n_clusters = codes.max() + 1
    members = [np.flatnonzero(codes == c) for c in range(n_clusters)]
    sizes = {m.size for m in members}
    if len(sizes) != 1:
        raise ValueError(f"clusters: every cluster needs the same size for a fixed-N resample, got sizes {sorted(sizes)}")
    members = np.stack(members)  # (n_clusters, cluster_size)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    rows = members[drawn].reshape(n_boot, -1)
    if strata is None:
        return rows
    _, stratum_codes = _as_codes("strata", strata, codes.size)
    per_cluster = np.stack([np.bincount(stratum_codes[m], minlength=stratum_codes.max() + 1) for m in members])
    if not (per_cluster == per_cluster[0]).all():
        raise ValueError("strata: clusters hold different numbers of each stratum, so a cluster resample "
                         "would change the class sizes (the design is not crossed)")
    order = np.argsort(stratum_codes[rows], axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1)


def bootstrap_indices(n_boot, seed=0, *, strata=None, clusters=None):
    """The library's bootstrap: cluster resampling when ``clusters`` is given, else stratified by ``strata``."""
    if clusters is not None:
        return cluster_bootstrap(clusters, n_boot, seed, strata=strata)
    if strata is None:
        raise ValueError("strata: a bootstrap needs strata or clusters")
    return stratified_bootstrap(strata, n_boot, seed)
