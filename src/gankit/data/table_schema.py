"""What each column of a table is (continuous, integer, categorical, boolean, datetime; constant, id, empty).

Detection reads a frame of text (``table_io.read_csv_table``) or a user's typed DataFrame and names a kind
per column with the reason in ``note``; ``[data.columns]`` overrides it. A column that is neither one kind
nor another (numbers with a few words, dates with a few typos) is an error naming the cell, never coerced.
``typed_frame`` then parses the written columns to their kind, for the transformer and the metrics.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import GankitError
from .table_cells import category_order, float_decimals, number_texts, parse_dates, parse_numbers, texts

MODELLED = ("continuous", "integer", "categorical", "boolean", "datetime")
KINDS = MODELLED + ("constant", "id", "empty")
SETTABLE = MODELLED + ("id",)  # what [data.columns] may set; "id" leaves a column out
SDTYPES = {"continuous": "numerical", "integer": "numerical", "categorical": "categorical",
           "boolean": "boolean", "datetime": "datetime", "constant": "categorical"}
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d",
                "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y")  # the first that parses every cell wins
BOOLEANS = ({"true", "false"}, {"yes", "no"})  # case-insensitive
MAX_INTEGER_CATEGORIES = 10  # integers with at most this many distinct values (and < half the rows) are categories


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    missing: float = 0.0  # share of missing cells
    categories: tuple[str, ...] = ()  # categorical/boolean: distinct values as text, sorted; constant: (value,)
    date_format: str = ""  # datetime: strftime format reproducing the file's text
    decimals: int | None = None  # continuous: most decimals the file shows (samples are rounded to it)
    note: str = ""  # why this kind


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[ColumnSpec, ...]  # in the file's order
    source: str = ""  # the file, or "dataframe"

    def modelled(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind in MODELLED]

    def written(self) -> list[ColumnSpec]:
        """What samples hold: the modelled columns and the constants, in file order."""
        return [c for c in self.columns if c.kind in MODELLED or c.kind == "constant"]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise GankitError(f"unknown column {name!r}; columns are {', '.join(c.name for c in self.columns)}")

    def sdtypes(self) -> dict[str, str]:
        """Written columns -> SDMetrics sdtype."""
        return {c.name: SDTYPES[c.kind] for c in self.written()}

    def to_json(self) -> dict:
        return {"source": self.source, "columns": [dict(asdict(c), categories=list(c.categories))
                                                   for c in self.columns]}

    @classmethod
    def from_json(cls, d: dict) -> TableSchema:
        columns = tuple(ColumnSpec(**dict(c, categories=tuple(c.get("categories", ())))) for c in d["columns"])
        return cls(columns=columns, source=d.get("source", ""))

    def summary(self) -> str:
        """One line per column: name, kind, missing share, why."""
        width = max((len(c.name) for c in self.columns), default=0)
        lines = []
        for c in self.columns:
            missing = f"{c.missing:6.1%} missing" if c.missing else " " * 14
            lines.append(f"{c.name:<{width}}  {c.kind:<11} {missing}  {c.note}".rstrip())
        return "\n".join(lines)


def warn(message: str) -> None:
    """A warning the user should see once: one ``gankit: warning:`` line on stderr."""
    print(f"gankit: warning: {message}", file=sys.stderr)


def detect_schema(frame: pd.DataFrame, overrides: Mapping[str, str] = {}, source: str = "") -> TableSchema:
    """Each column's kind, from its cells (or from ``overrides``, the config's [data.columns])."""
    overrides = getattr(overrides, "columns", overrides)  # a DataConfig passes its [data.columns]
    source = source or frame.attrs.get("source", "") or "dataframe"
    prefix = "" if source == "dataframe" else f"{source}: "
    names = [str(c) for c in frame.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GankitError(f"{prefix}names column{'s' if len(twice) > 1 else ''} {', '.join(map(repr, twice))} more "
                          f"than once; expected unique column names")
    for name, kind in overrides.items():
        if name not in names:
            raise GankitError(f"{prefix}[data.columns] {name} = {kind!r}: no such column; columns are "
                              f"{', '.join(names)}")
        if kind not in SETTABLE:
            raise GankitError(f"{prefix}[data.columns] {name} = {kind!r}: unknown kind; expected one of "
                              f"{', '.join(SETTABLE)}")
    if not len(frame.columns):
        raise GankitError(f"{prefix}has no columns; expected a table with a header row")
    if not len(frame):
        raise GankitError(f"{prefix}has a header but no rows")
    where = _locator(frame, source)
    columns = []
    for j, name in enumerate(names):
        spec = _column(name, frame.iloc[:, j], overrides.get(name), where, prefix)
        columns.append(spec)
        if spec.kind in ("constant", "empty", "id") and spec.note != "set in config: left out":
            warn(f"{prefix}column {name!r}: {spec.note}")
    return TableSchema(columns=tuple(columns), source=source)


def typed_frame(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The written columns parsed to their kind: continuous/integer float64 (NaN missing), datetime
    datetime64[ns] (NaT missing), categorical/boolean/constant object of str (None missing)."""
    names = {str(c): j for j, c in enumerate(frame.columns)}
    where = _locator(frame, schema.source)
    prefix = "" if schema.source in ("", "dataframe") else f"{schema.source}: "
    out = {}
    for spec in schema.written():
        if spec.name not in names:
            raise GankitError(f"{prefix}column {spec.name!r} of the schema is missing; columns are "
                              f"{', '.join(names)}")
        series = frame.iloc[:, names[spec.name]]
        numeric = spec.kind in ("continuous", "integer", "datetime")
        out[spec.name] = _parsed(series, spec, where, prefix) if numeric else texts(series)
    return frame_of(out, len(frame))


def frame_of(columns: Mapping[str, np.ndarray], n: int) -> pd.DataFrame:
    """A DataFrame of [N] arrays with their dtypes kept: text columns stay object with None for missing
    (pandas 3 would infer its str dtype from them, with NaN for missing)."""
    return pd.DataFrame({name: pd.Series(values, dtype=object) if values.dtype == object else values
                         for name, values in columns.items()}, index=pd.RangeIndex(n))


def _parsed(series, spec, where, prefix) -> np.ndarray:
    """[N] float64 (NaN missing) or datetime64[ns] (NaT missing); a cell that does not parse is an error."""
    dates = spec.kind == "datetime"
    if dates and pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.to_numpy("datetime64[ns]")
    if not dates and pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(series.dtype,
                                                                                      pd.CategoricalDtype):
        return series.to_numpy(np.float64, na_value=np.nan)
    text = texts(series)
    rows = np.flatnonzero(~pd.isna(text))
    codes, uniques = pd.factorize(text[rows])
    if dates:
        values = parse_dates(pd.Series(uniques, dtype=object), spec.date_format)
        values, out = values.to_numpy("datetime64[ns]"), np.full(len(text), np.datetime64("NaT"), "datetime64[ns]")
    else:
        values, out = parse_numbers(np.asarray(uniques, dtype=object))[0], np.full(len(text), np.nan)
    bad = pd.isna(values)
    if bad.any():
        row = rows[np.flatnonzero(bad[codes])[0]]
        raise GankitError(f"{prefix}column {spec.name!r}: {text[row]!r} {where(row)} is not "
                          f"{'a date ' + spec.date_format if dates else 'a number'}; expected {spec.kind} values")
    out[rows] = values[codes]
    return out


def _locator(frame: pd.DataFrame, source: str):
    """row index -> "on line 14" (a CSV: its real line numbers, else row + 2) or "in row 12" (a DataFrame)."""
    lines = frame.attrs.get("lines")
    if lines is not None:
        return lambda i: f"on line {lines[i]}"
    if any(str(s).lower().endswith(".csv") for s in (source, frame.attrs.get("source", ""))):
        return lambda i: f"on line {i + 2}"
    return lambda i: f"in row {frame.index[i]!r}"


# ---- detection


@dataclass
class _Cells:
    """One column's cells, as detection sees them, and how to name one in a message."""

    name: str
    n: int
    missing: np.ndarray  # [N] bool
    codes: np.ndarray  # [M] index into uniques of each present cell, in row order
    uniques: np.ndarray  # [U] distinct values: texts (text, category), float64 (number, bool), datetime64
    rows: np.ndarray  # [M] row index of each present cell
    typed: str  # "text", "number", "bool", "datetime", "category"
    where: object  # row -> "on line 14"
    prefix: str  # "data.csv: " or ""

    def count(self, mask: np.ndarray) -> int:
        """Present cells whose distinct value is flagged in ``mask`` [U]."""
        return int(np.bincount(self.codes, minlength=len(self.uniques))[mask].sum())

    def refuse(self, mask: np.ndarray | None, what: str) -> GankitError:
        """The error naming the first present cell whose distinct value is flagged in ``mask`` [U] (None: any)."""
        at = 0 if mask is None else int(np.flatnonzero(mask[self.codes])[0])
        value = self.uniques[self.codes[at]]
        shown = repr(value) if isinstance(value, str) else str(value)
        return GankitError(f"{self.prefix}column {self.name!r}: {shown} {self.where(int(self.rows[at]))} {what}")


def _cells(series: pd.Series, name: str, where, prefix: str) -> _Cells:
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        raise GankitError(f"{prefix}column {name!r} holds times with a time zone; convert them first, e.g. "
                          f"frame[{name!r}] = frame[{name!r}].dt.tz_convert(None)")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        kind, values = "datetime", series.to_numpy("datetime64[ns]")
        missing = np.isnat(values)
    elif pd.api.types.is_bool_dtype(dtype) or (pd.api.types.is_numeric_dtype(dtype)
                                                and not isinstance(dtype, pd.CategoricalDtype)):
        kind = "bool" if pd.api.types.is_bool_dtype(dtype) else "number"
        values = series.to_numpy(np.float64, na_value=np.nan)
        missing = np.isnan(values)
    else:
        kind = "category" if isinstance(dtype, pd.CategoricalDtype) else "text"
        values = texts(series)
        missing = pd.isna(values)
    rows = np.flatnonzero(~missing)
    codes, uniques = pd.factorize(values[rows])
    return _Cells(name, len(series), missing, codes.astype(np.int64), np.asarray(uniques), rows, kind, where, prefix)


def _column(name, series, override, where, prefix) -> ColumnSpec:
    cells = _cells(series, name, where, prefix)
    base = {"name": name, "missing": float(cells.missing.mean())}
    if override == "id":
        return ColumnSpec(kind="id", note="set in config: left out", **base)
    if not len(cells.rows):
        return ColumnSpec(kind="empty", note="every cell is missing: left out", **base)
    if override:
        return _overridden(cells, override, base)
    if len(cells.uniques) == 1:
        value = _value_texts(cells)[0]
        return ColumnSpec(kind="constant", categories=(value,), **base,
                          note=f"holds one value ({value!r}): kept as a constant, not modelled")
    if len(cells.uniques) == cells.n and (name.lower() == "id" or name.lower().endswith("_id")):
        return ColumnSpec(kind="id", note="named as an id, unique per row: left out", **base)
    if cells.typed == "datetime":
        date_format = _typed_date_format(cells.uniques)
        return ColumnSpec(kind="datetime", date_format=date_format, **base, note=f"dates {date_format}")
    if cells.typed == "bool":
        return ColumnSpec(kind="boolean", categories=category_order(_value_texts(cells)), **base, note="true/false")
    if cells.typed == "category":
        values = category_order(_value_texts(cells))
        return ColumnSpec(kind="categorical", categories=values, **base, note=f"{len(values)} categories")
    if cells.typed == "number":
        return _numeric(cells, cells.uniques, float_decimals(cells.uniques), base)
    return _text(cells, base)


def _numeric(cells, values, decimals, base) -> ColumnSpec:
    """A column of numbers: continuous, integer, categorical (few integers) or a row index (id)."""
    distinct = len(values)
    if decimals != 0:
        return ColumnSpec(kind="continuous", decimals=decimals, **base, note="numbers with decimals")
    if distinct <= MAX_INTEGER_CATEGORIES and distinct < len(cells.rows) / 2:
        return ColumnSpec(kind="categorical", categories=category_order(_value_texts(cells)), **base,
                          note=f"{distinct} distinct integers")
    if distinct == cells.n and values.max() - values.min() == cells.n - 1:
        return ColumnSpec(kind="id", **base, note="consecutive integers unique per row (a row index): left out")
    return ColumnSpec(kind="integer", **base, note=f"{distinct} distinct integers")


def _text(cells, base) -> ColumnSpec:
    """A column of text: numbers written as text, booleans, dates, an id, or categories."""
    name, uniques = cells.name, cells.uniques
    values, decimals = parse_numbers(uniques)
    is_number = ~np.isnan(values)
    zeros = [u for u, d in zip(uniques, decimals) if d == 0 and len(u.lstrip("+-")) > 1 and u.lstrip("+-")[0] == "0"]
    if is_number.all() and not zeros:
        return _numeric(cells, values, None if (decimals < 0).any() else int(decimals.max()), base)
    zeros = zeros if is_number.all() else []  # zip codes ("02134") stay text; dates ("01/02/2020") are not numbers
    numbers, present = cells.count(is_number), len(cells.rows)
    if numbers > present / 2 and not zeros:
        raise cells.refuse(~is_number, f"is text among numbers ({present - numbers} of {cells.n} cells); set "
                                       f"[data.columns] {name} = \"categorical\" to keep them as categories, or "
                                       f"fix the cells")
    lower = {u.lower() for u in uniques}
    if any(lower <= pair for pair in BOOLEANS):
        return ColumnSpec(kind="boolean", categories=category_order(uniques), **base, note="true/false text")
    date_format = "" if zeros else _date_format(cells, required=False)
    if date_format:
        return ColumnSpec(kind="datetime", date_format=date_format, **base, note=f"dates {date_format}")
    if len(uniques) == cells.n:
        return ColumnSpec(kind="id", **base, note="text unique per row: left out")
    why = f"numbers with leading zeros ({zeros[0]!r}) kept as text" if zeros else f"{len(uniques)} distinct values"
    return ColumnSpec(kind="categorical", categories=category_order(uniques), **base, note=why)


def _date_format(cells, required: bool) -> str:
    """The first of DATE_FORMATS that parses every present cell; an error when one parses most but not all."""
    uniques = pd.Series(cells.uniques, dtype=object)
    best, best_ok = "", None
    for fmt in DATE_FORMATS:
        if not parse_dates(uniques[:20], fmt).notna().any():
            continue  # a cheap look at a few values before parsing them all
        ok = parse_dates(uniques, fmt).notna().to_numpy()
        if ok.all():
            return fmt
        if best_ok is None or cells.count(ok) > cells.count(best_ok):
            best, best_ok = fmt, ok
    name, present = cells.name, len(cells.rows)
    if best_ok is not None and (required or cells.count(best_ok) > present / 2):
        raise cells.refuse(~best_ok, f"is not a date like the others ({cells.count(best_ok)} of {present} cells "
                                     f"are dates {best}); fix the cell, or set [data.columns] {name} = "
                                     f"\"categorical\"")
    if required:
        raise cells.refuse(None, f"is not a date; [data.columns] {name} = \"datetime\" needs dates written as "
                                 f"one of {', '.join(DATE_FORMATS)}")
    return ""


def _typed_date_format(values: np.ndarray) -> str:
    """A datetime64 column is written as a date when every value is at midnight, else with its time."""
    ns = values.astype("datetime64[ns]").astype(np.int64)
    return "%Y-%m-%d" if np.all(ns % (86400 * 10**9) == 0) else "%Y-%m-%d %H:%M:%S"


def _value_texts(cells) -> np.ndarray:
    """[U] distinct values as text."""
    if cells.typed == "bool":
        return np.where(cells.uniques.astype(bool), "True", "False").astype(object)
    if cells.typed == "number":
        return number_texts(cells.uniques.astype(np.float64))
    return np.array([str(u) for u in cells.uniques], dtype=object)


def _overridden(cells, kind, base) -> ColumnSpec:
    """The kind [data.columns] sets, checked against the cells: nothing impossible is coerced."""
    name, note = cells.name, "set in config"
    if kind == "categorical":
        return ColumnSpec(kind=kind, categories=category_order(_value_texts(cells)), **base, note=note)
    if kind == "boolean":
        values = category_order(_value_texts(cells))
        if len(values) > 2:
            raise cells.refuse(np.arange(len(cells.uniques)) == 2, f"is a third value; [data.columns] {name} = "
                                                                   f"\"boolean\" needs at most two")
        return ColumnSpec(kind=kind, categories=values, **base, note=note)
    if kind == "datetime":
        if cells.typed == "datetime":
            return ColumnSpec(kind=kind, date_format=_typed_date_format(cells.uniques), **base, note=note)
        if cells.typed != "text":
            raise cells.refuse(None, f"is not a date; [data.columns] {name} = \"datetime\" needs dates")
        return ColumnSpec(kind=kind, date_format=_date_format(cells, required=True), **base, note=note)
    # continuous / integer
    if cells.typed == "number":
        values, decimals = cells.uniques, float_decimals(cells.uniques)
        whole = values == np.round(values)
    elif cells.typed in ("text", "category"):
        values, places = parse_numbers(_value_texts(cells))
        if np.isnan(values).any():
            raise cells.refuse(np.isnan(values), f"is not a number; [data.columns] {name} = \"{kind}\" needs numbers")
        decimals = None if (places < 0).any() else int(places.max())
        whole = values == np.round(values)
    else:
        raise cells.refuse(None, f"is not a number; [data.columns] {name} = \"{kind}\" needs numbers")
    if kind == "integer" and not whole.all():
        raise cells.refuse(~whole, f"is not a whole number; [data.columns] {name} = \"integer\" needs whole "
                                   f"numbers (or set \"continuous\")")
    return ColumnSpec(kind=kind, decimals=decimals if kind == "continuous" else None, **base, note=note)
