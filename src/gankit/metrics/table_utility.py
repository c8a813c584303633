"""What synthetic rows are good for, and what they give away: ML efficacy and DCR privacy.

ML efficacy ("train on synthetic, test on real", TSTR, as in Xu et al. 2019, CTGAN): one
scikit-learn HistGradientBoosting model is fitted on the synthetic rows and another on the real
training rows; both predict the held-out real rows. Accuracy and macro F1 for a categorical or
boolean target, R² for a numerical or datetime one; ``ratio`` = synthetic / real of the headline
metric (macro F1, or R²).

Privacy follows SDMetrics' (0.32.0) DCROverfittingProtection. The distance between two rows is
the mean over columns of a per-column distance in [0, 1]: numerical/datetime
min(|a - b| / range, 1), range = max - min of the *reference* table's column (0 / 1 for equal /
different values when the range is 0); categorical/boolean 0 when equal, else 1; in every column,
missing vs present is 1 and missing vs missing is 0. DCR(row) = the distance to the closest
reference row. With p = the share of synthetic rows strictly closer to the training rows than to
the holdout rows, score = min(2 (1 - p), 1): 1 when the synthetic rows are no closer to the rows
the generator saw than to rows it never saw.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import GankitError
from .tables import CONTINUOUS, DISCRETE, numeric_values, scored_columns

MAX_NATIVE_CATEGORIES = 255   # HistGradientBoosting's max_bins: more categories go in as plain ordinal codes
CHUNK_ELEMENTS = 1 << 17      # rows x reference rows per distance block: 1 MB of float64 stays in cache
MAX_ONE_HOT = 256             # categorical columns with more codes are compared directly, not by one-hot


# ---------------------------------------------------------------------------------------------
# ML efficacy.

def _encode(frames: list[pd.DataFrame], columns: list[str], sdtypes: dict[str, str]):
    """One float matrix per frame, categories coded alike in all of them; and the categorical mask."""
    blocks, categorical = [[] for _ in frames], []
    for name in columns:
        if sdtypes[name] in DISCRETE:
            values = pd.concat([f[name] for f in frames], ignore_index=True)
            uniques = sorted(values.dropna().astype(str).unique())
            lookup = {value: float(i) for i, value in enumerate(uniques)}
            for block, frame in zip(blocks, frames):
                text = frame[name].astype(str).where(frame[name].notna())
                block.append(text.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan))
            categorical.append(len(uniques) <= MAX_NATIVE_CATEGORIES)
        else:
            for block, frame in zip(blocks, frames):
                block.append(_numbers(frame[name], sdtypes[name]))
            categorical.append(False)
    matrices = [np.stack(b, axis=1) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, frames)]
    return matrices, np.array(categorical, dtype=bool)


def _numbers(column: pd.Series, sdtype: str) -> np.ndarray:
    """float64 with NaN; datetimes as seconds since the epoch (SDMetrics' DCR works in seconds)."""
    values = numeric_values(column, sdtype)
    return values / 1e9 if sdtype == "datetime" else values


def _fit_score(x_train, y_train, x_test, y_test, classify: bool, categorical: np.ndarray, seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    kind = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    mask = categorical if categorical.any() else None
    model = kind(categorical_features=mask, random_state=seed).fit(x_train, y_train)
    predicted = model.predict(x_test)
    if classify:
        return {"accuracy": float(accuracy_score(y_test, predicted)),
                "f1_macro": float(f1_score(y_test, predicted, average="macro"))}
    return {"r2": float(r2_score(y_test, predicted))}


def ml_efficacy(train_real: pd.DataFrame, test_real: pd.DataFrame, fake: pd.DataFrame, target: str,
                sdtypes: dict[str, str], seed: int = 0) -> dict:
    """Train on synthetic vs train on real, both tested on held-out real rows.

    Every other column of ``sdtypes`` is a feature; rows whose target is missing are dropped.
    Returns {"target", "task", "metric", "real": {...}, "synthetic": {...}, "ratio", "rows"}.
    Example: ``ml_efficacy(train, test, fake, "weather", sdtypes)["ratio"]``.
    """
    if target not in sdtypes:
        raise GankitError(f"target column {target!r} is not among the scored columns: {', '.join(sdtypes)}")
    scored_columns(sdtypes, {"training": train_real, "test": test_real, "synthetic": fake})
    classify = sdtypes[target] in DISCRETE
    frames = [f[f[target].notna()] for f in (train_real, test_real, fake)]
    if any(len(f) == 0 for f in frames):
        raise GankitError(f"target column {target!r} has no present values in one of the tables "
                          f"(rows with a target: train {len(frames[0])}, test {len(frames[1])}, "
                          f"synthetic {len(frames[2])})")
    features = [c for c in sdtypes if c != target]
    (x_train, x_test, x_fake), categorical = _encode(frames, features, sdtypes)
    if classify:
        y_train, y_test, y_fake = (f[target].astype(str).to_numpy() for f in frames)
    else:
        y_train, y_test, y_fake = (_numbers(f[target], sdtypes[target]) for f in frames)
    real = _fit_score(x_train, y_train, x_test, y_test, classify, categorical, seed)
    synthetic = _fit_score(x_fake, y_fake, x_test, y_test, classify, categorical, seed)
    metric = "f1_macro" if classify else "r2"
    ratio = synthetic[metric] / real[metric] if real[metric] > 0 else None
    return {"target": target, "task": "classification" if classify else "regression", "metric": metric,
            "real": real, "synthetic": synthetic, "ratio": ratio,
            "rows": {"train": len(frames[0]), "test": len(frames[1]), "synthetic": len(frames[2])}}


# ---------------------------------------------------------------------------------------------
# Distance to closest record.

def _numeric_part(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """(data, reference, span, clamp) for one numerical/datetime column.

    Missing cells become one sentinel far below every value, so that missing vs present clamps to
    1 and missing vs missing is 0 while present cells keep SDMetrics' exact arithmetic.
    ``span`` is 0 when the reference range is 0 or undefined (then the distance is 0/1: equal or not).
    """
    present_b = b[~np.isnan(b)]
    span = float(present_b.max() - present_b.min()) if len(present_b) else 0.0
    both = np.concatenate([a, b])
    present = both[~np.isnan(both)]
    low = float(present.min()) if len(present) else 0.0
    sentinel = low - 8.0 * max(span, abs(low) * 1e-6, 1.0)
    clamp = bool(np.isnan(a).any() or np.isnan(b).any())
    if span > 0:   # a row inside the reference range is never more than one range away
        clamp = clamp or bool((a < present_b.min()).any() or (a > present_b.max()).any())
    return np.where(np.isnan(a), sentinel, a), np.where(np.isnan(b), sentinel, b), span, clamp


def _categorical_part(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes shared by both tables, missing being one more code (equal to itself); and their number."""
    codes, uniques = pd.factorize(pd.concat([a, b], ignore_index=True), use_na_sentinel=False)
    return codes[:len(a)], codes[len(a):], len(uniques)


def dcr(data: pd.DataFrame, reference: pd.DataFrame, sdtypes: dict[str, str]) -> np.ndarray:
    """[len(data)] distance of each row of ``data`` to its closest row of ``reference`` (SDMetrics' DCR).

    Categorical columns count mismatches with one matrix product of one-hot codes; numerical ones
    run column by column over cache-sized blocks of rows x reference rows. Single-threaded: on a
    shared machine, threads waiting on each other made the many small kernels 3-100x slower.
    """
    from threadpoolctl import threadpool_limits   # scikit-learn's dependency

    numeric, hot_a, hot_b, compared = [], [], [], []
    for name, sdtype in sdtypes.items():
        if sdtype in CONTINUOUS:
            numeric.append(_numeric_part(_numbers(data[name], sdtype), _numbers(reference[name], sdtype)))
            continue
        ca, cb, k = _categorical_part(data[name], reference[name])
        if k <= MAX_ONE_HOT:
            hot_a.append(np.eye(k, dtype=np.float32)[ca])   # [N, K]
            hot_b.append(np.eye(k, dtype=np.float32)[cb])   # [M, K]
        else:
            compared.append((ca, cb))
    hot = None
    if hot_a:   # (data one-hots [N, K], reference one-hots transposed [K, M], number of such columns)
        hot = np.concatenate(hot_a, 1), np.ascontiguousarray(np.concatenate(hot_b, 1).T), len(hot_a)
    with threadpool_limits(limits=1, user_api="blas"):
        return _closest(hot, compared, numeric, len(data), len(reference)) / len(sdtypes)


def _closest(hot, compared, numeric, n: int, m: int) -> np.ndarray:
    """[n] smallest sum of column distances from each data row to the m reference rows."""
    step = max(1, CHUNK_ELEMENTS // max(m, 1))
    best = np.empty(n)
    total, buffer = np.empty((min(step, n), m)), np.empty((min(step, n), m))
    for start in range(0, n, step):
        stop = min(n, start + step)
        t, buf = total[:stop - start], buffer[:stop - start]                       # [B, M]
        if hot is not None:   # mismatches = columns - matches; small integers, exact in float32
            np.subtract(hot[2], hot[0][start:stop] @ hot[1], out=t)
        else:
            t.fill(0.0)
        for ca, cb in compared:
            t += ca[start:stop, None] != cb[None, :]
        for a, b, span, clamp in numeric:
            np.subtract(a[start:stop, None], b[None, :], out=buf)
            np.abs(buf, out=buf)
            if span == 0:
                t += buf > 0
                continue
            np.divide(buf, span, out=buf)
            if clamp:
                np.minimum(buf, 1.0, out=buf)
            t += buf
        best[start:stop] = t.min(axis=1)
    return best


def exact_copies(fake: pd.DataFrame, train_real: pd.DataFrame, columns: list[str]) -> float:
    """Share of synthetic rows equal, in every column (missing equal to missing), to some training row."""
    if len(fake) == 0:
        return math.nan
    both = pd.concat([train_real[columns], fake[columns]], ignore_index=True)
    codes = np.stack([pd.factorize(both[c], use_na_sentinel=False)[0] for c in columns], axis=1)
    _, rows = np.unique(codes, axis=0, return_inverse=True)
    rows = rows.reshape(-1)
    return float(np.isin(rows[len(train_real):], rows[:len(train_real)]).mean())


def privacy(train_real: pd.DataFrame, holdout_real: pd.DataFrame, fake: pd.DataFrame, sdtypes: dict[str, str],
            seed: int = 0, num_rows_subsample: int | None = None, num_iterations: int = 1) -> dict:
    """SDMetrics' DCROverfittingProtection, the median DCRs, and the share of exact copies of training rows.

    ``num_rows_subsample`` (SDMetrics' option, default off) draws that many rows from each table,
    seeded, ``num_iterations`` times and averages; it is ignored when above the synthetic row count.
    Returns {"score", "closer_to_training", "closer_to_holdout", "median_dcr_synthetic_train",
    "median_dcr_holdout_train", "exact_copies", "how"}.
    """
    names = scored_columns(sdtypes, {"training": train_real, "holdout": holdout_real, "synthetic": fake})
    if not names:
        raise GankitError("privacy needs at least one scored column; sdtypes is empty")
    for label, frame in (("training", train_real), ("holdout", holdout_real), ("synthetic", fake)):
        if len(frame) == 0:
            raise GankitError(f"the {label} table has no rows; privacy needs rows in all three tables")
    if num_rows_subsample is not None and num_rows_subsample > len(fake):
        num_rows_subsample, num_iterations = None, 1
    rng = np.random.default_rng(seed)
    closer, medians_fake, medians_holdout = [], [], []
    for _ in range(num_iterations if num_rows_subsample else 1):
        f, t, h = fake, train_real, holdout_real
        if num_rows_subsample:
            f, t, h = (x.iloc[rng.choice(len(x), min(num_rows_subsample, len(x)), replace=False)]
                       for x in (fake, train_real, holdout_real))
        to_train, to_holdout = dcr(f, t, sdtypes), dcr(f, h, sdtypes)
        closer.append(float((to_train < to_holdout).mean()))
        medians_fake.append(float(np.median(to_train)))
        medians_holdout.append(float(np.median(dcr(h, t, sdtypes))))
    scores = [min(2.0 * (1.0 - p), 1.0) for p in closer]
    note = ""
    if len(holdout_real) < 0.5 * len(train_real):   # SDMetrics warns here too
        note = (f"the holdout has {len(holdout_real)} rows, the training table {len(train_real)}: with fewer "
                "reference rows every DCR to the holdout is larger, so the score is pessimistic; "
                "use a holdout as large as the training table or num_rows_subsample")
    return {"score": float(np.mean(scores)), "closer_to_training": float(np.mean(closer)),
            "closer_to_holdout": 1.0 - float(np.mean(closer)),
            "median_dcr_synthetic_train": float(np.mean(medians_fake)),
            "median_dcr_holdout_train": float(np.mean(medians_holdout)),
            "exact_copies": exact_copies(fake, train_real, names),
            "how": {"follows": "SDMetrics 0.32.0 DCROverfittingProtection",
                    "num_rows_subsample": num_rows_subsample, "num_iterations": num_iterations, "seed": seed,
                    "note": note}}
