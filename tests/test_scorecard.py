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
        scorecard.criterion_names(finding["criterion"])  # parses


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


def test_unknown_quantity_is_an_error():
    with pytest.raises(ValueError, match="unknown quantity"):
        scorecard.evaluate_criterion("ratio > 1", {"rho": 1})


def test_missing_caches_are_reported_not_run(small_caches):
    df = scorecard.table(small_caches, chapter="controls", n_boot=0, n_permutations=5)
    random_row = df.set_index("id").loc["control_random_init"]
    assert random_row["holds"] == scorecard.NOT_RUN
    assert random_row["this run"].startswith(scorecard.NOT_RUN)
    assert df.set_index("id").loc["control_permuted_labels", "holds"] in (True, False)
    sweep = scorecard.table({}, chapter="rate_reduction_across_layers", n_boot=0).set_index("id")
    assert (sweep["holds"] == scorecard.NOT_RUN).all()


def test_a_cache_without_the_uncond_branch_reports_not_run():
    cond_only = synthetic_cache(n_layers=4, steps=(0,), d=16, n_seeds=4, branches=("cond",))
    df = scorecard.table({"main": cond_only}, chapter="cond_vs_uncond", n_boot=0).set_index("id")
    assert (df["holds"] == scorecard.NOT_RUN).all()
    assert "uncond" in df["this run"].iloc[0]


def test_table_columns_and_values_on_a_synthetic_cache(small_caches):
    df = scorecard.table(small_caches, chapter="rate_reduction_across_layers", n_boot=8)
    assert list(df.columns) == scorecard.COLUMNS
    rows = df.set_index("id")
    assert rows.loc["dr_all_configs", "holds"] == scorecard.NOT_RUN  # no sweep given
    assert rows.loc["dr_growth", "holds"] in (True, False)
    assert "nats" in rows.loc["dr_growth", "this run"] and "[" in rows.loc["dr_growth", "this run"]
    assert scorecard.summary(df).endswith(".")


def test_measures_compute_from_the_cache(small_caches):
    ctx = scorecard.Context(small_caches, n_boot=8)
    growth = scorecard.MEASURES["growth"].function(ctx, scheme="coarse")
    q = growth.quantities
    assert q["ratio_low"] <= q["ratio"] <= q["ratio_high"]
    assert q["ratio"] == pytest.approx(q["last"] / q["first"])
    sweep = {"sweep": [synthetic_cache(n_layers=5, steps=(0, 19), d=16, n_seeds=4, guidance_scale=g)
                       for g in (2.0, 7.5)]}
    shape = scorecard.MEASURES["sweep_shape"].function(scorecard.Context(sweep, n_boot=0), growth=2)
    assert shape.quantities["n_configs"] == 4
    assert -1 <= shape.quantities["min_shape_corr"] <= 1


def test_summary_sentence_counts():
    import pandas as pd
    df = pd.DataFrame({"id": ["a", "b", "c"], "holds": [True, False, scorecard.NOT_RUN]})
    sentence = scorecard.summary(df)
    assert sentence.startswith("1 of 2 measured findings hold") and "1 does not (b)" in sentence and "1 was not run" in sentence
    assert np.isfinite(len(sentence))
