"""Table quality as SDMetrics' single-table QualityReport (sdmetrics 0.32.0) defines it, in NumPy.

Column Shapes: per column, KSComplement = 1 - D, D the two-sample Kolmogorov-Smirnov statistic
(numerical and datetime columns; missing cells dropped; datetimes as int64 ns; values rounded to
14 decimals first), or TVComplement = 1 - 1/2 sum_k |p_fake(k) - p_real(k)| over the categories
(categorical and boolean columns; missing dropped; a category seen only in the fake column gets a
real count of 1e-6, SDMetrics' regulariser). The property is the mean over the scored columns.

Column Pair Trends: per pair, CorrelationSimilarity = 1 - |r_real - r_fake| / 2 of the Pearson r
over the rows where both cells are present (both columns numerical/datetime), else
ContingencySimilarity = 1 - 1/2 sum_cells |p_real - p_fake| of the joint frequencies (missing is a
category; a numerical/datetime column paired with a discrete one is first cut into 10 equal-width
bins by ``np.histogram_bin_edges`` and ``np.digitize``, with edges taken *from each frame's own
values*, as SDMetrics does, so a fake column's bin 3 is compared with the real column's bin 3).
Since 0.27 the report averages only the pairs whose real data show a trend: |r_real| > 0.5
(CorrelationSimilarity) or Cramér's V > 0.3 (ContingencySimilarity, V from the real table, chi²
without continuity correction); thresholds of 0 average every pair. Pairs that cannot be scored
(a constant column, fewer than 2 rows) are left out. Overall score = mean of the two properties.

One departure: SDMetrics scores a contingency pair of a table over 50,000 rows on an unseeded
50,000-row sample; here every row is used, so results are exact and repeatable at any size.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import GankitError
from .columns import ks_statistic

SDMETRICS_VERSION = "0.32.0"
CONTINUOUS = ("numerical", "datetime")   # KSComplement; CorrelationSimilarity with each other
DISCRETE = ("categorical", "boolean")    # TVComplement; ContingencySimilarity
REAL_CORRELATION_THRESHOLD = 0.5         # sdmetrics.reports.utils.DEFAULT_REAL_CORRELATION_THRESHOLD
REAL_ASSOCIATION_THRESHOLD = 0.3         # sdmetrics.reports.utils.DEFAULT_REAL_ASSOCIATION_THRESHOLD
KS_DECIMALS = 14                         # sys.float_info.dig - 1, SDMetrics' rounding before the KS test
NUM_BINS = 10                            # np.histogram_bin_edges' default, used by ColumnPairTrends
TV_REGULARISER = 1e-6                    # real count given to a category only the fake column has


def scored_columns(sdtypes: dict[str, str], tables: dict[str, pd.DataFrame]) -> list[str]:
    """The columns of ``sdtypes``, checked to have a known sdtype and to exist in every named table."""
    known = CONTINUOUS + DISCRETE
    for name, sdtype in sdtypes.items():
        if sdtype not in known:
            raise GankitError(f"column {name!r} has sdtype {sdtype!r}; expected one of {', '.join(known)}")
        for label, frame in tables.items():
            if name not in frame.columns:
                raise GankitError(f"column {name!r} is missing from the {label} table; it has "
                                  f"{', '.join(map(str, frame.columns))}")
    return list(sdtypes)


# ---------------------------------------------------------------------------------------------
# Column encodings shared by the metrics.

def numeric_values(column: pd.Series, sdtype: str) -> np.ndarray:
    """float64 values with NaN for missing; datetimes as nanoseconds since the epoch."""
    if sdtype == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(column):
            raise GankitError(f"column {column.name!r} is a datetime column but holds {column.dtype}; "
                              "expected datetime64 values (NaT for missing)")
        values = datetime_ns(column).astype(np.float64)
        values[column.isna().to_numpy()] = np.nan
        return values
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise GankitError(f"column {column.name!r} is a numerical column but holds {column.dtype}; "
                          "expected float64 values (NaN for missing)")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def datetime_ns(column: pd.Series) -> np.ndarray:
    """int64 nanoseconds (NaT as the int64 minimum: mask with ``column.isna()``)."""
    if getattr(column.dt, "tz", None) is not None:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    return column.astype("datetime64[ns]").to_numpy().view(np.int64)


def joint_codes(real: pd.Series, fake: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Category codes shared by both frames; missing is the last code. Returns (real, fake, n_codes)."""
    codes, uniques = pd.factorize(pd.concat([real, fake], ignore_index=True), use_na_sentinel=True)
    missing = len(uniques)
    codes = np.where(codes < 0, missing, codes)
    return codes[:len(real)], codes[len(real):], missing + 1


def digitize(values: np.ndarray) -> np.ndarray:
    """Bin index 0..NUM_BINS+1 from this frame's own equal-width edges (SDMetrics' ``_discretize_column``).

    ``np.digitize`` puts a column's maximum and its missing cells (NaN) both in bin NUM_BINS + 1.
    """
    edges = np.histogram_bin_edges(values[~np.isnan(values)], bins=NUM_BINS)
    return np.digitize(values, edges)


# ---------------------------------------------------------------------------------------------
# The four metrics.

def ks_complement(real: pd.Series, fake: pd.Series) -> float:
    """1 - D of the two-sample KS test on the present cells; NaN when either side has none."""
    r, f = real.dropna(), fake.dropna()
    if pd.api.types.is_datetime64_any_dtype(r):
        r, f = datetime_ns(r), datetime_ns(f)   # integers: exact, no rounding needed
    else:
        r = np.round(r.to_numpy(dtype=np.float64), KS_DECIMALS)
        f = np.round(f.to_numpy(dtype=np.float64), KS_DECIMALS)
    if len(r) == 0 or len(f) == 0:
        return math.nan
    return 1.0 - ks_statistic(r, f)


def tv_complement(real: pd.Series, fake: pd.Series) -> float:
    """1 - 1/2 sum_k |p_fake(k) - p_real(k)| over the present cells' categories; NaN when a side has none."""
    r, f, k = joint_codes(real.dropna(), fake.dropna())
    if len(r) == 0 or len(f) == 0:
        return math.nan
    count_r = np.bincount(r, minlength=k).astype(np.float64)
    count_f = np.bincount(f, minlength=k).astype(np.float64)
    count_r[(count_r == 0) & (count_f > 0)] += TV_REGULARISER
    p_r, p_f = count_r / count_r.sum(), count_f / count_f.sum()
    return 1.0 - 0.5 * float(np.abs(p_f - p_r).sum())


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r as ``scipy.stats.pearsonr`` computes it; NaN for a constant input. Needs 2+ rows."""
    if len(x) < 2:
        raise ValueError("fewer than 2 rows where both cells are present")
    if (x == x[0]).all() or (y == y[0]).all():
        return math.nan
    xm, ym = x - x.mean(), y - y.mean()
    xmax, ymax = np.abs(xm).max(), np.abs(ym).max()
    xm = xm / (xmax * np.linalg.norm(xm / xmax))
    ym = ym / (ymax * np.linalg.norm(ym / ymax))
    return float(np.clip(xm @ ym, -1.0, 1.0))


def correlation_similarity(real_a: np.ndarray, real_b: np.ndarray, fake_a: np.ndarray, fake_b: np.ndarray,
                           real_correlation_threshold: float = 0.0) -> dict:
    """{score, real, synthetic}: 1 - |r_real - r_fake| / 2; score NaN when |r_real| <= the threshold.

    Raises ValueError for a constant column (before dropping missing cells, as SDMetrics) or when
    fewer than 2 rows have both cells.
    """
    for label, column in (("real", real_a), ("real", real_b), ("synthetic", fake_a), ("synthetic", fake_b)):
        present = column[~np.isnan(column)]
        if len(present) and (present == present[0]).all():
            raise ValueError(f"the {label} data holds a constant column; correlation is undefined")
    both = ~np.isnan(real_a) & ~np.isnan(real_b)
    r_real = pearson(real_a[both], real_b[both])
    if abs(r_real) <= real_correlation_threshold:   # False for NaN, as in SDMetrics
        return {"score": math.nan, "real": r_real, "synthetic": math.nan}
    both = ~np.isnan(fake_a) & ~np.isnan(fake_b)
    r_fake = pearson(fake_a[both], fake_b[both])
    score = 1.0 - abs(r_real - r_fake) / 2 if not (math.isnan(r_real) or math.isnan(r_fake)) else math.nan
    return {"score": score, "real": r_real, "synthetic": r_fake}


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V = sqrt(chi² / (n (min(r, c) - 1))) of the present rows/columns; NaN below 2 x 2."""
    table = table[table.sum(1) > 0][:, table.sum(0) > 0].astype(np.float64)
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return math.nan
    expected = np.outer(table.sum(1), table.sum(0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.sqrt(chi2 / n / (min(table.shape) - 1))


def contingency_similarity(real_a: np.ndarray, real_b: np.ndarray, fake_a: np.ndarray, fake_b: np.ndarray,
                           n_a: int, n_b: int, real_association_threshold: float = 0.0) -> dict:
    """{score, real_association}: 1 - 1/2 sum_cells |p_real - p_fake| of two code columns each.

    Codes lie in [0, n_a) and [0, n_b) and mean the same thing in both frames. With a threshold > 0,
    the score is NaN when the real Cramér's V is at most the threshold (or undefined).
    """
    count_r = np.bincount(real_a * n_b + real_b, minlength=n_a * n_b)
    association = cramers_v(count_r.reshape(n_a, n_b))
    if real_association_threshold > 0 and not association > real_association_threshold:
        return {"score": math.nan, "real_association": association}
    count_f = np.bincount(fake_a * n_b + fake_b, minlength=n_a * n_b)
    tv = 0.5 * float(np.abs(count_r / len(real_a) - count_f / len(fake_a)).sum())
    return {"score": 1.0 - tv, "real_association": association}


# ---------------------------------------------------------------------------------------------
# The report.

@dataclass
class _Prepared:
    """One column of both frames, encoded once for every pair it is in."""
    sdtype: str
    real: np.ndarray              # continuous: float64 with NaN; discrete: codes
    fake: np.ndarray
    n_codes: int = 0              # discrete: number of codes
    real_bins: np.ndarray | None = None   # continuous: own-edge bin index, for pairs with a discrete column
    fake_bins: np.ndarray | None = None
    bin_error: str | None = None


def _prepare(real: pd.Series, fake: pd.Series, sdtype: str) -> _Prepared:
    if sdtype in DISCRETE:
        r, f, k = joint_codes(real, fake)
        return _Prepared(sdtype, r, f, n_codes=k)
    prepared = _Prepared(sdtype, numeric_values(real, sdtype), numeric_values(fake, sdtype))
    try:
        prepared.real_bins, prepared.fake_bins = digitize(prepared.real), digitize(prepared.fake)
    except ValueError as error:  # e.g. an infinite value: no finite edges
        prepared.bin_error = f"ValueError: {error}"
    return prepared


def _pair(a: _Prepared, b: _Prepared, correlation_threshold: float, association_threshold: float) -> dict:
    """One row of the pair details; failures become a NaN score with the error, as in SDMetrics."""
    out = {"metric": "CorrelationSimilarity" if a.sdtype in CONTINUOUS and b.sdtype in CONTINUOUS
           else "ContingencySimilarity", "score": math.nan, "real_correlation": math.nan,
           "synthetic_correlation": math.nan, "real_association": math.nan, "meets_threshold": False,
           "error": None}
    try:
        if out["metric"] == "CorrelationSimilarity":
            got = correlation_similarity(a.real, b.real, a.fake, b.fake, correlation_threshold)
            out.update(score=got["score"], real_correlation=got["real"], synthetic_correlation=got["synthetic"])
            out["meets_threshold"] = correlation_threshold <= 0 or abs(got["real"]) > correlation_threshold
        else:
            codes = []
            for side in (a, b):
                if side.sdtype in DISCRETE:
                    codes.append((side.real, side.fake, side.n_codes))
                elif side.bin_error:
                    raise ValueError(side.bin_error)
                else:
                    codes.append((side.real_bins, side.fake_bins, NUM_BINS + 2))
            (ra, fa, na), (rb, fb, nb) = codes
            got = contingency_similarity(ra, rb, fa, fb, na, nb, association_threshold)
            out.update(score=got["score"], real_association=got["real_association"])
            out["meets_threshold"] = association_threshold <= 0 or got["real_association"] > association_threshold
    except ValueError as error:
        out["error"] = f"ValueError: {error}"
        out["meets_threshold"] = False
    return out


def _mean(scores: list[float]) -> float:
    kept = [s for s in scores if not math.isnan(s)]
    return float(np.mean(kept)) if kept else math.nan


def _json(value):
    """NaN -> None, NumPy scalars -> Python, so the report is strict JSON."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def quality_report(real: pd.DataFrame, fake: pd.DataFrame, sdtypes: dict[str, str],
                   real_correlation_threshold: float = REAL_CORRELATION_THRESHOLD,
                   real_association_threshold: float = REAL_ASSOCIATION_THRESHOLD) -> dict:
    """SDMetrics' single-table QualityReport: Column Shapes, Column Pair Trends and their mean.

    ``sdtypes`` maps each scored column to "numerical" | "categorical" | "boolean" | "datetime";
    other columns of the frames are ignored. Returns {"score", "column_shapes", "column_pair_trends",
    "columns": [...], "pairs": [...], "how", "seconds"}; scores that cannot be computed are None.
    Example: ``quality_report(real, fake, {"age": "numerical", "sex": "categorical"})["score"]``.
    """
    start = time.perf_counter()
    names = scored_columns(sdtypes, {"real": real, "synthetic": fake})
    prepared = {name: _prepare(real[name], fake[name], sdtypes[name]) for name in names}  # checks dtypes
    columns = []
    for name in names:
        continuous = sdtypes[name] in CONTINUOUS
        score = (ks_complement if continuous else tv_complement)(real[name], fake[name])
        columns.append({"column": name, "metric": "KSComplement" if continuous else "TVComplement",
                        "score": score, "error": None if not math.isnan(score) else "no values to compare"})
    pairs = []
    for first, second in itertools.combinations(names, 2):
        row = _pair(prepared[first], prepared[second], real_correlation_threshold, real_association_threshold)
        pairs.append({"column_1": first, "column_2": second, **row})
    shapes = _mean([c["score"] for c in columns])
    trends = _mean([p["score"] for p in pairs if p["meets_threshold"]])
    overall = _mean([shapes, trends])
    how = {"follows": f"SDMetrics {SDMETRICS_VERSION} single-table QualityReport",
           "real_correlation_threshold": real_correlation_threshold,
           "real_association_threshold": real_association_threshold,
           "correlation": "Pearson", "contingency_bins": NUM_BINS,
           "subsample": "none (SDMetrics draws 50,000 unseeded rows for ContingencySimilarity on larger tables)"}
    return _json({"score": overall, "column_shapes": shapes, "column_pair_trends": trends,
                  "columns": columns, "pairs": pairs, "how": how,
                  "seconds": time.perf_counter() - start})
