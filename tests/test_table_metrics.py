"""Table metrics: hand-worked values, and agreement with SDMetrics where it is installed (not in CI)."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from gankit.errors import GankitError
from gankit.metrics.table_utility import dcr, exact_copies, ml_efficacy, privacy
from gankit.metrics.tables import (contingency_similarity, correlation_similarity, cramers_v, ks_complement,
                                   quality_report, tv_complement)


# ---------------------------------------------------------------------------------------------
# Tables used throughout.

def weather() -> tuple[pd.DataFrame, dict]:
    """seattle_weather with missing cells in a numerical, a categorical and the datetime column, plus a boolean."""
    from vega_datasets import data

    frame = data.seattle_weather()
    frame["weather"] = frame["weather"].astype(object)
    rng = np.random.default_rng(0)
    frame.loc[rng.random(len(frame)) < 0.1, "weather"] = None
    frame.loc[rng.random(len(frame)) < 0.05, "wind"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.05, "date"] = pd.NaT
    frame["rainy"] = np.where(frame["precipitation"] > 0, "True", "False").astype(object)
    sdtypes = {"date": "datetime", "precipitation": "numerical", "temp_max": "numerical",
               "temp_min": "numerical", "wind": "numerical", "weather": "categorical", "rainy": "boolean"}
    return frame, sdtypes


def perturbed(frame: pd.DataFrame, seed: int, noise: float = 0.3) -> pd.DataFrame:
    """Rows drawn with replacement, numerical columns jittered, a few categories swapped: a stand-in for samples."""
    rng = np.random.default_rng(seed)
    fake = frame.sample(frac=1.0, replace=True, random_state=seed).reset_index(drop=True)
    for name in fake.columns:
        if fake[name].dtype == np.float64:
            fake[name] = fake[name] + rng.normal(0, fake[name].std() * noise, len(fake))
        elif fake[name].dtype == object:
            swap = rng.random(len(fake)) < 0.1
            fake.loc[swap, name] = rng.choice(fake[name].dropna().unique(), swap.sum())
    return fake


def wine() -> tuple[pd.DataFrame, dict]:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.astype({"target": str}).astype({"target": object})
    sdtypes = {name: "numerical" for name in frame.columns}
    sdtypes["target"] = "categorical"
    return frame, sdtypes


def breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant").astype(object)
    sdtypes = {name: "numerical" for name in frame.columns}
    sdtypes["target"] = "categorical"
    order = np.random.default_rng(0).permutation(len(frame))
    return frame.iloc[order[:400]].reset_index(drop=True), frame.iloc[order[400:]].reset_index(drop=True), sdtypes


# ---------------------------------------------------------------------------------------------
# Hand-worked values.

def test_identical_frames_score_one():
    real, sdtypes = weather()
    for thresholds in ((0.5, 0.3), (0.0, 0.0)):
        report = quality_report(real, real.copy(), sdtypes, *thresholds)
        assert report["column_shapes"] == pytest.approx(1.0)
        assert report["column_pair_trends"] == pytest.approx(1.0)
        assert report["score"] == pytest.approx(1.0)
    assert len(report["pairs"]) == 21 and all(p["meets_threshold"] for p in report["pairs"])


def test_tv_complement_by_hand():
    real = pd.Series(["a", "a", "b", "c", None], dtype=object)
    fake = pd.Series(["a", "b", "b", "b", None, None], dtype=object)
    # p_real = (1/2, 1/4, 1/4), p_fake = (1/4, 3/4, 0): TV = (1/4 + 1/2 + 1/4) / 2 = 1/2
    assert tv_complement(real, fake) == pytest.approx(0.5)
    # a category only the fake column has: the real side counts it 1e-6 times
    assert tv_complement(pd.Series(["a", "a"]), pd.Series(["a", "z"])) == pytest.approx(0.5, abs=1e-6)
    assert math.isnan(tv_complement(pd.Series([None, None], dtype=object), pd.Series(["a"])))


def test_ks_complement_by_hand():
    real, fake = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan]), pd.Series([3.0, 4.0, 5.0, 6.0])
    assert ks_complement(real, fake) == pytest.approx(0.5)   # F_real(2) - F_fake(2) = 1/2
    days = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-02", None]))
    assert ks_complement(days, days) == 1.0


def test_correlation_similarity_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y_real, y_fake = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, -1.0, -1.0, 1.0])   # r = 1 and r = 0
    got = correlation_similarity(x, y_real, x, y_fake)
    assert (got["real"], got["synthetic"]) == pytest.approx((1.0, 0.0))
    assert got["score"] == pytest.approx(1 - abs(1.0 - 0.0) / 2)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(size=500)
    c, d = a + 0.5 * b, a - 2 * b
    r_real, r_fake = np.corrcoef(a, c)[0, 1], np.corrcoef(a, d)[0, 1]
    assert correlation_similarity(a, c, a, d)["score"] == pytest.approx(1 - abs(r_real - r_fake) / 2)
    # below the real-correlation threshold the pair has no score
    assert math.isnan(correlation_similarity(x, y_fake, x, y_real, real_correlation_threshold=0.5)["score"])
    with pytest.raises(ValueError, match="constant"):
        correlation_similarity(x, np.ones(4), x, y_fake)


def test_contingency_and_cramers_v_by_hand():
    assert cramers_v(np.array([[5, 0], [0, 5]])) == pytest.approx(1.0)
    assert cramers_v(np.array([[2, 2], [2, 2]])) == pytest.approx(0.0)
    assert math.isnan(cramers_v(np.array([[3, 4], [0, 0]])))   # one row present: undefined
    # real cells (0,0), (1,1) half each; fake (0,0) 1/4, (0,1) 1/4, (1,1) 1/2: TV = (1/4 + 1/4) / 2
    real_a, real_b = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])
    fake_a, fake_b = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    got = contingency_similarity(real_a, real_b, fake_a, fake_b, 2, 2)
    assert got["score"] == pytest.approx(0.75) and got["real_association"] == pytest.approx(1.0)


def test_report_thresholds_select_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    real = pd.DataFrame({"x": x, "strong": x + 0.1 * rng.normal(size=400), "noise": rng.normal(size=400)})
    fake = real.sample(frac=1.0, random_state=2).reset_index(drop=True)
    fake["noise"] = -fake["x"]   # a trend the real data does not have
    sdtypes = {"x": "numerical", "strong": "numerical", "noise": "numerical"}
    default, every = quality_report(real, fake, sdtypes), quality_report(real, fake, sdtypes, 0.0, 0.0)
    kept = [(p["column_1"], p["column_2"]) for p in default["pairs"] if p["meets_threshold"]]
    assert kept == [("x", "strong")] and default["column_pair_trends"] == pytest.approx(1.0)
    assert every["column_pair_trends"] < 0.9
    assert default["how"]["real_correlation_threshold"] == 0.5 and "0.32.0" in default["how"]["follows"]
    json.dumps(default, allow_nan=False)


def test_report_refuses_bad_input():
    real, sdtypes = weather()
    with pytest.raises(GankitError, match="'wind'.*synthetic"):
        quality_report(real, real.drop(columns="wind"), sdtypes)
    with pytest.raises(GankitError, match="'wind' has sdtype 'text'"):
        quality_report(real, real, {**sdtypes, "wind": "text"})
    with pytest.raises(GankitError, match="'weather' is a numerical column"):
        quality_report(real, real, {**sdtypes, "weather": "numerical"})


def test_unscorable_columns_are_skipped():
    real, sdtypes = weather()
    fake = perturbed(real, 1)
    real["temp_min"], fake["weather"] = 3.0, None   # a constant column; an all-missing column
    report = quality_report(real, fake, sdtypes, 0.0, 0.0)
    errors = {(p["column_1"], p["column_2"]) for p in report["pairs"] if p["error"]}
    assert ("temp_max", "temp_min") in errors
    assert [c["score"] for c in report["columns"] if c["column"] == "weather"] == [None]
    assert 0 < report["score"] < 1


# ---------------------------------------------------------------------------------------------
# Agreement with SDMetrics (a benchmark extra: skipped where it is not installed).

def sdmetrics_report(real, fake, sdtypes, thresholds):
    from sdmetrics.reports.single_table import QualityReport

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.real_correlation_threshold, report.real_association_threshold = thresholds
        metadata = {"columns": {name: {"sdtype": sdtype} for name, sdtype in sdtypes.items()}}
        report.generate(real[list(sdtypes)], fake[list(sdtypes)], metadata, verbose=False)
    return report


def assert_same(ours, theirs, field):
    assert (ours is None) == pd.isna(theirs), field
    if ours is not None:
        assert ours == pytest.approx(theirs, abs=1e-6), field


@pytest.mark.parametrize("table", ["weather", "wine"])
@pytest.mark.parametrize("thresholds", [(0.5, 0.3), (0.0, 0.0)])
def test_quality_report_matches_sdmetrics(table, thresholds):
    pytest.importorskip("sdmetrics")
    real, sdtypes = weather() if table == "weather" else wine()
    fake = perturbed(real, 1)
    theirs = sdmetrics_report(real, fake, sdtypes, thresholds)
    ours = quality_report(real, fake, sdtypes, *thresholds)
    properties = theirs.get_properties().set_index("Property")["Score"]
    assert_same(ours["score"], theirs.get_score(), "score")
    assert_same(ours["column_shapes"], properties["Column Shapes"], "shapes")
    assert_same(ours["column_pair_trends"], properties["Column Pair Trends"], "trends")
    for mine, row in zip(ours["columns"], theirs.get_details("Column Shapes").to_dict("records")):
        assert (mine["column"], mine["metric"]) == (row["Column"], row["Metric"])
        assert_same(mine["score"], row["Score"], mine["column"])
    pairs = theirs.get_details("Column Pair Trends").to_dict("records")
    assert len(pairs) == len(ours["pairs"])
    for mine, row in zip(ours["pairs"], pairs):
        assert (mine["column_1"], mine["column_2"], mine["metric"]) == (row["Column 1"], row["Column 2"], row["Metric"])
        assert mine["meets_threshold"] == bool(row["Meets Threshold?"] is not pd.NA and row["Meets Threshold?"])
        fields = [("score", "Score"), ("real_correlation", "Real Correlation"),
                  ("synthetic_correlation", "Synthetic Correlation")]
        if thresholds[1] > 0:   # SDMetrics computes Cramér's V only when it has a threshold
            fields.append(("real_association", "Real Association"))
        for ours_field, their_field in fields:
            assert_same(mine[ours_field], row[their_field], f"{mine['column_1']}/{mine['column_2']} {ours_field}")


def test_dcr_and_privacy_match_sdmetrics():
    pytest.importorskip("sdmetrics")
    from sdmetrics.single_table import DCROverfittingProtection
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    real, sdtypes = weather()
    train, holdout = real.iloc[:500].reset_index(drop=True), real.iloc[500:900].reset_index(drop=True)
    fake = pd.concat([train.iloc[:100], perturbed(holdout, 4).iloc[:200]], ignore_index=True)
    fake.loc[:10, "temp_max"] = 99.0   # beyond the training range: distances clamp at 1
    metadata = {"columns": {name: {"sdtype": sdtype} for name, sdtype in sdtypes.items()}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = calculate_dcr(fake, train, metadata).to_numpy()
        breakdown = DCROverfittingProtection.compute_breakdown(train, fake, holdout, metadata, None)
    np.testing.assert_allclose(dcr(fake, train, sdtypes), theirs, atol=1e-9)
    ours = privacy(train, holdout, fake, sdtypes)
    assert ours["score"] == pytest.approx(breakdown["score"], abs=1e-9)
    assert ours["closer_to_training"] == pytest.approx(breakdown["synthetic_data_percentages"]["closer_to_training"])
    assert ours["exact_copies"] == pytest.approx(89 / 300)   # 100 copied rows, 11 of them then changed


# ---------------------------------------------------------------------------------------------
# Machine-learning efficacy.

def test_ml_efficacy_real_rows_as_synthetic_score_the_same():
    train, test, sdtypes = breast_cancer()
    out = ml_efficacy(train, test, train.copy(), "target", sdtypes)
    assert (out["task"], out["metric"]) == ("classification", "f1_macro")
    assert out["synthetic"] == out["real"] and out["ratio"] == pytest.approx(1.0)
    assert out["real"]["accuracy"] > 0.9


def test_ml_efficacy_shuffled_target_is_near_chance():
    train, test, sdtypes = breast_cancer()
    shuffled = train.copy()
    shuffled["target"] = np.random.default_rng(0).permutation(shuffled["target"].to_numpy())
    out = ml_efficacy(train, test, shuffled, "target", sdtypes)
    majority = test["target"].value_counts(normalize=True).max()
    assert out["synthetic"]["accuracy"] < majority + 0.1 < out["real"]["accuracy"]
    assert out["ratio"] < 0.75


def test_ml_efficacy_regression_and_mixed_columns():
    real, sdtypes = weather()
    train, test = real.iloc[:1000].reset_index(drop=True), real.iloc[1000:].reset_index(drop=True)
    out = ml_efficacy(train, test, perturbed(train, 2, noise=0.1), "temp_max", sdtypes)
    assert (out["task"], out["metric"]) == ("regression", "r2")
    assert out["real"]["r2"] > 0.6 and out["synthetic"]["r2"] > 0.3
    again = ml_efficacy(train, test, perturbed(train, 2, noise=0.1), "temp_max", sdtypes)
    assert again == out   # seeded
    out = ml_efficacy(train, test, train, "weather", sdtypes)   # categorical target with missing cells
    assert out["rows"]["train"] == train["weather"].notna().sum() and out["ratio"] == pytest.approx(1.0)


def test_ml_efficacy_unknown_target():
    train, test, sdtypes = breast_cancer()
    with pytest.raises(GankitError, match="'diagnosis'.*mean radius.*target"):
        ml_efficacy(train, test, train, "diagnosis", sdtypes)


# ---------------------------------------------------------------------------------------------
# Privacy.

def test_dcr_by_hand():
    reference = pd.DataFrame({"x": [0.0, 10.0, np.nan], "c": ["a", "b", None]})
    data = pd.DataFrame({"x": [5.0, 20.0, np.nan], "c": ["a", "b", None]})
    sdtypes = {"x": "numerical", "c": "categorical"}
    # range 10.  (5, a): to (0, a) (0.5 + 0) / 2.  (20, b): to (10, b) (min(1, 1) + 0) / 2.  (NaN, None): to itself 0
    np.testing.assert_allclose(dcr(data, reference, sdtypes), [0.25, 0.5, 0.0])
    days = pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2020-01-11"])})
    probe = pd.DataFrame({"d": pd.to_datetime(["2020-01-03", None])})
    np.testing.assert_allclose(dcr(probe, days, {"d": "datetime"}), [0.2, 1.0])


def test_privacy_of_copies_and_of_fresh_rows():
    real, sdtypes = weather()
    train, holdout = real.iloc[:600].reset_index(drop=True), real.iloc[600:1200].reset_index(drop=True)
    copied = privacy(train, holdout, train, sdtypes)
    assert copied["exact_copies"] == 1.0 and copied["score"] < 0.01   # a row or two also has a copy in the holdout
    assert copied["score"] == pytest.approx(min(2 * (1 - copied["closer_to_training"]), 1))
    assert copied["median_dcr_synthetic_train"] == 0.0 < copied["median_dcr_holdout_train"]
    fresh = real.iloc[1200:].reset_index(drop=True)
    assert privacy(train, holdout, fresh, sdtypes)["score"] > 0.8
    sub = privacy(train, holdout, train, sdtypes, seed=3, num_rows_subsample=200, num_iterations=2)
    assert sub["score"] < 0.2 and sub == privacy(train, holdout, train, sdtypes, 3, 200, 2)
    # one holdout row (no date, a dry day) repeats a training row: the exact-copy share and DCR = 0 agree
    copies = exact_copies(holdout, train, list(sdtypes))
    assert copies == np.mean(dcr(holdout, train, sdtypes) == 0) == pytest.approx(1 / 600)
