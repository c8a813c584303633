"""A table's cells as text, numbers and dates: how ``table_schema`` reads what a file or a DataFrame holds, the same
way on pandas 2 and 3 (copies where an array is written, NaT for dates outside datetime64[ns])."""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?")  # cells that mean "no value"

def texts(series: pd.Series) -> np.ndarray:
    """[N] object array: each cell as stripped text (numbers without a needless ".0"), None where missing."""
    if pd.api.types.is_bool_dtype(series.dtype):
        na = series.isna().to_numpy()
        out = np.where(series.fillna(False).to_numpy(bool), "True", "False").astype(object)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(np.float64, na_value=np.nan)
        na = np.isnan(values)
        out = np.full(len(values), None, dtype=object)
        out[~na] = number_texts(values[~na])
    else:
        na = series.isna().to_numpy()
        text = series.astype(object).where(~na, "").astype(str).str.strip()
        na = na | text.isin(MISSING).to_numpy()
        out = text.to_numpy(dtype=object, copy=True)
    out[na] = None
    return out


def number_texts(values: np.ndarray) -> np.ndarray:
    """Numbers as text: whole numbers of an all-whole column without ".0", others as Python writes them."""
    if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
        return values.astype(np.int64).astype(str).astype(object)
    return np.array([repr(float(v)) for v in values], dtype=object)


def category_order(values) -> tuple[str, ...]:
    """Distinct texts sorted: numerically when all are numbers, else as strings."""
    values = sorted(set(values))
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(np.float64)
    if len(values) and np.isfinite(numbers).all():
        return tuple(values[i] for i in np.argsort(numbers, kind="stable"))
    return tuple(values)


def parse_numbers(uniques: np.ndarray):
    """Distinct texts -> (values [U] NaN where not a finite number, decimals [U] or -1 for 1e5-style)."""
    values = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    decimals = np.zeros(len(uniques), dtype=np.int64)
    for i, text in enumerate(uniques):
        if "e" in text or "E" in text:
            decimals[i] = -1
        elif "." in text:
            decimals[i] = len(text) - text.index(".") - 1
    return values, decimals


def parse_dates(texts: pd.Series, date_format: str) -> pd.Series:
    """Texts -> datetime64[ns], NaT where a cell is not a date in ``date_format`` or lies outside datetime64[ns]'s
    range (1677-09-21 to 2262-04-11): pandas 2 cannot parse such dates, pandas 3 parses them at a coarser unit,
    which datetime64[ns] cannot hold."""
    values = pd.to_datetime(texts, format=date_format, errors="coerce")
    return values.where(values.between(pd.Timestamp.min, pd.Timestamp.max)).astype("datetime64[ns]")


def float_decimals(values: np.ndarray) -> int | None:
    """Fewest decimals that reproduce every value of a float column (None past 15)."""
    for d in range(16):
        if np.all(np.abs(np.round(values, d) - values) <= 1e-9 * np.maximum(np.abs(values), 1e-300)):
            return d
    return None
