"""What ``gankit score --input`` reads: the samples to score, in the networks' units, and a name for each.

- a folder of PNG/JPEG images (sorted by file name; class sub-folders allowed), decoded as the run's channels and
  size (the centre square resized, as ``data.image_size`` does); pixels p in [0, 1] become 2p - 1, which is
  what black and white are in a minmax-normalised run. Named by file (its path under the folder).
- an ``.npy``: rows [N, F] (or values [N] when F = 1) in the data's own units, as training files are; images
  [N, C, H, W] (or [N, H, W] when C = 1) as pixels, floats in [0, 1] or uint8 0..255, as ``gankit apply``,
  the exported scorer and ``POST /v1/score`` take them. Named by index.
- a ``.csv`` of rows of numbers, a header allowed (with the run's column names, columns are taken by name, in the
  run's order; extra columns such as the label, empty label cells included, are then left out). Named by row index.

Decoding is the training folders' (data/images.py), CSV and .npy reading the training files' (data/files.py), so
an input reads as the same sample would have when training. Every problem is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import files as data_files
from .data import images as data_images
from .errors import GankitError


def read_inputs(path: str | Path, meta: dict[str, Any], shift, scale) -> tuple[torch.Tensor, list[str]]:
    """(x [N, *shape] float32 in the networks' units, a name per input) from a folder of images, an .npy or a .csv.

    ``meta``: a checkpoint's metadata (meta["model"]["shape"], meta["data"]["normalize"] and ["columns"]);
    ``shift``, ``scale``: the run's normalisation, raw = x * scale + shift ([F] for rows, [C, 1, 1] for images).
    """
    path = Path(path).expanduser()
    shape = tuple(int(s) for s in meta["model"]["shape"])
    normalize = meta["data"].get("normalize", "none")
    if not path.exists():
        raise GankitError(f"{path}: not found; expected a folder of images, an .npy or a .csv file")
    suffix = path.suffix.lower()
    if path.is_dir():
        pixels, names = image_folder(path, shape, normalize)
        return to_units_from_pixels(pixels), names
    if suffix == ".npy" and len(shape) == 3:
        pixels = read_npy_images(path, shape, normalize)
        return to_units_from_pixels(pixels), [str(i) for i in range(len(pixels))]
    if suffix == ".npy":
        values = read_npy_rows(path, shape)
    elif suffix == ".csv":
        values = read_csv(path, shape, list(meta["data"].get("columns") or []))
    else:
        raise GankitError(f"{path}: unsupported input {suffix or '(no suffix)'!r}; expected a folder of images, "
                          f"an .npy or a .csv file")
    shift = torch.as_tensor(shift, dtype=torch.float32)
    scale = torch.as_tensor(scale, dtype=torch.float32)
    x = ((torch.from_numpy(values).float() - shift) / scale).contiguous()  # [N, F]
    return x, [str(i) for i in range(len(values))]


def to_units_from_pixels(pixels: np.ndarray) -> torch.Tensor:
    """Pixels [N, C, H, W], uint8 0..255 or floats in [0, 1] -> 2p - 1: minmax units, where -1 is black, 1 white."""
    x = torch.from_numpy(pixels).float()
    return (x.div_(127.5).sub_(1.0) if pixels.dtype == np.uint8 else x.mul_(2.0).sub_(1.0)).contiguous()


# --------------------------------------------------------------------------------------------- images


def image_folder(path: Path, shape: tuple[int, ...], normalize: str) -> tuple[np.ndarray, list[str]]:
    """uint8 pixels [N, C, H, W] of the images under ``path`` (in file-name order) and their names."""
    if len(shape) != 3:
        raise GankitError(f"{path}: is a folder; this run scores rows of {shape[0]} numbers: expected an .npy or a "
                          f".csv file")
    c, h, w = shape
    _need_pixels(path, normalize, c)
    files, _, _ = data_images.find_images(path.resolve())  # refuses a missing or empty folder
    root = path.resolve()
    x = np.empty((len(files), c, h, w), dtype=np.uint8)
    for i, file in enumerate(files):
        try:  # a square run's images: any image's centre square resized to its side, as data.image_size does
            pixels = data_images.decode(file, "L" if c == 1 else "RGB", h if h == w else 0)  # [H, W(, 3)]
        except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...) for bad files
            why = " ".join(str(e).split())[:200] or type(e).__name__
            raise GankitError(f"{file}: cannot be decoded as an image ({why})") from None
        if pixels.shape[:2] != (h, w):
            raise GankitError(f"{file}: is {pixels.shape[1]}x{pixels.shape[0]} pixels; this run's images are {w}x{h} "
                              f"(width x height)")
        x[i] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return x, [str(f.relative_to(root)) for f in files]


def _need_pixels(path: Path, normalize: str, channels: int) -> None:
    """Pixels map to the networks' units only in a minmax-normalised run of grey or RGB images."""
    if normalize != "minmax":
        raise GankitError(f"{path}: pixels can be scored only by a run on minmax-normalised images; this run's "
                          f"data.normalize is {normalize!r}")
    if channels not in (1, 3):
        raise GankitError(f"{path}: this run's images have {channels} channels; pixels come as grey (1) or RGB (3)")


# --------------------------------------------------------------------------------------------- arrays and rows


def read_npy_rows(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Rows [N, F] of an .npy file, by the training files' reader (its checks and messages)."""
    rows = data_files._read_npy(path)  # [N, F] float64, finite (1-D values become [N, 1])
    if rows.ndim != 2 or rows.shape[1] != shape[0]:
        raise GankitError(f"{path}: has shape {rows.shape}; this run scores rows of {shape[0]} numbers: expected "
                          f"[N, {shape[0]}]")
    return rows


def read_npy_images(path: Path, shape: tuple[int, ...], normalize: str) -> np.ndarray:
    """Pixels [N, C, H, W] of an .npy of images: uint8 0..255 as they are, floats checked to lie in [0, 1]."""
    _need_pixels(path, normalize, shape[0])
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle a user's file
    except (ValueError, OSError, EOFError) as e:
        raise GankitError(f"{path}: not a valid .npy file of numbers ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise GankitError(f"{path}: holds {getattr(array, 'dtype', 'an archive')}; expected an array of numbers")
    if array.ndim == 3 and shape[0] == 1:
        array = array[:, None]  # grey images [N, H, W] -> [N, 1, H, W]
    if array.shape[1:] != shape or len(array) == 0:
        raise GankitError(f"{path}: has shape {array.shape}; this run scores images of {list(shape)}: expected "
                          f"[N, {', '.join(map(str, shape))}] with N > 0")
    if array.dtype == np.uint8:
        return array
    values = array.astype(np.float32)
    bad = np.argwhere(~np.isfinite(values) | (values < 0) | (values > 1))
    if len(bad):
        raise GankitError(f"{path}: image {bad[0][0]} holds {values[tuple(bad[0])]}; expected pixels in [0, 1] "
                          f"(floats) or 0..255 (uint8)")
    return values


def read_csv(path: Path, shape: tuple[int, ...], columns: list[str]) -> np.ndarray:
    """Rows [N, F] of a CSV of numbers; with a header naming the run's columns, those columns in the run's order."""
    if len(shape) != 1:
        raise GankitError(f"{path}: this run scores images of {list(shape)}: expected a folder of images or an .npy")
    numbered = _run_columns(path, data_files._csv_lines(path), columns)
    table, _ = data_files._read_csv(path, numbered)  # numbers, finite, a rectangle
    if table.shape[1] != shape[0]:
        named = f" ({', '.join(columns)})" if columns else ""
        raise GankitError(f"{path}: has {table.shape[1]} columns; this run scores rows of {shape[0]} numbers{named}")
    return table


def _run_columns(path: Path, numbered: list[tuple[int, list[str]]], columns: list[str]
                 ) -> list[tuple[int, list[str]]]:
    """A CSV's rows cut to the run's columns, in the run's order, when its header names them all; the other
    columns (a label, an id, an empty label cell of semi-supervised data) are left out before they are read."""
    header = [cell.strip() for cell in numbered[0][1]]
    if not columns or header == columns or not set(columns) <= set(header) or any(map(data_files.is_number, header)):
        return numbered
    for line, row in numbered:
        if len(row) != len(header):
            raise GankitError(f"{path}: line {line} has {len(row)} cells; expected {len(header)} like the header")
    keep = [header.index(name) for name in columns]
    return [(line, [row[j] for j in keep]) for line, row in numbered]
