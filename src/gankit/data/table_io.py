"""Tables in and out: a CSV read as text (detection decides the kinds), samples written as the file was.

``read_csv_table`` keeps every cell as text, so "007", "1.50" and "NA" reach detection as written, and
records each row's line in the file (``frame.attrs["lines"]``) where blank lines or quoted line breaks
make it differ from row + 2, so messages can name the line. ``write_table`` writes samples back in the
file's own spelling: integers without ".0", the file's decimals, its date format, its true/false words.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import GankitError
from ..fileio import atomic_write
from .table_cells import parse_numbers
from .table_schema import TableSchema


def read_csv_table(path) -> pd.DataFrame:
    """A CSV with a header row -> DataFrame of str (no cell converted, none read as missing yet)."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: {'is a directory' if path.is_dir() else 'data file not found'}; "
                          f"expected a .csv file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise GankitError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[e.start]:02x}); save the file "
                          f"as UTF-8") from None
    if not text.strip():
        raise GankitError(f"{path}: is empty; expected a header row and rows of values")
    header, rows, lines = _rows(path, text)
    if not rows:
        raise GankitError(f"{path}: has a header ({', '.join(header)}) but no rows")
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame.attrs["source"] = str(path)
    if lines != list(range(2, len(rows) + 2)):  # only when they differ: attrs are copied along with the frame
        frame.attrs["lines"] = tuple(lines)
    return frame


def _rows(path: Path, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, line of each row); blank lines skipped, ragged rows refused."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header, rows, lines, end = None, [], [], 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num  # a quoted cell may span lines: the row starts at `start`
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _header(path, row)
                continue
            if len(row) != len(header):
                raise GankitError(f"{path}: line {start} has {len(row)} cell{'s' if len(row) != 1 else ''}; "
                                  f"expected {len(header)} like the header")
            rows.append(row)
            lines.append(start)
    except csv.Error as e:
        raise GankitError(f"{path}: line {reader.line_num}: {e}; expected comma-separated cells") from None
    return header, rows, lines


def _header(path: Path, row: list[str]) -> list[str]:
    values, _ = parse_numbers(np.array([cell.strip() for cell in row], dtype=object))
    if not np.isnan(values).any():
        raise GankitError(f"{path}: line 1 holds numbers, not column names; expected a header row naming the "
                          f"columns")
    names = [cell.strip() or f"unnamed_{j}" for j, cell in enumerate(row)]  # pandas' index column has no name
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in seen:
            raise GankitError(f"{path}: line 1 names column {name!r} twice (columns {seen[name] + 1} and {j + 1}); "
                              f"expected unique names")
        seen[name] = j
    return names


def write_table(frame: pd.DataFrame, schema: TableSchema, path) -> None:
    """Samples (typed, as ``typed_frame`` or ``TableTransformer.decode`` give them) -> .csv or .parquet."""
    path = Path(path)
    suffix = path.suffix.lower()
    columns = schema.written()
    absent = [c.name for c in columns if c.name not in frame.columns]
    if absent:
        raise GankitError(f"{path}: the samples lack column{'s' if len(absent) > 1 else ''} {', '.join(absent)}")
    if suffix == ".csv":
        text = pd.DataFrame({c.name: _cell_texts(frame[c.name], c) for c in columns})
        atomic_write(path, text.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    elif suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise GankitError(f"{path}: writing .parquet needs pyarrow; pip install pyarrow, or write a .csv") \
                from None
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({c.name: _typed(frame[c.name], c) for c in columns}).to_parquet(path, index=False)
    else:
        raise GankitError(f"{path}: unsupported table file type {suffix or '(none)'!r}; expected .csv or .parquet")


def _cell_texts(series: pd.Series, spec) -> np.ndarray:
    """[N] object: each value as the file wrote such values, "" where missing."""
    if spec.kind == "datetime":
        return pd.to_datetime(series).dt.strftime(spec.date_format).fillna("").to_numpy(dtype=object)
    out = np.full(len(series), "", dtype=object)
    if spec.kind in ("continuous", "integer"):
        values = _floats(series)
        present = ~np.isnan(values)
        if spec.kind == "integer" or spec.decimals == 0:
            out[present] = np.round(values[present]).astype(np.int64).astype(str)
        elif spec.decimals is not None:
            out[present] = np.char.mod(f"%.{spec.decimals}f", values[present])
        else:
            out[present] = [repr(float(v)) for v in values[present]]
        return out
    present = series.notna().to_numpy()
    out[present] = series[present].astype(str).to_numpy()
    return out


def _floats(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(np.float64, na_value=np.nan)
    text = series.astype(object).where(series.notna(), "nan").astype(str).to_numpy(dtype=object)
    values, _ = parse_numbers(text)
    return values


def _typed(series: pd.Series, spec) -> pd.Series:
    """The parquet column: float64, nullable Int64, datetime64 or string, keeping the row order."""
    if spec.kind == "integer":
        return pd.Series(np.round(_floats(series))).astype("Int64")  # NaN -> <NA>
    if spec.kind == "continuous":
        values = _floats(series)
        return pd.Series(values if spec.decimals is None else np.round(values, spec.decimals))
    if spec.kind == "datetime":
        return pd.Series(pd.to_datetime(series).to_numpy("datetime64[ns]"))
    return pd.Series(series.to_numpy(dtype=object), dtype="string")
