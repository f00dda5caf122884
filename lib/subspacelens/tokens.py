r"""Per-token geometry from the token store, streamed: per-class moments as dask graphs over zarr chunks.

The cache's ``tokens`` variable (``sample, token_layer, token_step, branch, token, feature``; DESIGN.md)
holds full token grids. At PixArt-α's scale they do not fit in memory, but every statistic of
:mod:`subspacelens.metrics.moments` needs only per-class sums of :math:`[z;1][z;1]^\top`, so
:func:`token_moments` maps each run of chunks of samples to its partial sums (float64) and adds them to a
few running sums: memory is one task's tokens per worker plus the d×d accumulators, whatever the number
of tokens.
Run it inside :func:`subspacelens.cluster.dask_client` to spread the chunks over a cluster.

A *labelling* gives every token a class: by its image (``image_labelling``: subject or category), by its
grid position (``position_labelling``: rows, columns, quadrants) or by the object mask
(``foreground_labelling``, when the cache has ``token_foreground``). ``per_image=True`` keeps one set of
class moments per image, from which the image-level nulls of :mod:`~subspacelens.metrics.moments` are
computed without another pass over the tokens.

Results are ``xarray.DataArray`` s of augmented moments with dims ``(*batch, ["sample",] "class", "row",
"col")``; :func:`as_class_moments` turns one into :class:`~subspacelens.metrics.ClassMoments`.
"""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import xarray as xr

from subspacelens.cache import TOKEN_READ_BYTES
from subspacelens.metrics import (
    ClassMoments,
    class_swap_null,
    effective_rank_from_moments,
    image_permutation_null,
    rate_reduction_from_moments,
    subspace_overlap_from_moments,
)
from subspacelens.metrics.moments import augmented_moments

TOKEN_AXES = ("sample", "token", "feature")
MOMENT_AXES = ("class", "row", "col")
POSITION_SCHEMES = ("rows", "columns", "quadrants")


def token_grid(ds: xr.Dataset) -> xr.DataArray:
    """The cache's ``tokens`` variable; ``ValueError`` naming ``ds`` when the capture stored none."""
    if "tokens" not in ds.data_vars:
        raise ValueError(
            "ds: has no 'tokens' variable; capture token grids with token_layers and token_steps "
            "(CaptureConfig) to analyse tokens"
        )
    return ds["tokens"]


def grid_shape(n_tokens: int) -> tuple[int, int]:
    """(rows, columns) of a square raster-order token grid (``token = row * columns + column``)."""
    side = math.isqrt(n_tokens)
    if side * side != n_tokens:
        raise ValueError(f"n_tokens: {n_tokens} tokens do not form a square grid")
    return side, side


def image_labelling(ds: xr.Dataset, coord: str = "subject") -> xr.DataArray:
    """Every token labelled by its image's ``coord`` (``"subject"``, ``"category"``, ...): dims ``(sample,)``."""
    if coord not in ds.coords:
        raise ValueError(f"coord: {coord!r} is not a coordinate of the cache (choices: {sorted(ds.coords)})")
    return ds[coord].reset_coords(drop=True)


def position_labelling(ds: xr.Dataset, scheme: str = "quadrants") -> xr.DataArray:
    """Every token labelled by its grid position: its row, its column or its quadrant; dims ``(token,)``."""
    if scheme not in POSITION_SCHEMES:
        raise ValueError(f"scheme: expected one of {list(POSITION_SCHEMES)}, got {scheme!r}")
    rows, columns = grid_shape(ds.sizes["token"])
    row, column = np.divmod(np.arange(rows * columns), columns)
    names = {
        "rows": np.char.add("row ", row.astype(str)),
        "columns": np.char.add("column ", column.astype(str)),
        "quadrants": np.char.add(np.where(row < rows / 2, "top ", "bottom "), np.where(column < columns / 2, "left", "right")),
    }
    return xr.DataArray(names[scheme], dims=("token",), coords={"token": ds["token"].values})


def foreground_labelling(ds: xr.Dataset, threshold: float = 0.5) -> xr.DataArray:
    """Tokens whose ``token_foreground`` (mask fraction in [0, 1]) is ≥ ``threshold`` are ``"object"``, the
    rest ``"background"``: dims ``(sample, token)``. ``ValueError`` naming ``ds`` when there is no mask."""
    if "token_foreground" not in ds:
        raise ValueError("ds: has no 'token_foreground' (a capture with inputs 'procedural' and token layers records it)")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    foreground = ds["token_foreground"].transpose("sample", "token").reset_coords(drop=True)
    return xr.where(foreground >= threshold, "object", "background").compute()


def _label_codes(labels, sizes: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Integer class codes of shape (sample, token) and the sorted classes; lengths checked against ``sizes``."""
    if labels is None:
        return np.zeros((sizes["sample"], sizes["token"]), dtype=np.int8), np.asarray(["all"])
    if not isinstance(labels, xr.DataArray):
        values = np.asarray(labels)
        if values.ndim not in (1, 2):
            raise ValueError(f"labels: expected a (sample,) or (sample, token) array, got shape {values.shape}")
        labels = xr.DataArray(values, dims=("sample", "token")[: values.ndim])
    extra = set(labels.dims) - {"sample", "token"}
    if extra:
        raise ValueError(f"labels: dims {sorted(extra)} are not among ('sample', 'token')")
    for dim in labels.dims:
        if labels.sizes[dim] != sizes[dim]:
            raise ValueError(f"labels: has {labels.sizes[dim]} entries along {dim!r} but the tokens have {sizes[dim]}")
    # classes of the labels as given (a grid position labelling has one entry per token), then broadcast
    classes, codes = np.unique(np.asarray(labels.values), return_inverse=True)
    codes = labels.copy(data=codes.reshape(labels.shape)).variable
    grid = codes.set_dims({"sample": sizes["sample"], "token": sizes["token"]}).transpose("sample", "token")
    # the narrowest signed type: the codes travel inside the task graph, one per token
    return np.ascontiguousarray(grid.values, dtype=np.min_scalar_type(-classes.size)), classes


TASK_BYTES = TOKEN_READ_BYTES
"""Stored token bytes one task reads: enough storage chunks that a task's work dwarfs its scheduling (the
size a cache's ``tokens`` open in, :func:`subspacelens.cache.open_tokens`, so there one dask chunk is one
task). A task holds its tokens as stored, and converts them to float64 a block of rows at a time."""


def _block_moments(block, codes, n_classes, per_image, normalize):
    """Augmented class moments of one chunk ``(*batch, c, T, d)``: ``(*batch, c or 1, K, d+1, d+1)``."""
    batch_shape, (n_images, _, d) = block.shape[:-3], block.shape[-3:]
    out = np.empty(batch_shape + (n_images if per_image else 1, n_classes, d + 1, d + 1))
    for index in np.ndindex(batch_shape):
        X = np.asarray(block[index])  # stored dtype: augmented_moments converts it block by block
        if normalize:
            X = X.astype(np.float64)
            norms = np.linalg.norm(X, axis=-1, keepdims=True)
            if not (norms > 0).all():
                raise ValueError("tokens: a token has zero norm, so it cannot be normalised")
            X = X / norms
        if per_image:
            for i in range(n_images):
                out[index + (i,)] = augmented_moments(X[i], codes[i], n_classes)
        else:
            out[index + (0,)] = augmented_moments(X.reshape(-1, d), codes.ravel(), n_classes)
    return out


def _group_moments(blocks, codes, n_classes, per_image, normalize):
    """:func:`_block_moments` of consecutive chunks of samples, as one block: per-class products over the
    whole run of chunks are large enough for BLAS to run near its peak."""
    block = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=-3)
    return _block_moments(block, codes, n_classes, per_image, normalize)


CHAINS = 2
"""Running sums the tasks of one slice feed in turn when no dask cluster is active (on a cluster: one per
worker thread). Each task adds its tokens to the sum of the task before it in its chain, so at most this
many partial sums (each K·(d+1)² float64, as large as a task's tokens at PixArt-α's width) are alive,
however many tokens there are, and as many tasks run at once."""


def _chain_count():
    """One running sum per thread of the active dask cluster, :data:`CHAINS` without one."""
    try:
        from distributed import get_client

        workers = get_client().scheduler_info()["workers"].values()
        return max(1, sum(worker.get("nthreads", 1) for worker in workers))
    except (ImportError, ValueError):  # no distributed, or no client: the local scheduler
        return CHAINS


def _add(*arrays):
    total = arrays[0].copy()
    for array in arrays[1:]:
        total += array
    return total


def _accumulate(total, blocks, codes, n_classes, normalize):
    """``total`` (or nothing) plus the class moments of a run of chunks: one link of a running sum.

    ``total`` is added to in place: the link before is its only producer and this link its only reader,
    so no third partial sum is ever allocated."""
    part = _group_moments(blocks, codes, n_classes, False, normalize)
    if total is None:
        return part
    total += part
    return total


def token_moments(tokens: xr.DataArray, labels=None, *, per_image: bool = False, normalize: bool = False) -> xr.DataArray:
    r"""Streamed per-class augmented moments :math:`\sum [z;1][z;1]^\top` of the tokens of every class.

    ``tokens``: a DataArray with dims ``sample``, ``token``, ``feature`` and any batch dims
    (``token_layer``, ``token_step``, ``branch``), dask-backed (lazy) or in memory. ``labels``: None (one
    class ``"all"``), or a DataArray with dims among ``(sample, token)``, or an array of shape
    ``(sample,)`` / ``(sample, token)``. ``per_image``: keep one set per image (dim ``sample``).
    ``normalize``: scale each token to unit norm before it is added (``scale="unit"``).

    One dask task per run of consecutive storage chunks of samples (about :data:`TASK_BYTES` of stored
    tokens, whole token grids, every feature); the tasks of a slice feed a few running sums (one per worker
    thread, :data:`CHAINS` on the local scheduler), which are added at the end, so memory stays flat in the
    number of tokens. The graph runs on the active dask client, if any. Returns dims ``(*batch, ["sample",] "class", "row", "col")`` with coords.
    """
    missing = [dim for dim in TOKEN_AXES if dim not in tokens.dims]
    if missing:
        raise ValueError(f"tokens: missing dims {missing}; expected dims including {list(TOKEN_AXES)}")
    batch = [dim for dim in tokens.dims if dim not in TOKEN_AXES]
    tokens = tokens.transpose(*batch, *TOKEN_AXES)
    codes, classes = _label_codes(labels, dict(tokens.sizes))
    data = tokens.data if isinstance(tokens.data, da.Array) else da.from_array(tokens.values, chunks=(1,) * len(batch) + (-1, -1, -1))
    data = data.rechunk({len(batch) + 1: -1, len(batch) + 2: -1})
    sample_bounds = np.cumsum((0,) + data.chunks[len(batch)])
    d = tokens.sizes["feature"]
    blocks = data.to_delayed()[..., 0, 0]
    chunk_bytes = max(data.chunks[len(batch)]) * tokens.sizes["token"] * d * data.dtype.itemsize
    for axis in range(len(batch)):
        chunk_bytes *= max(data.chunks[axis])
    per_task = max(1, TASK_BYTES // max(1, chunk_bytes))
    groups = [range(g, min(g + per_task, blocks.shape[-1])) for g in range(0, blocks.shape[-1], per_task)]
    per_image_part, link = dask.delayed(_group_moments, pure=True), dask.delayed(_accumulate, pure=True)
    chain_count = _chain_count()

    def leaf(batch_index):
        shape = tuple(data.chunks[axis][i] for axis, i in enumerate(batch_index))
        runs = [([blocks[batch_index + (c,)] for c in group],
                 codes[sample_bounds[group[0]]:sample_bounds[group[-1] + 1]]) for group in groups]
        if per_image:
            return [da.from_delayed(per_image_part(run, run_codes, classes.size, True, normalize),
                                    shape=shape + (len(run_codes), classes.size, d + 1, d + 1), dtype=np.float64)
                    for run, run_codes in runs]
        chains = [None] * min(chain_count, len(runs))
        for k, (run, run_codes) in enumerate(runs):
            chains[k % len(chains)] = link(chains[k % len(chains)], run, run_codes, classes.size, normalize)
        total = dask.delayed(_add)(*chains) if len(chains) > 1 else chains[0]
        return [da.from_delayed(total, shape=shape + (1, classes.size, d + 1, d + 1), dtype=np.float64)]

    def nested(batch_index=()):
        if len(batch_index) == len(batch):  # the sample axis, then single blocks along class, row, col
            return [[[[part]]] for part in leaf(batch_index)]
        return [nested(batch_index + (i,)) for i in range(blocks.shape[len(batch_index)])]

    stacked = da.block(nested())
    if not per_image:
        stacked = stacked.sum(axis=len(batch))
    dims = (*batch, *(["sample"] if per_image else []), *MOMENT_AXES)
    coords = {name: coord for name, coord in tokens.coords.items() if set(coord.dims) <= set(dims)}
    return xr.DataArray(stacked, dims=dims, coords=coords).assign_coords({"class": classes}).compute()


def as_class_moments(moments: xr.DataArray) -> ClassMoments:
    """The :class:`ClassMoments` of a :func:`token_moments` result (classes from its ``class`` coord)."""
    return ClassMoments(np.asarray(moments.transpose(..., *MOMENT_AXES).values), np.asarray(moments["class"].values))


def _batch_coords(moments: xr.DataArray, keep=()) -> tuple[list[str], dict]:
    dims = [dim for dim in moments.dims if dim not in (*MOMENT_AXES, "sample") or dim in keep]
    coords = {name: c for name, c in moments.coords.items() if set(c.dims) <= set(dims) and name != "class"}
    return dims, coords


def rate_reduction_profile(moments: xr.DataArray, eps: float = 0.5, *, center=False, scale=None) -> xr.Dataset:
    """``R``, ``Rc``, ``delta_R`` over the batch dims of class moments (a ``sample`` dim is summed first)."""
    if "sample" in moments.dims:
        moments = moments.sum("sample")
    rates = rate_reduction_from_moments(as_class_moments(moments), eps, center=center, scale=scale)
    dims, coords = _batch_coords(moments)
    return xr.Dataset({name: (dims, getattr(rates, name)) for name in ("R", "Rc", "delta_R")}, coords=coords)


def _null_dataset(null, dims, coords, level):
    tail = (1.0 - level) / 2
    fields = {
        "observed": null.observed,
        "null_mean": null.null.mean(axis=-1),
        "null_low": np.quantile(null.null, tail, axis=-1),
        "null_high": np.quantile(null.null, 1.0 - tail, axis=-1),
        "p_value": null.p_value,
        "z_score": null.z_score,
    }
    return xr.Dataset({name: (dims, value) for name, value in fields.items()}, coords=coords)


def _one_class(per_image: xr.DataArray) -> xr.DataArray:
    """Per-image moments of the one-class labelling (``labels=None``) with the images on the class axis."""
    if "sample" not in per_image.dims or per_image.sizes["class"] != 1:
        raise ValueError("per_image: expected token_moments(..., labels=None, per_image=True)")
    return per_image.squeeze("class", drop=True).transpose(..., "sample", "row", "col")


def image_null_profile(per_image: xr.DataArray, image_labels, *, eps=0.5, n_permutations=1000, seed=0,
                       center=False, scale=None, level=0.95) -> xr.Dataset:
    """ΔR of an image-level labelling against shuffles of whole images, over the batch dims.

    ``per_image``: :func:`token_moments` with ``labels=None, per_image=True``. Fields ``observed``,
    ``null_mean``, ``null_low``/``null_high`` (the central ``level`` interval), ``p_value``, ``z_score``.
    """
    moments = ClassMoments(_one_class(per_image).values)
    null = image_permutation_null(moments, np.asarray(image_labels), eps, n_permutations, seed, center=center, scale=scale)
    return _null_dataset(null, *_batch_coords(per_image), level)


def class_swap_profile(per_image_class: xr.DataArray, *, eps=0.5, n_permutations=1000, seed=0,
                       center=False, scale=None, level=0.95) -> xr.Dataset:
    """ΔR of a token-level labelling against per-image permutations of its class names, over the batch dims.

    ``per_image_class``: :func:`token_moments` with ``per_image=True`` and a token-level labelling.
    """
    moments = as_class_moments(per_image_class.transpose(..., "sample", *MOMENT_AXES))
    null = class_swap_null(moments, eps, n_permutations, seed, center=center, scale=scale)
    return _null_dataset(null, *_batch_coords(per_image_class), level)


def within_image_effective_rank(per_image: xr.DataArray) -> xr.DataArray:
    """Effective rank of each image's own token cloud (centred on its mean), dims ``(*batch, sample)``."""
    moments = _one_class(per_image)
    ranks = effective_rank_from_moments(ClassMoments(moments.values), center=True, per_class=True)
    dims, coords = _batch_coords(moments, keep=("sample",))
    return xr.DataArray(ranks, dims=dims, coords=coords, name="effective_rank")


def all_tokens_effective_rank(per_image: xr.DataArray) -> xr.DataArray:
    """Effective rank of every token of every image together (centred on their mean), dims ``(*batch,)``."""
    total = _one_class(per_image).sum("sample")
    ranks = effective_rank_from_moments(ClassMoments(total.values[..., None, :, :]), center=True)
    dims, coords = _batch_coords(total)
    return xr.DataArray(ranks, dims=dims, coords=coords, name="effective_rank")


def overlap_profile(moments: xr.DataArray, *, energy=0.9, center=False) -> xr.Dataset:
    """Mean off-diagonal class-subspace overlap and its chance level over the batch dims."""
    if "sample" in moments.dims:
        moments = moments.sum("sample")
    overlap = subspace_overlap_from_moments(as_class_moments(moments), energy=energy, center=center)
    dims, coords = _batch_coords(moments)
    return xr.Dataset(
        {"overlap": (dims, overlap.mean_offdiagonal), "chance": (dims, overlap.chance_mean_offdiagonal)}, coords=coords
    )
