"""The user's sequence files, read through ``data.name = "file"`` like rows (files.py dispatches here).

Four ways to give sequences [N, T, F], because time series come in all of them:
- a 3-D ``.npy``: one sequence per row, all of the same length;
- an ``.npz`` with ``x`` [N, T_max, F], optional ``lengths`` [N] (valid steps; the rest is set to 0) and
  optional integer labels ``y`` [N];
- a long-format ``.csv`` whose header has ``id`` and ``time`` columns: one row per step, grouped into one
  sequence per id (in order of first appearance), times increasing within each id; the other columns are
  features, except ``data.label_column``, one label per id. Sequences of different lengths are zero-padded;
- one long series (a 2-D ``.npy`` or ``.csv``) with ``data.window = T``: every window of T steps, stride 1.
Sequence data is min-max scaled by default (as TimeGAN's sets are). Every problem is one line naming the
file and where in it.
"""

from __future__ import annotations

import math
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import GankitError
from .dataset import RawData
from .sequences import sequence_data

NPZ_KEYS = ("x", "lengths", "y")


def _no_window(path: Path, config: DataConfig, what: str) -> None:
    if config.window:
        raise GankitError(f"{path}: data.window = {config.window} applies to a 2-D series [rows, F]; the file "
                          f"holds {what}; set data.window = 0")


def _no_label_column(path: Path, config: DataConfig, instead: str) -> None:
    if config.label_column:
        raise GankitError(f"{path}: data.label_column = {config.label_column!r} applies to CSV columns; {instead}")


def npy_sequences(path: Path, array: np.ndarray, config: DataConfig) -> RawData:
    """A 3-D .npy [N, T, F]: sequences of one length."""
    _no_window(path, config, f"sequences already (shape {array.shape})")
    _no_label_column(path, config, "give labels with sequences in an .npz (x, lengths, y)")
    return sequence_data(f"{path}: ", array.astype(np.float64))


def load_npz(path: Path, config: DataConfig) -> RawData:
    """An .npz with x [N, T_max, F], optional lengths [N] and labels y [N]."""
    if path.stat().st_size == 0:
        raise GankitError(f"{path}: is empty; expected arrays saved with numpy.savez")
    with path.open("rb") as f:
        if f.read(4) != b"PK\x03\x04":  # numpy would take anything else for a .npy or a pickle
            raise GankitError(f"{path}: not an .npz archive (no zip header); expected arrays saved with "
                              f"numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:  # never unpickle a user's file
            keys = sorted(archive.files)
            unknown = [k for k in keys if k not in NPZ_KEYS]
            if "x" not in keys or unknown:
                raise GankitError(f"{path}: holds arrays {', '.join(keys) or '(none)'}; expected x [N, T, F] and "
                                  f"optionally lengths [N] and y [N]")
            arrays = {k: archive[k] for k in keys}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise GankitError(f"{path}: holds Python objects; expected numeric arrays") from None
        raise GankitError(f"{path}: not a valid .npz file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise GankitError(f"{path}: not a valid .npz file ({e})") from None
    x = arrays["x"]
    if x.dtype.kind not in "biuf":
        raise GankitError(f"{path}: x has dtype {x.dtype}; expected numbers")
    if x.ndim != 3 or 0 in x.shape:
        raise GankitError(f"{path}: x has shape {x.shape}; expected sequences [N, T_max, F] with N, T_max, F > 0")
    _no_window(path, config, f"sequences already (x of shape {x.shape})")
    _no_label_column(path, config, "an .npz gives its labels as the array y")
    return sequence_data(f"{path}: ", x.astype(np.float64), arrays.get("lengths"), arrays.get("y"))


def series_windows(path: Path, table: np.ndarray, columns: list[str], config: DataConfig) -> RawData:
    """One long series [rows, F] -> every window of data.window steps, stride 1, in order (batches shuffle)."""
    window = config.window
    if window < 0:
        raise GankitError(f"data.window = {window}: expected a number of steps > 0, or 0 for rows")
    _no_label_column(path, config, "a series cut into windows has no label per window")
    if len(table) < window:
        raise GankitError(f"{path}: the series has {len(table)} row{'s' if len(table) != 1 else ''}, fewer than "
                          f"data.window = {window} steps")
    x = np.lib.stride_tricks.sliding_window_view(table, window, axis=0).transpose(0, 2, 1)  # [N, window, F]
    return sequence_data(f"{path}: ", x, columns=columns or None)


# ------------------------------------------------------------------------------------------ long-format CSV


def is_long_format(header: list[str]) -> bool:
    """A header row with both an ``id`` and a ``time`` column (any case)."""
    names = [cell.strip().casefold() for cell in header]
    return "id" in names and "time" in names


def long_csv(path: Path, numbered: list[tuple[int, list[str]]], config: DataConfig) -> RawData:
    """Rows (line, cells) of a long-format CSV, the header first -> padded sequences with lengths."""
    _no_window(path, config, "sequences already (a long-format CSV with id and time columns)")
    header = [cell.strip() for cell in numbered[0][1]]
    folded = [name.casefold() for name in header]
    id_col, time_col = folded.index("id"), folded.index("time")
    label_col = _label_index(path, config.label_column, header, (id_col, time_col))
    features = [j for j in range(len(header)) if j not in (id_col, time_col, label_col)]
    if not features:
        raise GankitError(f"{path}: has no feature columns beside {', '.join(header)}; expected at least one")
    if len(numbered) < 2:
        raise GankitError(f"{path}: has a header but no data rows")
    groups: dict[str, list] = {}  # id -> [feature rows, last time, as written, its line, label, its line]
    width = len(header)
    for line, row in numbered[1:]:
        if len(row) != width:
            raise GankitError(f"{path}: line {line} has {len(row)} cell{'s' if len(row) != 1 else ''}; expected "
                              f"{width} like the header")
        key = row[id_col].strip()
        if not key:
            raise GankitError(f"{path}: line {line}, column {header[id_col]!r}: an empty cell; expected an id")
        time = _time(path, line, header[time_col], row[time_col])
        values = [_number(path, line, header[j], row[j]) for j in features]
        group = groups.get(key)
        if group is None:
            label = None if label_col is None else _label(path, line, header[label_col], row[label_col])
            groups[key] = [[values], time, row[time_col].strip(), line, label, line]
            continue
        rows, last, last_text, last_line, first_label, label_line = group
        if time <= last:
            what = f"repeats time {last_text} of" if time == last else \
                f"has time {row[time_col].strip()} after time {last_text} on"
            raise GankitError(f"{path}: line {line}: id {key!r} {what} line {last_line}; expected times increasing "
                              f"within each id")
        if label_col is not None:
            label = _label(path, line, header[label_col], row[label_col])
            if label != first_label:
                raise GankitError(f"{path}: line {line}: id {key!r} has label {label} but {first_label} on line "
                                  f"{label_line}; expected one label per id")
        rows.append(values)
        group[1:4] = time, row[time_col].strip(), line
    sequences = [np.asarray(group[0], dtype=np.float64) for group in groups.values()]
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    x = np.zeros((len(sequences), int(lengths.max()), len(features)))
    for i, s in enumerate(sequences):
        x[i, :len(s)] = s
    y = None if label_col is None else np.array([group[4] for group in groups.values()], dtype=np.int64)
    return sequence_data(f"{path}: ", x, lengths, y, columns=[header[j] for j in features])


def _label_index(path: Path, label_column: str, header: list[str], taken: tuple[int, int]) -> int | None:
    if not label_column:
        return None
    if label_column in header:
        index = header.index(label_column)
    else:
        try:
            index = int(label_column)
        except ValueError:
            raise GankitError(f"{path}: data.label_column = {label_column!r} not found; columns are "
                              f"{', '.join(header)}") from None
        if not -len(header) <= index < len(header):
            raise GankitError(f"{path}: data.label_column = {index} is out of range; the file has {len(header)} "
                              f"columns")
        index %= len(header)
    if index in taken:
        raise GankitError(f"{path}: data.label_column = {label_column!r} is the {header[index]!r} column; expected "
                          f"a column of class labels")
    return index


def _number(path: Path, line: int, column: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        what = "an empty cell" if not cell.strip() else repr(cell.strip())
        raise GankitError(f"{path}: line {line}, column {column!r}: {what} is not a number") from None
    if not math.isfinite(value):
        raise GankitError(f"{path}: line {line}, column {column!r}: {cell.strip()} is not a finite number")
    return value


def _time(path: Path, line: int, column: str, cell: str) -> float:
    """A step's time: a number or an ISO date/time (2024-01-31, 2024-01-31T12:00). Only its order is used."""
    try:
        value = float(cell)
    except ValueError:
        try:
            return datetime.fromisoformat(cell.strip()).timestamp()
        except ValueError:
            what = "an empty cell" if not cell.strip() else repr(cell.strip())
            raise GankitError(f"{path}: line {line}, column {column!r}: {what} is not a number or an ISO "
                              f"date") from None
    if not math.isfinite(value):
        raise GankitError(f"{path}: line {line}, column {column!r}: {cell.strip()} is not a finite time")
    return value


def _label(path: Path, line: int, column: str, cell: str) -> int:
    value = _number(path, line, column, cell)
    if value != round(value) or value < 0:
        raise GankitError(f"{path}: line {line}, label column {column!r} holds {value:g}; expected integer class "
                          f"labels >= 0")
    return int(value)
