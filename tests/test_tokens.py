"""Per-token geometry: moment-based metrics vs the in-memory Gram path, streamed moments over a token store,
image-level nulls, the dask engine, capture shards on a cluster, and bad input."""

from __future__ import annotations

from functools import partial

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

from subspacelens import metrics as m
from subspacelens import cache as cache_module
from subspacelens import tokens as tokens_module
from subspacelens.metrics import moments as moments_module
from subspacelens.cluster import dask_client
from subspacelens.metrics.moments import ClassMoments, augmented_moments
from subspacelens.tokens import (
    all_tokens_effective_rank,
    class_swap_profile,
    foreground_labelling,
    image_labelling,
    image_null_profile,
    position_labelling,
    rate_reduction_profile,
    token_grid,
    token_moments,
    within_image_effective_rank,
)

RTOL = 1e-10


@pytest.fixture
def labelled():
    """d = 8, N = 400 columns in 4 classes with distinct means and spreads (N_j > d, as for tokens)."""
    rng = np.random.default_rng(1)
    sizes = [70, 90, 110, 130]
    labels = np.repeat(np.array(["a", "b", "c", "d"]), sizes)
    parts = [rng.normal(size=(8, 8)) * scale @ rng.normal(size=(8, n)) + rng.normal(size=(8, 1)) + 0.5
             for scale, n in zip([1.0, 0.5, 0.2, 2.0], sizes)]
    Z = np.concatenate(parts, axis=1)
    return Z, labels


@pytest.mark.parametrize("center", [False, True])
def test_moment_metrics_agree_with_the_gram_path(labelled, center):
    Z, labels = labelled
    moments = m.class_moments(Z, labels)
    ref, got = m.rate_reduction(Z, labels, center=center), m.rate_reduction_from_moments(moments, center=center)
    for field in ("R", "Rc", "delta_R"):
        np.testing.assert_allclose(getattr(got, field), getattr(ref, field), rtol=RTOL)
    np.testing.assert_allclose(m.coding_rate_from_moments(moments, center=center), m.coding_rate(Z, center=center), rtol=RTOL)
    np.testing.assert_allclose(m.effective_rank_from_moments(moments, center=center), m.effective_rank(Z, center=center), rtol=RTOL)
    np.testing.assert_allclose(
        m.participation_ratio_from_moments(moments, center=center), m.participation_ratio(Z, center=center), rtol=RTOL
    )
    ref_overlap = m.subspace_overlap(Z, labels, center=center)
    got_overlap = m.subspace_overlap_from_moments(moments, center=center)
    np.testing.assert_array_equal(got_overlap.ranks, ref_overlap.ranks)
    np.testing.assert_allclose(got_overlap.matrix, ref_overlap.matrix, rtol=RTOL, atol=1e-12)
    assert 0.05 < ref_overlap.mean_offdiagonal < 0.95  # a non-trivial case


def test_scale_and_class_centring_match_the_preprocessed_samples(labelled):
    Z, labels = labelled
    moments = m.class_moments(Z, labels)
    centred = Z - Z.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.square(centred).sum() / Z.shape[1])
    got = m.rate_reduction_from_moments(moments, center=True, scale="rms")
    np.testing.assert_allclose(got.delta_R, m.rate_reduction(centred / rms, labels).delta_R, rtol=RTOL)
    scaled = m.rate_reduction_from_moments(m.class_moments(7.0 * Z, labels), center=True, scale="rms")
    np.testing.assert_allclose(scaled.delta_R, got.delta_R, rtol=RTOL)
    class_centred = Z.copy()
    for label in np.unique(labels):
        class_centred[:, labels == label] -= Z[:, labels == label].mean(axis=1, keepdims=True)
    got = m.rate_reduction_from_moments(moments, center="class")
    np.testing.assert_allclose(got.R, m.coding_rate(class_centred), rtol=RTOL)
    np.testing.assert_allclose(got.delta_R, m.rate_reduction(class_centred, labels).delta_R, rtol=RTOL)


def _token_dataset(n_samples=12, n_tokens=16, d=6, seed=0, foreground=False):
    """A synthetic cache with a ``tokens`` variable: per-subject offsets plus a per-position offset."""
    rng = np.random.default_rng(seed)
    subjects = np.array(["cat", "dog", "owl"])[np.arange(n_samples) % 3]
    position = rng.normal(size=(n_tokens, d))
    values = rng.normal(size=(n_samples, 2, 1, n_tokens, d)) + position + 2.0 * (np.arange(n_samples) % 3)[:, None, None, None, None]
    coords = {"sample": np.arange(n_samples), "subject": ("sample", subjects), "token_layer": [0, 3],
              "token_step": [5], "token": np.arange(n_tokens), "feature": np.arange(d)}
    ds = xr.Dataset({"tokens": (("sample", "token_layer", "token_step", "token", "feature"), values.astype(np.float32))}, coords)
    if foreground:
        ds["token_foreground"] = (("sample", "token"), rng.uniform(size=(n_samples, n_tokens)))
    return ds


@pytest.fixture
def token_store(tmp_path):
    ds = _token_dataset(foreground=True)
    path = tmp_path / "tokens.zarr"
    ds.chunk({"sample": 5, "token_layer": 1}).to_zarr(path, zarr_format=2, consolidated=False)
    return xr.open_zarr(path, consolidated=False, zarr_format=2, chunks={}), ds


def _flat(ds, layer, labels2d):
    """The in-memory reference: all tokens of one layer as columns (d, sample*token), labels alike."""
    Z = ds.tokens.sel(token_layer=layer, token_step=5).values.astype(np.float64)
    return Z.reshape(-1, Z.shape[-1]).T, np.asarray(labels2d).ravel()


def test_streamed_moments_equal_the_in_memory_moments_for_every_labelling(token_store):
    lazy, ds = token_store
    n_samples, n_tokens = ds.sizes["sample"], ds.sizes["token"]
    labellings = {
        "image": (image_labelling(lazy, "subject"), np.repeat(ds.subject.values[:, None], n_tokens, 1)),
        "position": (position_labelling(lazy, "quadrants"), np.tile(position_labelling(ds, "quadrants").values, (n_samples, 1))),
        "foreground": (foreground_labelling(lazy, 0.5), np.where(ds.token_foreground.values >= 0.5, "object", "background")),
    }
    for name, (labels, labels2d) in labellings.items():
        streamed = token_moments(token_grid(lazy), labels)
        per_image = token_moments(token_grid(lazy), labels, per_image=True)
        assert streamed.dims == ("token_layer", "token_step", "class", "row", "col"), name
        for layer in (0, 3):
            Z, flat_labels = _flat(ds, layer, labels2d)
            reference = m.class_moments(Z, flat_labels)
            got = streamed.sel(token_layer=layer, token_step=5)
            np.testing.assert_allclose(got.values, reference.augmented, rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(per_image.sel(token_layer=layer, token_step=5).sum("sample").values,
                                       reference.augmented, rtol=1e-12, err_msg=name)
            profile = rate_reduction_profile(streamed).sel(token_layer=layer, token_step=5)
            np.testing.assert_allclose(profile.delta_R, m.rate_reduction(Z, flat_labels).delta_R, rtol=RTOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_augmented_moments_over_several_blocks_are_the_sums_over_each_class(monkeypatch, dtype):
    """Rows in blocks of 7 with unsorted codes and a class that has no rows: A_j sums [x;1][x;1]ᵀ over j's rows."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 5)).astype(dtype)
    codes = rng.choice([0, 1, 3], size=60).astype(np.int8)  # class 2 is empty
    monkeypatch.setattr(moments_module, "BLOCK_ROWS", 7)
    got = augmented_moments(X, codes, 4)
    for j in range(4):
        rows = np.c_[X[codes == j].astype(np.float64), np.ones((codes == j).sum())]
        np.testing.assert_allclose(got[j], rows.T @ rows, rtol=1e-13, atol=0, err_msg=f"class {j}")
    assert got[2].max() == 0.0


def test_open_tokens_reads_whole_runs_of_storage_chunks(token_store, tmp_path, monkeypatch):
    _, ds = token_store  # 12 samples in storage chunks of 5, at tmp_path / "tokens.zarr"
    chunk_bytes = 5 * ds.sizes["token"] * ds.sizes["feature"] * 4
    monkeypatch.setattr(cache_module, "TOKEN_READ_BYTES", 2 * chunk_bytes)
    tokens = cache_module.open_tokens(tmp_path / "tokens.zarr")
    assert tokens.chunks[tokens.get_axis_num("sample")] == (10, 2)
    assert tokens.chunks[tokens.get_axis_num("token_layer")] == (1, 1)
    np.testing.assert_array_equal(tokens.values, ds.tokens.values)
    ds.drop_vars("tokens").to_zarr(tmp_path / "plain.zarr", zarr_format=2, consolidated=False)
    with pytest.raises(ValueError, match="path: .*has no 'tokens' variable"):
        cache_module.open_tokens(tmp_path / "plain.zarr")


def test_whole_chunk_reader_decodes_every_dask_chunk_itself_and_leaves_other_selections_to_zarr(token_store, tmp_path, monkeypatch):
    _, ds = token_store  # 12 samples in storage chunks of 5 (the last one partial), one token layer a chunk
    path = tmp_path / "tokens.zarr"
    monkeypatch.setattr(cache_module, "TOKEN_READ_BYTES", 2 * 5 * ds.sizes["token"] * ds.sizes["feature"] * 4)
    tokens = cache_module.open_tokens(path)
    array = zarr.open_group(str(path), mode="r", zarr_format=2)["tokens"]
    reader = cache_module.WholeChunkReader(array)
    slices = da.core.slices_from_chunks(tokens.data.chunks)
    assert len(slices) == 2 * 2 and all(reader._chunks(key) is not None for key in slices)
    np.testing.assert_array_equal(tokens.values, ds.tokens.values)
    assert reader._chunks((slice(3, 10),) + (slice(None),) * 4) is None  # not whole chunks: zarr's read
    np.testing.assert_array_equal(reader[3:10], ds.tokens.values[3:10])
    (path / "tokens" / array.metadata.encode_chunk_key((1, 1, 0, 0, 0))).unlink()  # a chunk never written
    gap = cache_module.open_tokens(path).values
    assert np.isnan(gap[5:10, 1]).all() and np.array_equal(gap[5:10, 0], ds.tokens.values[5:10, 0])


@pytest.mark.parametrize("per_image", [False, True])
def test_tasks_of_several_chunks_add_up_to_the_one_task_result(token_store, monkeypatch, per_image):
    """Chunks grouped into tasks, and tasks summed in a tree, give the moments of one pass over everything."""
    lazy, ds = token_store  # 12 samples in chunks of 5, 5, 2
    labels = position_labelling(lazy, "quadrants")
    whole = token_moments(token_grid(lazy), labels, per_image=per_image)  # every chunk in one task
    chunk_bytes = 5 * ds.sizes["token"] * ds.sizes["feature"] * 4
    for chunks_per_task in (1, 2):  # three tasks on two running sums; two tasks, one of them two chunks
        monkeypatch.setattr(tokens_module, "TASK_BYTES", chunks_per_task * chunk_bytes)
        grouped = token_moments(token_grid(lazy), labels, per_image=per_image)
        assert grouped.dims == whole.dims
        np.testing.assert_allclose(grouped.values, whole.values, rtol=1e-13, atol=1e-12)


def test_quadrants_of_a_four_by_four_grid():
    labels = position_labelling(_token_dataset(), "quadrants").values.reshape(4, 4)
    assert labels[0, 0] == labels[1, 1] == "top left" and labels[0, 3] == "top right" and labels[3, 0] == "bottom left"
    assert list(position_labelling(_token_dataset(), "rows").values[:5]) == ["row 0"] * 4 + ["row 1"]


def test_image_null_is_the_in_memory_delta_r_of_shuffled_whole_images():
    ds = _token_dataset()
    per_image = token_moments(token_grid(ds), None, per_image=True)
    null = image_null_profile(per_image, ds.subject.values, n_permutations=5, seed=3).sel(token_layer=3, token_step=5)
    shuffles = np.random.default_rng(3).permuted(np.tile(np.arange(12), (5, 1)), axis=1)
    Z, _ = _flat(ds, 3, np.zeros((12, 16)))
    brute = [m.rate_reduction(Z, np.repeat(ds.subject.values[order], 16)).delta_R for order in shuffles]
    np.testing.assert_allclose(null.observed, m.rate_reduction(Z, np.repeat(ds.subject.values, 16)).delta_R, rtol=RTOL)
    full = m.image_permutation_null(m.ClassMoments(per_image.sel(token_layer=3, token_step=5).squeeze("class").values),
                                    ds.subject.values, n_permutations=5, seed=3)
    np.testing.assert_allclose(full.null, brute, rtol=RTOL)


def test_image_null_is_not_fooled_by_correlated_tokens():
    """Each image its own random offset, labels unrelated to them: shuffling tokens calls the labels
    significant (tokens of one image share the offset), shuffling images does not."""
    rng = np.random.default_rng(0)
    n_images, n_tokens, d = 24, 20, 5
    values = rng.normal(size=(n_images, n_tokens, d)) * 0.3 + 3.0 * rng.normal(size=(n_images, 1, d))
    labels = np.array(["x", "y", "z"])[np.arange(n_images) % 3]
    tokens = xr.DataArray(values, dims=("sample", "token", "feature"))
    image_null = m.image_permutation_null(
        m.ClassMoments(token_moments(tokens, None, per_image=True).squeeze("class").values), labels, n_permutations=200
    )
    token_null = m.permutation_null(values.reshape(-1, d).T, np.repeat(labels, n_tokens), n_permutations=200)
    assert token_null.p_value < 0.01
    assert image_null.p_value > 0.05


def test_class_swap_null_is_the_delta_r_of_per_image_relabelled_tokens():
    ds = _token_dataset()
    labels = position_labelling(ds, "quadrants")
    per_image = token_moments(token_grid(ds), labels, per_image=True).sel(token_layer=0, token_step=5)
    null = m.class_swap_null(m.ClassMoments(per_image.values), n_permutations=4, seed=2)
    swaps = np.random.default_rng(2).permuted(np.tile(np.arange(4), (4, 12, 1)), axis=2)
    classes, codes = np.unique(labels.values, return_inverse=True)
    Z, _ = _flat(ds, 0, np.zeros((12, 16)))
    brute = [m.rate_reduction(Z, np.concatenate([swap[image][codes] for image in range(12)])).delta_R for swap in swaps]
    np.testing.assert_allclose(null.null, brute, rtol=RTOL)
    profile = class_swap_profile(token_moments(token_grid(ds), labels, per_image=True), n_permutations=50)
    assert (profile.p_value < 0.05).all()  # the planted per-position offset


def test_within_image_effective_rank_is_the_rank_of_each_image():
    ds = _token_dataset()
    per_image = token_moments(token_grid(ds), None, per_image=True)
    ranks = within_image_effective_rank(per_image)
    Z, _ = _flat(ds, 3, np.zeros((12, 16)))
    np.testing.assert_allclose(all_tokens_effective_rank(per_image).sel(token_layer=3, token_step=5),
                               m.effective_rank(Z, center=True), rtol=RTOL)
    assert ranks.dims == ("token_layer", "token_step", "sample")
    image = ds.tokens.sel(token_layer=3, token_step=5, sample=4).values.T
    np.testing.assert_allclose(ranks.sel(token_layer=3, token_step=5, sample=4), m.effective_rank(image, center=True), rtol=RTOL)


@pytest.fixture(scope="module")
def local_cluster():
    """One 2-worker LocalCluster for the tests that need one (starting it is the slow part)."""
    with dask_client(n_workers=2) as client:
        yield client


def test_the_local_cluster_computes_the_same_moments(token_store, local_cluster):
    lazy, _ = token_store
    with dask.config.set(scheduler="synchronous"):
        local = token_moments(token_grid(lazy), image_labelling(lazy))
    assert len(local_cluster.scheduler_info()["workers"]) == 2
    on_cluster = token_moments(token_grid(lazy), image_labelling(lazy))
    np.testing.assert_array_equal(on_cluster.values, local.values)


def test_bad_input_names_the_argument(token_store):
    lazy, ds = token_store
    with pytest.raises(ValueError, match="labels: has 11 entries along 'sample'"):
        token_moments(token_grid(lazy), ds.subject.values[:-1])
    with pytest.raises(ValueError, match="labels: has 15 entries along 'token'"):
        token_moments(token_grid(lazy), xr.DataArray(np.arange(15), dims="token"))
    with pytest.raises(ValueError, match="ds: has no 'tokens' variable"):
        token_grid(ds.drop_vars("tokens"))
    with pytest.raises(ValueError, match="ds: has no 'token_foreground'"):
        foreground_labelling(ds.drop_vars("token_foreground"))
    with pytest.raises(ValueError, match="scheme: expected one of"):
        position_labelling(ds, "diagonals")
    with pytest.raises(ValueError, match=r"scale: expected one of .*\(normalize=True\)"):
        m.rate_reduction_from_moments(ClassMoments(np.eye(7)[None]), scale="unit")
    with pytest.raises(ValueError, match="center: expected one of"):
        m.rate_reduction_from_moments(ClassMoments(np.eye(7)[None]), center="image")
    with pytest.raises(ValueError, match="image_labels: has shape"):
        m.image_permutation_null(ClassMoments(np.ones((12, 7, 7))), np.arange(11))


def test_an_unreachable_scheduler_is_a_clear_error_and_nothing_is_written(tmp_path, tiny_config):
    from subspacelens.capture import capture_on_cluster

    out = tmp_path / "never.zarr"
    with pytest.raises(ValueError, match="scheduler: cannot reach a dask scheduler at 'tcp://127.0.0.1:9'"):
        with dask_client("tcp://127.0.0.1:9") as client:
            capture_on_cluster(tiny_config, out, client, num_shards=2)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_two_shards_on_a_two_worker_cluster_merge_to_the_single_run_store(tiny_pipe, tiny_config, tmp_path, local_cluster):
    from test_cache import assert_same_store

    from subspacelens.capture import capture_on_cluster, run_capture
    from subspacelens.organism import OrganismConfig, build_pipeline

    config = tiny_config.with_(token_layers=[1], token_steps=[2], token_dtype="float16")
    single = run_capture(config, tmp_path / "single.zarr", pipeline=tiny_pipe, progress=False)
    merged = capture_on_cluster(config, tmp_path / "merged.zarr", local_cluster, num_shards=2,
                                load=partial(build_pipeline, OrganismConfig.tiny()))
    assert_same_store(single, merged)
    tokens = xr.open_zarr(merged, consolidated=False, zarr_format=2).tokens
    assert tokens.dtype == np.float16 and tokens.encoding["chunks"][0] == 4  # one chunk per batch of 4
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["merged.zarr", "single.zarr"]
