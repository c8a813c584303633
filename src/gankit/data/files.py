"""The user's own data: a ``.npy`` array or a ``.csv`` file of numeric rows (sequences: sequence_files.py).

A CSV may start with a header row (a row with no numeric cell). ``data.label_column`` names a column
(by header name or 0-based index) of integer class labels, which makes the data conditional; the
distinct labels become classes 0..K-1, named by their value in the file. With ``data.semisupervised``, a label
cell that is empty, NaN or ``data.unlabelled`` (e.g. -1) marks an unlabelled row: its label is -1
(``gankit.data.semisup.UNLABELLED``) and the classes are those of the labelled rows.
Every problem is reported on one line naming the file, the row/column and what was expected.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from . import sequence_files
from .dataset import DATASETS, RawData
from .semisup import UNLABELLED


@DATASETS.register("file")
def load_file(config: DataConfig, seed: int) -> RawData:
    path = Path(config.path)
    if not path.exists():
        raise GankitError(f"{path}: data file not found")
    if not path.is_file():
        raise GankitError(f"{path}: expected a .npy, .npz or .csv file, found a directory")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return sequence_files.load_npz(path, config)
    if suffix == ".npy":
        table, columns = _read_npy(path, config), []
        if table.ndim == 3:
            return sequence_files.npy_sequences(path, table, config)
    elif suffix == ".csv":
        numbered = _csv_lines(path)
        if sequence_files.is_long_format(numbered[0][1]):
            return sequence_files.long_csv(path, numbered, config)
        table, columns = _read_csv(path, numbered, config)
    else:
        raise GankitError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .npy, .npz or .csv")
    if config.window:
        return sequence_files.series_windows(path, table, columns, config)
    if len(table) < 2:  # standardising (and any distribution) needs a spread
        raise GankitError(f"{path}: holds 1 row; expected at least 2 rows to learn a distribution from")
    return _split_labels(path, table, columns, config, normalize="standard")


def _read_npy(path: Path, config: DataConfig | None = None) -> np.ndarray:
    """A 2-D array of rows [N, F] (1-D values become [N, 1]) or sequences [N, T, F], float64; rows are finite but
    for the unlabelled rows of semi-supervised data (``config``), whose label is NaN."""
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle a user's file
    except ValueError as e:
        if "pickle" in str(e).lower():
            with path.open("rb") as f:  # numpy takes any file without its magic prefix for a pickle
                if f.read(6) != b"\x93NUMPY":
                    raise GankitError(f"{path}: not a .npy file (no NumPy header); expected an array saved "
                                      f"with numpy.save") from None
            raise GankitError(f"{path}: holds Python objects; expected a numeric array") from None
        raise GankitError(f"{path}: not a valid .npy file ({e})") from None
    except (OSError, EOFError) as e:
        raise GankitError(f"{path}: not a valid .npy file ({e})") from None
    if isinstance(array, np.lib.npyio.NpzFile):
        raise GankitError(f"{path}: is an .npz archive; expected a single .npy array")
    if array.dtype.kind not in "biuf":
        raise GankitError(f"{path}: has dtype {array.dtype}; expected numbers")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim not in (2, 3):
        raise GankitError(f"{path}: has shape {array.shape}; expected a 1-D array of values, a 2-D array of rows "
                          f"or a 3-D array of sequences [N, T, F]")
    if 0 in array.shape:
        raise GankitError(f"{path}: is empty (shape {array.shape}); expected at least one row and one column")
    array = array.astype(np.float64)
    if array.ndim == 3:  # sequences: checked (naming sequence and step) by sequence_files
        return array
    finite = np.isfinite(array)
    label = _semisup_label(path, config, [], array.shape[1])
    if label is not None:  # a NaN or data.unlabelled label marks an unlabelled row: NaN from here on
        labels = array[:, label]  # a view: marking it marks the array
        labels[labels == _npy_marker(path, config)] = np.nan
        finite[:, label] |= np.isnan(labels)
    bad = np.argwhere(~finite)
    if len(bad):
        row, col = bad[0]
        raise GankitError(f"{path}: row {row}, column {col} is {array[row, col]}; expected finite numbers")
    return array


def _csv_lines(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV, each with its line number (for messages); at least one."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)  # blank lines are skipped, so each row keeps its line number for messages
            numbered = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise GankitError(f"{path}: is not a UTF-8 text file; expected a .csv of numeric rows") from None
    if not numbered:
        raise GankitError(f"{path}: is empty; expected rows of numbers")
    return numbered


def _read_csv(path: Path, numbered: list[tuple[int, list[str]]],
              config: DataConfig | None = None) -> tuple[np.ndarray, list[str]]:
    """The table of numbers [N, F] and the header (or []); the label column's unlabelled cells of semi-supervised
    data (``config``) become NaN."""
    columns: list[str] = []
    if not any(is_number(cell) for cell in numbered[0][1]):
        columns = [cell.strip() for cell in numbered[0][1]]
        numbered = numbered[1:]
        if not numbered:
            raise GankitError(f"{path}: has a header but no data rows")
    width = len(columns) or len(numbered[0][1])
    table = np.empty((len(numbered), width))
    label = _column_index(path, config.label_column, columns, width) if config and config.label_column else None
    semisup = label is not None and config.semisupervised
    for i, (line, row) in enumerate(numbered):
        if len(row) != width:
            raise GankitError(f"{path}: line {line} has {len(row)} cell{'s' if len(row) != 1 else ''}; expected "
                              f"{width} like the first row")
        for j, cell in enumerate(row):
            name = f"column {columns[j]!r}" if columns else f"column {j}"
            if j == label:
                table[i, j] = _label_cell(path, f"line {line}, label {name}", cell, config, semisup)
                continue
            try:
                value = float(cell)
            except ValueError:
                what = "an empty cell" if not cell.strip() else f"{cell.strip()!r}"
                raise GankitError(f"{path}: line {line}, {name}: {what} is not a number; a table of mixed columns "
                                  f"(text, dates, missing values) is read with data.name = \"table\"") from None
            if not math.isfinite(value):
                raise GankitError(f"{path}: line {line}, {name}: {cell.strip()} is not a finite number")
            table[i, j] = value
    return table, columns


def is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _label_cell(path: Path, where: str, cell: str, config: DataConfig, semisup: bool) -> float:
    """A CSV label cell as a number; NaN for an unlabelled row of semi-supervised data (``semisup``)."""
    text = cell.strip()
    if semisup and _is_unlabelled(text, config.unlabelled):
        return math.nan
    value = float(text) if is_number(text) else math.nan
    if not math.isfinite(value):
        what = repr(text) if text else "an empty cell"
        raise GankitError(f"{path}: {where}: {what} is not a class label; expected integer class labels >= 0"
                          f"{_unlabelled_hint(config, text)}")
    return value


def _is_unlabelled(text: str, marker: str) -> bool:
    """Whether a label of semi-supervised data marks an unlabelled row: empty, NaN or data.unlabelled (``marker``,
    as text or as a number: "-1" matches -1.0)."""
    if text in ("", marker.strip()):
        return True
    return is_number(text) and (math.isnan(float(text)) or (is_number(marker) and float(text) == float(marker)))


def _unlabelled_hint(config: DataConfig, text: str) -> str:
    """How to say that the label ``text`` marks an unlabelled row, where that is what it may mean."""
    marker = f'data.unlabelled = "{text}" if {text} marks unlabelled rows' if text.lower() not in ("", "nan") else ""
    if not config.semisupervised:
        return f" (a partly labelled file: data.semisupervised = true{', and ' + marker if marker else ''})"
    return f"; set {marker}" if marker else ""


def _semisup_label(path: Path, config: DataConfig | None, columns: list[str], width: int) -> int | None:
    """The label column of semi-supervised data, whose cells may mark unlabelled rows; None for other data."""
    if config is None or not (config.semisupervised and config.label_column):
        return None
    return _column_index(path, config.label_column, columns, width)


def _npy_marker(path: Path, config: DataConfig) -> float:
    """data.unlabelled as the number it must be in an .npy (NaN when empty: NaN labels are unlabelled anyway)."""
    if not config.unlabelled.strip():
        return math.nan
    if not is_number(config.unlabelled):
        raise GankitError(f"{path}: data.unlabelled = {config.unlabelled!r}: an .npy holds numbers; expected a "
                          f"number such as -1 (NaN labels are unlabelled too)")
    return float(config.unlabelled)


def _split_labels(path: Path, table: np.ndarray, columns: list[str], config: DataConfig, normalize: str) -> RawData:
    names = columns or [f"x{j}" for j in range(table.shape[1])]
    if not config.label_column:
        return RawData(x=torch.from_numpy(table).float(), columns=names, normalize=normalize)
    index = _column_index(path, config.label_column, columns, table.shape[1])
    labels = table[:, index]
    unlabelled = np.isnan(labels)  # only semi-supervised data's unlabelled rows (the readers refuse NaN elsewhere)
    not_int = np.flatnonzero(~unlabelled & ((labels != np.round(labels)) | (labels < 0)))
    if len(not_int):
        row = not_int[0]
        hint = _unlabelled_hint(config, f"{labels[row]:g}") if labels[row] < 0 else ""
        raise GankitError(f"{path}: label column {names[index]!r} holds {labels[row]:g} in row {row}; "
                          f"expected integer class labels >= 0{hint}")
    if table.shape[1] < 2:
        raise GankitError(f"{path}: has only the label column {names[index]!r}; expected feature columns beside it")
    values, classes = np.unique(labels[~unlabelled].astype(np.int64), return_inverse=True)
    y = np.full(len(labels), UNLABELLED, dtype=np.int64)
    y[~unlabelled] = classes.reshape(-1)
    features = np.delete(table, index, axis=1)
    return RawData(
        x=torch.from_numpy(features).float(),
        y=torch.from_numpy(y),
        class_names=[str(v) for v in values],
        columns=[n for j, n in enumerate(names) if j != index],
        normalize=normalize,
    )


def _column_index(path: Path, label_column: str, columns: list[str], width: int) -> int:
    if label_column in columns:
        return columns.index(label_column)
    try:
        index = int(label_column)
    except ValueError:
        known = f"columns are {', '.join(columns)}" if columns else "the file has no header, so give a 0-based index"
        raise GankitError(f"{path}: data.label_column = {label_column!r} not found; {known}") from None
    if not -width <= index < width:
        raise GankitError(f"{path}: data.label_column = {index} is out of range; the file has {width} columns")
    return index % width
