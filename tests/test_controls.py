"""Controls library (subspacelens.controls) on small synthetic caches with known answers."""

import numpy as np
import pytest
import xarray as xr

from subspacelens import analysis, controls, metrics
from subspacelens.metrics.transforms import prepare

SUBJECTS = {"animals": ["lion", "owl"], "food": ["pizza", "sushi"], "vehicles": ["boat", "car"]}
N_SEEDS = 12


def make_cache(rng, *, d=6, n_layers=3, steps=(0, 5), shared_uncond_step0=True, mean_only=False):
    """A tiny cache following DESIGN.md: 6 subjects in 3 categories × 12 seeds.

    ``shared_uncond_step0``: the uncond branch at step 0 depends on the seed only (shared initial noise,
    null text). ``mean_only``: classes differ only by their means (same within-class distribution).
    """
    subject, category, seed = [], [], []
    for cat, subs in SUBJECTS.items():
        for sub in subs:
            subject += [sub] * N_SEEDS
            category += [cat] * N_SEEDS
            seed += list(range(N_SEEDS))
    subject, category, seed = map(np.array, (subject, category, seed))
    n = subject.size
    codes = np.unique(subject, return_inverse=True)[1]
    means = 3.0 * rng.standard_normal((6, d))
    seed_noise = rng.standard_normal((N_SEEDS, d))
    acts = np.empty((n, n_layers, len(steps), 2, d))
    for layer in range(n_layers):
        for s, step in enumerate(steps):
            for b, branch in enumerate(("uncond", "cond")):
                if mean_only:
                    x = means[codes] + rng.standard_normal((n, d))
                else:
                    x = seed_noise[seed] + (layer + 1) * means[codes] * rng.standard_normal((n, 1))
                    x += 0.1 * rng.standard_normal((n, d))
                if shared_uncond_step0 and branch == "uncond" and s == 0:
                    x = seed_noise[seed] * (layer + 1)
                acts[:, layer, s, b] = x
    return xr.Dataset(
        {"activations": (("sample", "layer", "step", "branch", "feature"), acts)},
        coords={
            "sample": np.arange(n), "subject": ("sample", subject), "category": ("sample", category),
            "seed": ("sample", seed), "prompt": ("sample", subject), "layer": np.arange(n_layers),
            "step": list(steps), "timestep": ("step", [999, 500][: len(steps)]),
            "branch": ["uncond", "cond"], "feature": np.arange(d),
        },
        attrs={"num_layers_total": n_layers, "guidance_scale": 4.5, "model": "test"},
    )


@pytest.fixture(scope="module")
def ds():
    return make_cache(np.random.default_rng(0))


def test_eps_profile_equals_single_eps_calls(ds):
    eps_values = [0.2, 0.5, 1.5]
    curve = controls.eps_profile(ds, "fine", eps_values)
    assert curve.delta_R.dims == ("layer", "eps", "step", "branch")
    for eps in eps_values:
        single = controls.centering_profile(ds, "fine", eps=eps).raw
        np.testing.assert_allclose(curve.delta_R.sel(eps=eps), single, rtol=1e-9, atol=1e-9)
        direct = metrics.rate_reduction(analysis.slice_matrix(ds, 5, "cond"), analysis.labels_of(ds, "fine"), eps)
        np.testing.assert_allclose(curve.R.sel(eps=eps, step=5, branch="cond"), direct.R, rtol=1e-9)
    assert curve.relative_depth.values.tolist() == [0.0, 0.5, 1.0]


def test_class_centring_zeroes_every_class_mean():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((2, 4, 30)) + 5
    labels = np.repeat(["a", "b", "c"], 10)
    out = prepare(Z, np.unique(labels, return_inverse=True)[1], center="class")
    for cls in "abc":
        np.testing.assert_allclose(out[..., labels == cls].mean(axis=-1), 0, atol=1e-12)


def test_centering_when_classes_differ_only_by_means():
    rng = np.random.default_rng(2)
    d, n = 4, 120
    labels = np.repeat(np.arange(5), n)
    Z = 4.0 * rng.standard_normal((d, 5))[:, labels] + rng.standard_normal((d, 5 * n))
    raw = float(metrics.rate_reduction(Z, labels).delta_R)
    # Without the class means every class is a draw from one distribution: ΔR is finite-sample noise.
    class_centred = float(metrics.rate_reduction(Z, labels, center="class").delta_R)
    assert raw > 2.0
    assert abs(class_centred) < 0.02 * raw
    # the cache-level profile reports the same decomposition
    ds = make_cache(np.random.default_rng(2), d=3, mean_only=True, shared_uncond_step0=False)
    prof = controls.centering_profile(ds, "fine", eps=0.5)
    np.testing.assert_allclose(prof.mean_share, 1 - prof.class_centred / prof.raw)
    assert (prof.mean_share > 0.5).all()


def test_centering_when_classes_differ_only_by_subspace():
    rng = np.random.default_rng(3)
    d, n = 6, 40
    labels = np.repeat([0, 1], n)
    # zero-mean classes on orthogonal coordinate planes: no mean separation at all
    Z = np.zeros((d, 2 * n))
    Z[:3, :n] = rng.standard_normal((3, n))
    Z[3:, n:] = rng.standard_normal((3, n))
    Z -= Z.mean(axis=1, keepdims=True)
    Z = prepare(Z, labels, center="class")  # exactly zero class means
    raw = metrics.rate_reduction(Z, labels).delta_R
    again = metrics.rate_reduction(Z, labels, center="class").delta_R
    np.testing.assert_allclose(raw, again, rtol=1e-12)
    assert raw > 1.0


def test_seed_spread_and_labels_profile_see_the_shared_noise(ds):
    spread = controls.seed_spread(ds)
    np.testing.assert_allclose(spread.within_fraction.sel(step=0, branch="uncond"), 0, atol=1e-12)
    assert (spread.within_fraction.sel(branch="cond") > 0.1).all()
    dr = controls.labels_profile(ds, ("coarse", "fine", "seed"))
    assert dr.dims == ("labels", "layer", "step", "branch")
    # identical columns across subjects: every subject class holds the same 12 vectors, so ΔR = 0 exactly
    np.testing.assert_allclose(dr.sel(labels=["coarse", "fine"], step=0, branch="uncond"), 0, atol=1e-8)
    assert (dr.sel(labels="seed", step=0, branch="uncond") > 1).all()
    with pytest.raises(ValueError, match="labels"):
        controls.labels_profile(ds, ("no-such-scheme",))


def test_branch_gap_is_paired(ds):
    prof = analysis.profile(ds, "delta_R", "fine", n_boot=30, keep_samples=True, seed=1)
    gap = controls.branch_gap(prof)
    np.testing.assert_allclose(gap.gap, prof.value.sel(branch="uncond") - prof.value.sel(branch="cond"))
    assert (gap.gap_low <= gap.gap_high).all()
    # identical branches: every paired replicate of the gap is exactly 0
    twin = ds.copy()
    twin["activations"] = xr.concat([ds.activations.sel(branch="cond")] * 2, dim="branch").assign_coords(
        branch=["uncond", "cond"]).transpose(*ds.activations.dims)
    same = controls.branch_gap(analysis.profile(twin, "delta_R", "fine", n_boot=20, keep_samples=True))
    np.testing.assert_allclose(same[["gap", "gap_low", "gap_high"]].to_array(), 0, atol=1e-9)
    with pytest.raises(ValueError, match="prof"):
        controls.branch_gap(analysis.profile(ds, "delta_R", "fine"))


def test_layer_trend():
    values = xr.DataArray([[1.0, 3.0], [2.0, 2.0], [4.0, 1.0]], dims=("layer", "eps"),
                          coords={"layer": [0, 1, 2], "eps": [0.1, 1.0]})
    trend = controls.layer_trend(values)
    np.testing.assert_allclose(trend.ratio_last_first, [4.0, 1 / 3])
    np.testing.assert_allclose(trend.spearman, [1.0, -1.0])
    assert trend.increasing.values.tolist() == [True, False]
    assert trend.argmax_layer.values.tolist() == [2, 0]


def test_stack_models(ds):
    twin = make_cache(np.random.default_rng(9))
    profiles = {name: analysis.profile(c, "delta_R", "coarse") for name, c in (("trained", ds), ("random-init", twin))}
    both = controls.stack_models(profiles)
    assert both.value.dims[0] == "model" and both.model.values.tolist() == ["trained", "random-init"]
    np.testing.assert_allclose(both.value.sel(model="trained"), analysis.profile(ds, "delta_R", "coarse").value)


@pytest.mark.parametrize("d", [2, 16, 128])
def test_gaussian_hoyer_matches_monte_carlo(d):
    Z = np.random.default_rng(d).standard_normal((d, 20000))
    assert abs(controls.gaussian_hoyer(d) - float(metrics.hoyer_sparsity(Z))) < 0.01
    with pytest.raises(ValueError, match="d"):
        controls.gaussian_hoyer(1)


def test_hoyer_references_order():
    refs = {k: float(v) for k, v in controls.hoyer_references(64, 300).to_series().items()}
    assert refs["one_hot"] == pytest.approx(1.0)
    assert refs["gaussian"] == pytest.approx(refs["gaussian_exact"], abs=0.01)
    assert refs["sparse_neurons"] > 0.7
    # sparse over an overcomplete dictionary, yet dense coordinate-wise
    assert refs["sparse_dictionary"] < 0.35


def test_isotropy_references():
    rng = np.random.default_rng(4)
    # heavy-tailed, anisotropic data: Laplace coordinates with very different scales
    Z = rng.laplace(size=(2, 8, 400)) * np.geomspace(0.1, 10, 8)[:, None]
    refs = controls.isotropy_references(Z, n_projections=64, alpha=0.01)
    assert refs.rejection_rate.dims == ("reference", "dim_0")
    rate = refs.rejection_rate
    assert (rate.sel(reference="observed") > 0.3).all()
    assert (rate.sel(reference="matched_gaussian") < 0.1).all()
    assert (rate.sel(reference="isotropic_gaussian") < 0.1).all()
    assert (rate.sel(reference="student_t") > 0.3).all()


def test_ci_widths_table():
    prof = xr.Dataset({"value": ("layer", [1.0, 2.0, 4.0]), "low": ("layer", [0.9, 1.5, 3.0]),
                       "high": ("layer", [1.1, 2.5, 5.0])})
    table = controls.ci_widths({"curve": prof})
    assert table.loc["curve", "median width"] == pytest.approx(1.0)
    assert table.loc["curve", "max width"] == pytest.approx(2.0)
    assert table.loc["curve", "median width / |value|"] == pytest.approx(0.5)


def test_disk_arithmetic(tmp_path):
    assert controls.cache_nbytes(500, 28, 4, 2, 1152) == 500 * 28 * 4 * 2 * 1152 * 4
    with pytest.raises(ValueError):
        controls.cache_nbytes(0, 1, 1, 1, 1)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"12345")
    (tmp_path / "y").write_bytes(b"123")
    assert controls.store_nbytes(tmp_path) == 8


def test_isotropy_profile_matches_slice_calls(ds):
    prof = controls.isotropy_profile(ds, n_projections=16, alpha=0.05, steps=[5], branches=["cond"])
    assert prof.rejection_rate.dims == ("reference", "layer", "step", "branch")
    direct = metrics.isotropy_test(analysis.slice_matrix(ds, 5, "cond"), n_projections=16, alpha=0.05)
    np.testing.assert_allclose(prof.rejection_rate.sel(reference="observed", step=5, branch="cond"),
                               direct.rejection_rate)
    np.testing.assert_allclose(prof.sigreg.sel(reference="isotropic_gaussian"), direct.sigreg_null)
