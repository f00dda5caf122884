"""The analysis layer on a synthetic activation cache that follows the DESIGN.md schema exactly.

``synthetic_cache`` is also imported by ``test_scorecard.py``: 25 subjects in 5 categories × ``n_seeds``
seeds; every category spans a random 3-dim subspace and every subject adds 2 more dims of its own, on top
of isotropic noise whose weight falls with depth, so class separation (ΔR) grows with the layer.
"""

import numpy as np
import pytest
import xarray as xr

from subspacelens import analysis, metrics

CATEGORIES = ("animals", "buildings", "food", "landscapes", "vehicles")


def synthetic_cache(n_layers=6, steps=(0, 13), d=24, n_seeds=8, seed=0, guidance_scale=4.5,
                    branches=("uncond", "cond"), signal_gain=6.0):
    """An activation cache as an in-memory ``xarray.Dataset`` (schema of DESIGN.md)."""
    rng = np.random.default_rng(seed)
    subjects = [(f"{category}-{i}", category) for category in CATEGORIES for i in range(5)]
    cat_basis = {c: np.linalg.qr(rng.standard_normal((d, 3)))[0] for c in CATEGORIES}
    sub_basis = {s: np.linalg.qr(rng.standard_normal((d, 2)))[0] for s, _ in subjects}
    n = len(subjects) * n_seeds
    signal = np.empty((n, d))
    meta = {"subject": [], "category": [], "seed": [], "prompt": []}
    for k, (subject, category) in enumerate(subjects):
        for s in range(n_seeds):
            i = k * n_seeds + s
            signal[i] = cat_basis[category] @ rng.standard_normal(3) + sub_basis[subject] @ rng.standard_normal(2)
            meta["subject"].append(subject)
            meta["category"].append(category)
            meta["seed"].append(s)
            meta["prompt"].append(f"a {subject}")
    seed_noise = rng.standard_normal((n_seeds, d))  # the shared initial latent of each seed
    depth = np.linspace(0.0, 1.0, n_layers)
    gain = 0.1 + signal_gain * depth
    acts = np.empty((n, n_layers, len(steps), len(branches), d), dtype=np.float32)
    for j, _ in enumerate(steps):
        for b, branch in enumerate(branches):
            noise = rng.standard_normal((n, n_layers, d)) + 0.5 * seed_noise[np.asarray(meta["seed"])][:, None]
            branch_gain = 1.0 if branch == "cond" else 0.9
            acts[:, :, j, b] = (branch_gain * gain[None, :, None] * signal[:, None, :]
                                + (1.0 + 0.3 * j) * noise + 0.2)
    return xr.Dataset(
        {"activations": (("sample", "layer", "step", "branch", "feature"), acts)},
        coords={
            "sample": np.arange(n),
            "subject": ("sample", np.array(meta["subject"])),
            "category": ("sample", np.array(meta["category"])),
            "seed": ("sample", np.array(meta["seed"])),
            "prompt": ("sample", np.array(meta["prompt"])),
            "layer": np.arange(n_layers),
            "step": np.asarray(steps),
            "timestep": ("step", np.linspace(999, 50, len(steps)).astype(int)),
            "branch": list(branches),
            "feature": np.arange(d),
        },
        attrs={
            "model": "synthetic", "guidance_scale": float(guidance_scale), "num_inference_steps": 20,
            "scheduler": "none", "dtype": "float32", "prompt_set": "v2", "reduction": "mean",
            "package_versions": "{}", "config_hash": "synthetic", "num_layers_total": n_layers,
            "complete": True, "num_shards": 1, "shard_index": 0,
        },
    )


def write_synthetic_cache(path, **kwargs):
    """``synthetic_cache(**kwargs)`` written as a zarr store that ``subspacelens.cache.open_cache`` reads."""
    synthetic_cache(**kwargs).to_zarr(path, mode="w", zarr_format=2, consolidated=False)
    return path


@pytest.fixture(scope="module")
def ds():
    return synthetic_cache()


def test_slice_matrix_is_the_blogs_z(ds):
    Z = analysis.slice_matrix(ds, 13, "cond")
    assert Z.dtype == np.float64
    assert Z.shape == (ds.sizes["layer"], ds.sizes["feature"], ds.sizes["sample"])
    np.testing.assert_array_equal(Z[2, :, 7], ds.activations.sel(step=13, branch="cond", layer=2, sample=7))


def test_labels_and_depth(ds):
    assert len(np.unique(analysis.labels_of(ds, "coarse"))) == 5
    assert len(np.unique(analysis.labels_of(ds, "fine"))) == 25
    with pytest.raises(ValueError, match="scheme"):
        analysis.labels_of(ds, "medium")
    depth = analysis.relative_depth(ds)
    assert depth.values[0] == 0 and depth.values[-1] == 1


@pytest.mark.parametrize("metric,scheme", [("delta_R", "coarse"), ("Rc_over_R", "fine"), ("R", None),
                                           ("effective_rank", None), ("hoyer", None)])
def test_profile_shape_coords(ds, metric, scheme):
    prof = analysis.profile(ds, metric, scheme)
    assert prof["value"].dims == ("layer", "step", "branch")
    assert prof["value"].shape == (6, 2, 2)
    assert "timestep" in prof.coords and "relative_depth" in prof.coords
    assert np.isfinite(prof["value"]).all()
    assert prof.attrs["metric"] == metric


def test_profile_equals_direct_metric_calls(ds):
    Z = analysis.slice_matrix(ds, 0, "uncond")
    labels = analysis.labels_of(ds, "fine")
    rr = metrics.rate_reduction(Z, labels, eps=0.7)
    prof = analysis.profile(ds, "delta_R", "fine", eps=0.7)
    np.testing.assert_allclose(prof["value"].sel(step=0, branch="uncond"), rr.delta_R, rtol=1e-12)
    ov = metrics.subspace_overlap(Z, analysis.labels_of(ds, "coarse"), energy=0.8)
    prof = analysis.profile(ds, "mean_overlap", "coarse", energy=0.8)
    np.testing.assert_allclose(prof["value"].sel(step=0, branch="uncond"), ov.mean_offdiagonal, rtol=1e-12)
    np.testing.assert_allclose(prof["chance"].sel(step=0, branch="uncond"), ov.chance_mean_offdiagonal)
    er = analysis.profile(ds, "effective_rank", branches="uncond", steps=0)
    np.testing.assert_allclose(er["value"].squeeze(), metrics.effective_rank(Z), rtol=1e-12)


def test_delta_r_grows_with_depth_on_the_synthetic_cache(ds):
    curve = analysis.profile(ds, "delta_R", "coarse")["value"].sel(branch="cond", step=0)
    assert curve[-1] > 3 * curve[0]


@pytest.mark.parametrize("metric,scheme", [("delta_R", "coarse"), ("effective_rank", None)])
def test_bootstrap_ci_brackets_the_estimate(ds, metric, scheme):
    prof = analysis.profile(ds, metric, scheme, n_boot=30, steps=[0], branches=["cond"], keep_samples=True)
    assert {"low", "high", "samples"} <= set(prof.data_vars)
    assert (prof["low"] < prof["high"]).all()
    assert (prof["low"] <= prof["value"] * 1.0001).all() and (prof["value"] <= prof["high"] * 1.0001).all()
    assert prof["samples"].sizes["boot"] == 30


@pytest.mark.parametrize("center, scale", [(None, None), (None, "rms"), ("class", "rms"), (True, "unit")])
@pytest.mark.parametrize("d", [24, 300])  # d < N: column path; N ≤ d: Gram path
def test_replicates_equal_the_metrics_of_each_resample(ds, center, scale, d):
    """The slow, obvious twin: every replicate equals the metric recomputed on the resampled columns."""
    rng = np.random.default_rng(5)
    Z = analysis.slice_matrix(ds, 0, "cond")[:2]
    if d > Z.shape[-2]:
        Z = np.concatenate([Z, rng.standard_normal((2, d - Z.shape[-2], Z.shape[-1]))], axis=-2)
    labels = analysis.labels_of(ds, "coarse")
    rows = analysis.bootstrap_rows(ds, labels, 3, seed=3, resample="cluster")
    names = ["delta_R", "Rc_over_R", "effective_rank", "mean_overlap"]
    reps = analysis.replicates(names, Z, labels, rows, center=center, scale=scale, options={"rank": 2})
    for b, columns in enumerate(rows):
        direct = analysis.evaluate(names, Z[..., columns], labels[columns], center=center, scale=scale,
                                   options={"rank": 2})
        for name in names:
            tolerance = 1e-6 if name == "effective_rank" else 1e-9  # tiny singular values of duplicated columns
            np.testing.assert_allclose(reps[name][:, b], direct[name]["value"], rtol=tolerance, err_msg=name)


def test_cluster_rows_keep_class_sizes_and_draw_whole_seeds(ds):
    labels = analysis.labels_of(ds, "fine")
    rows = analysis.bootstrap_rows(ds, labels, 20, seed=1)
    seeds = ds["seed"].values
    for row in rows:
        _, counts = np.unique(labels[row], return_counts=True)
        assert (counts == 8).all()
        drawn, per_seed = np.unique(seeds[row], return_counts=True)
        assert (per_seed % 25 == 0).all()  # a drawn seed brings all 25 subjects, as often as it was drawn


def test_profiles_share_one_rate_computation(ds):
    both = analysis.profiles(ds, ["R", "Rc", "delta_R"], "fine", steps=[0], branches=["cond"])
    np.testing.assert_allclose(both["R"]["value"] - both["Rc"]["value"], both["delta_R"]["value"], rtol=1e-12)


def test_average_over_steps_interval_from_replicates(ds):
    prof = analysis.profile(ds, "delta_R", "coarse", n_boot=12, branches=["cond"], keep_samples=True)
    avg = analysis.average_over_steps(prof)
    assert avg["value"].dims == ("layer", "branch")
    np.testing.assert_allclose(avg["value"], prof["value"].mean("step"))
    assert (avg["low"] <= avg["high"]).all()
    assert "low" not in analysis.average_over_steps(analysis.profile(ds, "R", steps=[0]))


def test_sweep_profile_stacks_guidance_scales():
    caches = [synthetic_cache(n_layers=4, guidance_scale=g, seed=1) for g in (7.5, 2.0)]
    sweep = analysis.sweep_profile(caches, "delta_R", "coarse")
    assert list(sweep["guidance_scale"].values) == [2.0, 7.5]
    assert sweep["value"].dims[0] == "guidance_scale"
    stacked = sweep["value"].stack(config=("guidance_scale", "step"))
    assert stacked.sizes["config"] == 4


def test_permutation_profile(ds):
    perm = analysis.permutation_profile(ds, "coarse", n_permutations=20, steps=[13], branches=["cond"])
    assert perm["p_value"].dims == ("layer", "step", "branch")
    last = perm.isel(layer=-1)
    assert (last["observed"] > last["null_high"]).all()
    assert (last["p_value"] <= 1 / 21 + 1e-12).all()
    assert (perm["null_low"] <= perm["null_mean"]).all() and (perm["null_mean"] <= perm["null_high"]).all()


def test_overlap_matrix_fine_is_ordered_by_category(ds):
    om = analysis.overlap_matrix(ds, layer=5, step=0, branch="cond", scheme="fine")
    assert om.shape == (25, 25)
    cats = list(om["category_i"].values)
    assert cats == sorted(cats)
    np.testing.assert_allclose(np.diag(om), 1.0)
    assert 0 < om.attrs["chance"] < 1
    # nested subspaces: subjects of one category overlap more than subjects of different categories
    same = om["category_i"].values[:, None] == om["category_j"].values[None, :]
    off = ~np.eye(25, dtype=bool)
    assert om.values[same & off].mean() > om.values[~same].mean()


def test_transition_layer_and_bounds(ds):
    layer = analysis.transition_layer(ds)
    assert layer in ds["layer"].values
    bounds = analysis.rank_bounds(ds, "fine")
    assert bounds["all"] == min(ds.sizes["sample"], ds.sizes["feature"])
    assert set(bounds["per_class"].values()) == {8}


def test_open_dataset_reads_a_zarr_cache(tmp_path):
    path = write_synthetic_cache(tmp_path / "tiny.zarr", n_layers=3, steps=(0,), n_seeds=3)
    ds = analysis.open_dataset(str(path))
    assert ds.sizes["sample"] == 75 and ds.attrs["guidance_scale"] == 4.5
    Z = analysis.slice_matrix(ds, 0, "cond")
    assert Z.shape == (3, 24, 75)


def test_bad_arguments(ds):
    with pytest.raises(ValueError, match="metric"):
        analysis.profile(ds, "entropy")
    with pytest.raises(ValueError, match="scheme"):
        analysis.profile(ds, "delta_R")
    with pytest.raises(ValueError, match="cache"):
        analysis.open_dataset(42)


def test_profile_validates_its_arguments_and_names_valid_values(ds):
    for kwargs, name in [({"level": 1.5, "n_boot": 3}, "level"), ({"level": 0}, "level"), ({"n_boot": 0.5}, "n_boot"),
                         ({"n_boot": -2}, "n_boot"), ({"steps": [7]}, "steps"), ({"branches": ["cfg"]}, "branches"),
                         ({"scale": "max"}, "scale"), ({"center": "classes"}, "center"),
                         ({"resample": "jackknife", "n_boot": 3}, "resample"), ({"interval": "bca", "n_boot": 3}, "interval")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            analysis.profile(ds, "delta_R", "coarse", **kwargs)
    with pytest.raises(ValueError, match=r"valid values: \[0, 13\]"):
        analysis.profile(ds, "delta_R", "coarse", steps=[5])
    with pytest.raises(ValueError, match="^caches"):
        analysis.sweep_profile([], "delta_R", "coarse")


def test_profile_attrs_record_how_it_was_made(ds):
    prof = analysis.profile(ds, "delta_R", "fine", scale="rms", center="class", n_boot=3, seed=4, steps=[0])
    assert {k: prof.attrs[k] for k in ("scale", "center", "resample", "seed", "n_boot")} == {
        "scale": "rms", "center": "class", "resample": "cluster", "seed": 4, "n_boot": 3}


def test_rms_profile_is_invariant_to_the_activation_scale(ds):
    scaled = ds.copy()
    scaled["activations"] = ds["activations"] * 37.0
    a = analysis.profile(ds, "delta_R", "fine", scale="rms", steps=[0])["value"]
    b = analysis.profile(scaled, "delta_R", "fine", scale="rms", steps=[0])["value"]
    np.testing.assert_allclose(b, a, rtol=1e-6)  # float32 activations
    raw = analysis.profile(scaled, "delta_R", "fine", steps=[0])["value"]
    assert (raw > 1.5 * analysis.profile(ds, "delta_R", "fine", steps=[0])["value"]).all()


def test_restricted_permutation_profile_and_p_adjustment(ds):
    free = analysis.permutation_profile(ds, "fine", n_permutations=50, steps=[13], branches=["cond"], scale="rms")
    within = analysis.permutation_profile(ds, "fine", n_permutations=50, steps=[13], branches=["cond"], scale="rms",
                                          within="category")
    assert within.attrs["within"] == "category" and within.attrs["p_adjust"] == "bh"
    last = {"layer": -1}
    assert (within["null_mean"].isel(last) > free["null_mean"].isel(last)).all()  # category structure stays in it
    assert (within["p_adjusted"] >= within["p_value"] - 1e-12).all()


def test_split_profile_adds_up(ds):
    split = analysis.split_profile(ds, "coarse", scale="rms", steps=[0])
    np.testing.assert_allclose(split["means"] + split["geometry"], split["total"], rtol=1e-10)
    direct = analysis.profile(ds, "delta_R", "coarse", scale="rms", center="class", steps=[0])["value"]
    np.testing.assert_allclose(split["geometry"], direct, rtol=1e-10)


def test_overlap_null_profile(ds):
    result = analysis.overlap_null_profile(ds, "coarse", n_permutations=20, rank=3, steps=[0], branches=["cond"])
    # planted category subspaces (strong at the last block) are more orthogonal than shuffled groups
    assert (result["excess"].isel(layer=-1) < 0).all()


def test_derived_intervals(ds):
    prof = analysis.profile(ds, "delta_R", "coarse", n_boot=30, keep_samples=True, steps=[13], branches=["cond"],
                            scale="rms")
    ratio = analysis.block_ratio(prof)
    assert (ratio["low"] <= ratio["estimate"]).all() and (ratio["estimate"] <= ratio["high"]).all()
    trend = analysis.depth_trend(prof)
    assert (trend["low"] > 0.5).all()  # ΔR grows with depth in the synthetic cache
    peak = analysis.landmark(prof, "max")
    assert int(peak["estimate"].item()) == int(prof["value"].argmax("layer").item())
    with pytest.raises(ValueError, match="^prof"):
        analysis.block_ratio(analysis.profile(ds, "delta_R", "coarse", steps=[13]))


def test_sample_size_curve(ds):
    curve = analysis.sample_size_curve(ds, "delta_R", "coarse", per_class=(2, 8), n_repeats=3, layers=[0, 5])
    assert curve["mean"].dims == ("per_class", "layer")
    assert curve["value"].sel(per_class=8).std("repeat").max() < 1e-9  # all 8 seeds: every draw is the full cache
    with pytest.raises(ValueError, match="^per_class"):
        analysis.sample_size_curve(ds, "delta_R", "coarse", per_class=(9,))
