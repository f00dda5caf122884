"""The scorecard: the findings file, criteria, measures, and the table on a synthetic cache."""

import numpy as np
import pytest

from subspacelens import scorecard
from test_analysis import synthetic_cache


@pytest.fixture(scope="module")
def small_caches():
    main = synthetic_cache(n_layers=5, steps=(0, 19), d=16, n_seeds=4, seed=0)
    return {"main": main}


def test_every_finding_is_complete_and_has_a_registered_measure():
    findings = scorecard.load_findings()
    ids = [f["id"] for f in findings]
    assert len(ids) == len(set(ids))
    chapters = {f["chapter"] for f in findings}
    assert chapters >= {"rate_reduction_across_layers", "effective_rank", "transition_block", "per_subject",
                        "cond_vs_uncond", "dense_not_sparse", "beyond_isotropic_noise", "controls"}
    for finding in findings:
        assert finding["measure"] in scorecard.MEASURES
        assert finding["claim"].strip() and str(finding["blog_value"]).strip()
        for criterion in (finding.get("criterion"), (finding.get("controlled") or {}).get("criterion")):
            if criterion:
                scorecard.criterion_names(criterion)  # parses
        assert finding.get("criterion") or finding.get("controlled")


@pytest.mark.parametrize("criterion,quantities,expected", [
    ("ratio >= 10", {"ratio": 28.6}, True),
    ("ratio >= 10", {"ratio": 3.0}, False),
    ("1/3 <= min_depth <= 2/3", {"min_depth": 14 / 27}, True),
    ("1/3 <= min_depth <= 2/3", {"min_depth": 25 / 27}, False),
    ("fine_last < coarse_last and fine_first < coarse_first", {"fine_last": 0.1, "coarse_last": 0.35,
                                                                "fine_first": 0.47, "coarse_first": 0.67}, True),
    ("fine_last < coarse_last and fine_first < coarse_first", {"fine_last": 0.4, "coarse_last": 0.35,
                                                                "fine_first": 0.47, "coarse_first": 0.67}, False),
    ("abs(gap) / base < 0.001 or not flag", {"gap": 0.1, "base": 615.8, "flag": 1}, True),
    ("min >= 10 * alpha", {"min": 0.05, "alpha": 0.01}, False),
    ("max(a, b) > 1", {"a": 0.5, "b": 2}, True),
    ("x > 0", {"x": float("nan")}, False),
])
def test_criteria_evaluate_both_ways(criterion, quantities, expected):
    assert scorecard.evaluate_criterion(criterion, quantities) is expected


@pytest.mark.parametrize("criterion", ["__import__('os')", "x.y > 1", "ratio >=", "'a' == 'a'", "[x][0] > 1",
                                       "open(x)"])
def test_unsafe_or_malformed_criteria_are_refused(criterion):
    with pytest.raises(ValueError, match="criterion"):
        scorecard.evaluate_criterion(criterion, {"x": 1, "ratio": 2})


def test_an_exact_null_prints_as_its_bound_and_anything_larger_as_itself():
    assert scorecard.at_most(4.75e-14, 1e-10) == scorecard.at_most(-1.91e-14, 1e-10) == "below 1e-10"
    assert scorecard.at_most(2e-10, 1e-10) == "2.00e-10" and scorecard.at_most(0.5, 1e-10) == "0.5"


def test_unknown_quantity_is_an_error():
    with pytest.raises(ValueError, match="unknown quantity"):
        scorecard.evaluate_criterion("ratio > 1", {"rho": 1})


def test_an_interval_bound_of_a_run_without_intervals_says_to_resample():
    with pytest.raises(ValueError, match="'ratio_low' is a bound of the interval of 'ratio'.*n_boot > 0"):
        scorecard.evaluate_criterion("ratio_low > 1", {"ratio": 2})


def _noise_cache(**kwargs):
    """No structure at all: the synthetic cache with zero signal (labels arbitrary with respect to the data)."""
    return synthetic_cache(signal_gain=0.0, **kwargs)


def _mean_only_cache(n_layers=4, d=16, n_seeds=4, seed=1):
    """Classes that differ only by their means (the same at every block), isotropic within class."""
    ds = synthetic_cache(n_layers=n_layers, steps=(0, 19), d=d, n_seeds=n_seeds, seed=seed, signal_gain=0.0)
    rng = np.random.default_rng(seed)
    subjects = ds["subject"].values
    means = {s: 3.0 * rng.standard_normal(d) for s in np.unique(subjects)}
    shift = np.stack([means[s] for s in subjects])[:, None, None, None, :]
    return ds.assign(activations=ds["activations"] + shift.astype(np.float32))


SESSION = dict(n_boot=20, n_permutations=50)


def test_missing_caches_are_reported_not_run(small_caches):
    df = scorecard.table(small_caches, chapter="controls", **SESSION).set_index("id")
    assert df.loc["control_twin", "under controls"] == scorecard.NOT_RUN
    assert df.loc["control_twin", "this run (under controls)"].startswith(scorecard.NOT_RUN)
    assert df.loc["control_permuted_labels", "under controls"] in (scorecard.HOLDS, scorecard.FAILS)
    sweep = scorecard.table({}, chapter="rate_reduction_across_layers", n_boot=0).set_index("id")
    assert (sweep["raw, as the blog measured"] == scorecard.NOT_RUN).all()


def test_a_twin_of_other_samples_is_refused_not_paired(small_caches):
    """A twin captured with another protocol (here fewer seeds) cannot be paired sample by sample."""
    twin = synthetic_cache(n_layers=5, steps=(0, 19), d=16, n_seeds=3, seed=1)
    session = scorecard.Session({"main": small_caches["main"], "twin": twin}, n_boot=0)
    with pytest.raises(ValueError, match="twin: a Dataset holds .* samples that are not the main cache's"):
        session.ds("twin")
    paired = synthetic_cache(n_layers=5, steps=(0, 19), d=16, n_seeds=4, seed=1)
    assert scorecard.Session({"main": small_caches["main"], "twin": paired}, n_boot=0).ds("twin") is not None


def test_a_cache_without_the_uncond_branch_reports_not_run():
    cond_only = synthetic_cache(n_layers=4, steps=(0,), d=16, n_seeds=4, branches=("cond",))
    df = scorecard.table({"main": cond_only}, chapter="cond_vs_uncond", n_boot=0).set_index("id")
    assert (df["raw, as the blog measured"] == scorecard.NOT_RUN).all()
    assert "uncond" in df["this run (raw)"].iloc[0]


def test_table_columns_and_values_on_a_synthetic_cache(small_caches):
    df = scorecard.table(small_caches, chapter="rate_reduction_across_layers", **SESSION)
    assert list(df.columns) == scorecard.COLUMNS
    rows = df.set_index("id")
    assert rows.loc["dr_all_configs", "raw, as the blog measured"] == scorecard.NOT_RUN  # no sweep given
    assert rows.loc["dr_growth", "raw, as the blog measured"] in (scorecard.HOLDS, scorecard.FAILS)
    assert "nats" in rows.loc["dr_growth", "this run (raw)"] and "[" in rows.loc["dr_growth", "this run (raw)"]
    assert "scale-aware" in rows.loc["dr_growth", "this run (under controls)"]
    assert scorecard.summary(df).endswith(".")


def test_tautologies_are_labelled_as_such(small_caches):
    df = scorecard.table(small_caches, chapter="per_subject", **SESSION).set_index("id")
    assert df.loc["fine_dr_above_coarse", "raw, as the blog measured"] == scorecard.BY_CONSTRUCTION


def test_measures_compute_from_the_cache(small_caches):
    session = scorecard.Session(small_caches, n_boot=8)
    growth = scorecard.MEASURES["growth"].function(session, scheme="coarse")
    q = growth.quantities
    assert q["ratio_low"] <= q["ratio"] <= q["ratio_high"]
    assert q["ratio"] == pytest.approx(q["last"] / q["first"])
    sweep = {"sweep": [synthetic_cache(n_layers=5, steps=(0, 19), d=16, n_seeds=4, guidance_scale=g)
                       for g in (2.0, 7.5)]}
    shape = scorecard.MEASURES["sweep_shape"].function(scorecard.Session(sweep, n_boot=0), growth=2)
    assert shape.quantities["n_configs"] == 4
    assert -1 <= shape.quantities["min_shape_corr"] <= 1


# --------------------------------------------------------------------- positive and negative controls


def _blog_quantities():
    """The quantities each criterion reads, computed from the numbers the blog reports (where it gives them)."""
    blog = scorecard.blog_reference()
    depth = blog["depth"]
    first, last = blog["dr_first_last"]
    rc = blog["rc_over_r"]
    return {
        "dr_growth": {"ratio": last / first},
        "erank_peak": {"peak_layer_depth": float(depth(blog["erank"]["peak_block"]))},
        "erank_collapse": {"peak_over_last": blog["erank"]["peak"] / blog["erank"]["last"]},
        "overlap_min_mid": {"min_layer_depth": float(depth(blog["transition_block"]))},
        "overlap_rebound": {"last_over_min": blog["overlap_range"][1] / blog["overlap_range"][0]},
        "overlap_partial": {"min": blog["overlap_range"][0]},
        "dr_dip_depth": {"dip_depth": float(depth(np.mean(blog["dip_blocks"])))},
        "rc_ratio_fine_below_coarse": {"fine_last": rc["fine"][2], "coarse_last": rc["coarse"][2]},
        "fine_dr_above_coarse": {"ratio_min": blog["fine_over_coarse_dr"]},
        "branches_converge": {"max_rel_gap_last": abs(np.diff(blog["cond_uncond_last"]))[0] / blog["cond_uncond_last"][0]},
        "hoyer_dense": {"max": blog["hoyer_range"][1]},
        "hoyer_densest_late_middle": {"densest_depth": float(depth(np.mean(blog["hoyer_densest_blocks"])))},
        "jb_rejects": {"min": blog["jb_rejection"][0], "alpha": 0.01},
    }


def test_positive_control_the_criteria_agree_with_the_blog_on_its_own_numbers():
    findings = {f["id"]: f for f in scorecard.load_findings()}
    for finding_id, quantities in _blog_quantities().items():
        assert scorecard.evaluate_criterion(findings[finding_id]["criterion"], quantities), finding_id


@pytest.mark.parametrize("make", [_noise_cache, _mean_only_cache], ids=["isotropic-noise", "mean-only"])
def test_negative_control_caches_without_the_property_fail_under_controls(make):
    cache = make(n_layers=4, d=16, n_seeds=4) if make is _mean_only_cache else make(
        n_layers=4, steps=(0, 19), d=16, n_seeds=4)
    df = scorecard.table({"main": cache, "twin": _noise_cache(n_layers=4, steps=(0, 19), d=16, n_seeds=4, seed=5)},
                         chapter="controls", **SESSION).set_index("id")
    verdicts = df["under controls"]
    assert verdicts["control_scale_growth"] == scorecard.FAILS  # no growth with depth in either
    assert verdicts["control_class_centred"] == scorecard.FAILS  # no within-class geometry in either
    if make is _noise_cache:
        assert verdicts["control_permuted_labels"] == scorecard.FAILS
        assert verdicts["control_twin"] == scorecard.FAILS
    else:
        assert verdicts["control_permuted_labels"] == scorecard.HOLDS  # the means do separate the classes
        assert verdicts["control_means_share"] == scorecard.FAILS  # … and they are all of it


def test_summary_sentence_counts():
    import pandas as pd

    df = pd.DataFrame({"id": ["a", "b", "c"], "raw, as the blog measured": [scorecard.HOLDS, scorecard.FAILS, "—"],
                       "under controls": [scorecard.FAILS, scorecard.FAILS, scorecard.HOLDS]})
    sentence = scorecard.summary(df)
    assert sentence.startswith("Of the blog's 2 findings, 1 of 2 measured hold") and "under the controls 0 survive" in sentence
    assert "Of the 1 controls the book adds, 1 hold" in sentence


def test_a_stored_session_reuses_results_until_the_cache_changes(small_caches, tmp_path, monkeypatch):
    # Two pages of one run (a chapter, then the scorecard) open separate sessions over one cache path: the
    # second reads the first one's result from the store; rewriting the cache makes it compute afresh.
    from subspacelens import analysis

    path = tmp_path / "main.zarr"
    ds = small_caches["main"]
    for variable in ds.variables.values():
        variable.encoding.clear()
    ds.to_zarr(path, zarr_format=2, consolidated=False)
    store = tmp_path / "memo"
    first = scorecard.Session({"main": str(path)}, n_boot=4, store=store).curve("main", "delta_R", "coarse")
    assert len(list(store.glob("*.pkl"))) == 1

    calls = []
    original = analysis.profiles
    monkeypatch.setattr(analysis, "profiles", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = scorecard.Session({"main": str(path)}, n_boot=4, store=store).curve("main", "delta_R", "coarse")
    np.testing.assert_array_equal(first.values, again.values)
    assert calls == []
    scorecard.Session({"main": str(path)}, n_boot=5, store=store).curve("main", "delta_R", "coarse")
    assert len(calls) == 1  # other session settings: another result

    ds.assign(activations=ds["activations"] * 2).to_zarr(path, mode="w", zarr_format=2, consolidated=False)
    rewritten = scorecard.Session({"main": str(path)}, n_boot=4, store=store).curve("main", "delta_R", "coarse")
    assert len(calls) == 2
    assert not np.allclose(rewritten.values, first.values)


def test_an_in_memory_session_stores_nothing(small_caches, tmp_path):
    store = tmp_path / "memo"
    scorecard.Session(small_caches, n_boot=0, store=store).curve("main", "delta_R", "coarse")
    assert not store.exists()


def test_styled_scorecard_links_marks_and_is_deterministic(small_caches):
    card = scorecard.table(small_caches, chapter="rate_reduction_across_layers", **SESSION)
    first, again = scorecard.styled(card).to_html(), scorecard.styled(card).to_html()
    assert first == again  # a fixed table id: nbval compares the HTML of the page
    assert 'href="rate_reduction_across_layers.html"' in first and 'class="scorecard"' in first
    for verdict in set(card["under controls"]):
        assert f"{scorecard.display.MARKS[verdict][0]} {verdict}" in first  # the mark and the words
    with pytest.raises(ValueError, match="not a scorecard table"):
        scorecard.styled(card.drop(columns=["under controls"]))
