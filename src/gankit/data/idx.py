"""IDX files, the format of MNIST and its family (Fashion-MNIST, KMNIST), plain or gzip-compressed.

An IDX file (LeCun et al., the MNIST page) is a 4-byte magic number -- two zero bytes, a type code
(0x08 = uint8, ...) and the number of dimensions D -- then D big-endian uint32 sizes, then the values
in C order, big-endian. Images are [N, H, W] uint8 (``*-idx3-ubyte``), labels [N] uint8 (``*-idx1-ubyte``).

A folder of them holds a train and a test split under MNIST's file names; ``data.split`` picks
train, test or all (train then test). Reading is one decompression and one ``np.frombuffer``, with no
per-image Python loop: the 60,000 Fashion-MNIST training images take about 0.5 s of CPU, most of it gunzip.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from .dataset import DATASETS, RawData

# type code -> element type, big-endian as stored
TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist installs it
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# split -> file-name prefixes, in the order their samples are concatenated
SPLITS = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}
FILES = [f"{prefix}-{kind}.gz" for prefix in ("train", "t10k") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]


def read_idx(path: str | Path) -> np.ndarray:
    """The array in an IDX file (gzip-compressed or not), in native byte order; uint8 data is a read-only view."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise GankitError(f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}; expected "
                          f"0000 then a type code and the number of dimensions, e.g. 00000803 for uint8 images)")
    code, ndim = data[2], data[3]
    if code not in TYPES:
        raise GankitError(f"{path}: IDX type code 0x{code:02x} is unknown; expected one of "
                          f"{', '.join(f'0x{c:02x}' for c in TYPES)}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise GankitError(f"{path}: IDX header truncated or invalid: {ndim} dimensions need a {header}-byte "
                          f"header, the file has {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = TYPES[code]
    expected, actual = int(np.prod(dims)) * dtype.itemsize, len(data) - header
    if actual != expected:
        problem = "truncated" if actual < expected else f"{actual - expected} bytes too long"
        raise GankitError(f"{path}: IDX data is {problem}: dimensions {'x'.join(map(str, dims))} of {dtype.name} "
                          f"need {expected} bytes after the header, the file has {actual}")
    array = np.frombuffer(data, dtype, count=int(np.prod(dims)), offset=header).reshape(dims)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise GankitError(f"{path}: expected an IDX file, found a directory") from None
    except OSError as e:
        raise GankitError(f"{path}: cannot be read ({e.strerror or e})") from None
    if data[:2] != b"\x1f\x8b":  # not gzip: a plain IDX file
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise GankitError(f"{path}: damaged gzip file ({e}); download it again") from None


# --------------------------------------------------------------------------------------------- data sets


@DATASETS.register("fashion-mnist")
def fashion_mnist(config: DataConfig, seed: int) -> RawData:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28x28 grey images of 10 kinds of clothing,
    60,000 train + 10,000 test, from ``data.path`` or the Debian package's folder."""
    files = ", ".join(FILES[:-1]) + f" and {FILES[-1]}"
    if config.path:
        folder = Path(config.path).expanduser()
        fix = (f"data.path must be a folder holding {files}, or leave data.path empty to read {FASHION_DIR} "
               f"(apt-get install dataset-fashion-mnist)")
    else:
        folder = FASHION_DIR
        fix = f"install it with `apt-get install dataset-fashion-mnist`, or set data.path to a folder holding {files}"
    x, y, label_files = read_split(folder, config.split, fix)
    if y.max() >= len(FASHION_CLASSES):
        raise GankitError(f"{label_files[0]}: holds label {y.max()}; Fashion-MNIST has classes 0..9")
    return _raw_images(x, y, FASHION_CLASSES)


@DATASETS.register("idx")
def idx_folder(config: DataConfig, seed: int) -> RawData:
    """Any folder of MNIST-family IDX files (MNIST, KMNIST, ...), under MNIST's file names; classes "0".."K-1"."""
    files = ", ".join(FILES[:-1]) + f" and {FILES[-1]}"
    if not config.path:
        raise GankitError(f'data.path is empty: data.name = "idx" needs a folder holding {files} (or the same '
                          f"names without .gz)")
    fix = f"data.path must be a folder holding {files} (or the same names without .gz)"
    x, y, _ = read_split(Path(config.path).expanduser(), config.split, fix)
    return _raw_images(x, y, [str(k) for k in range(int(y.max()) + 1)])


def read_split(folder: Path, split: str, fix: str) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Images [N, H, W] uint8 and labels [N] uint8 of a split, and the label files they came from."""
    xs, ys, label_files = [], [], []
    for prefix in SPLITS[split]:
        image_file = _find(folder, f"{prefix}-images-idx3-ubyte", fix)
        label_file = _find(folder, f"{prefix}-labels-idx1-ubyte", fix)
        x, y = read_idx(image_file), read_idx(label_file)
        if x.ndim != 3 or x.dtype != np.uint8:
            raise GankitError(f"{image_file}: holds {x.dtype.name} of shape {x.shape}; expected uint8 images [N, H, W]")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise GankitError(f"{label_file}: holds {y.dtype.name} of shape {y.shape}; expected uint8 labels [N]")
        if len(x) != len(y):
            raise GankitError(f"{label_file}: holds {len(y)} labels for the {len(x)} images of {image_file}")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise GankitError(f"{image_file}: images of {x.shape[1]}x{x.shape[2]}, unlike the "
                              f"{xs[0].shape[1]}x{xs[0].shape[2]} of the train split")
        if len(x) == 0:
            raise GankitError(f"{image_file}: holds no images")
        xs.append(x)
        ys.append(y)
        label_files.append(label_file)
    if len(xs) == 1:
        return xs[0], ys[0], label_files
    return np.concatenate(xs), np.concatenate(ys), label_files


def _find(folder: Path, stem: str, fix: str) -> Path:
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            return path
    raise GankitError(f"{folder / stem}.gz: not found; {fix}")


def _raw_images(x: np.ndarray, y: np.ndarray, class_names: list[str]) -> RawData:
    return RawData(
        x=torch.from_numpy(x.astype(np.float32)).unsqueeze(1),  # [N, 1, H, W], grey levels 0..255
        y=torch.from_numpy(y.astype(np.int64)),
        class_names=class_names,
        normalize="minmax",
        value_range=(0.0, 255.0),
    )
