"""A folder of PNG/JPEG images: labelled by sub-folder (the ImageFolder convention) or unlabelled.

    photos/cat/1.jpg, photos/dog/a/2.png, ...  ->  classes ["cat", "dog"] (the sorted sub-folder names)
    photos/1.jpg, photos/2.png, ...            ->  unlabelled

With ``data.semisupervised``, the images of an ``unlabelled/`` sub-folder are the unlabelled ones (label -1,
``gankit.data.semisup.UNLABELLED``) beside the class sub-folders; ``unlabelled`` is then no class.

Each image becomes grey or RGB (``data.channels``; 0 = RGB unless every image is grey). With
``data.image_size`` = S its centre square is resized to S x S, which is resizing the shorter side to S
then centre-cropping; with 0 every image must already have one size. Decoding is the slow part, so its
result, a uint8 array [N, C, H, W], is cached in ``${XDG_CACHE_HOME:-~/.cache}/gankit/`` under a hash of the
files (absolute path, size, mtime) and the settings; ``GANKIT_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from ..fileio import atomic_write
from .dataset import DATASETS, RawData
from .semisup import UNLABELLED

UNLABELLED_FOLDER = "unlabelled"  # semi-supervised data: the sub-folder of the images that have no class

EXTENSIONS = (".png", ".jpg", ".jpeg")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "F"}  # Pillow modes without colour
CACHE_VERSION = 1  # bump when decoding changes, so old cache entries are not reused


@dataclass
class Decoded:
    """What decoding a folder gives, and what the cache stores."""

    x: np.ndarray  # [N, C, H, W] uint8
    kept: np.ndarray  # [N] int64: index of each image in the folder's file list
    bad: list[tuple[str, str]]  # (file, why) for the files that could not be decoded, when skipped


@DATASETS.register("images")
def image_folder(config: DataConfig, seed: int) -> RawData:
    """A folder of PNG/JPEG images (data.path), as described at the top of this module."""
    if not config.path:
        raise GankitError('data.path is empty: data.name = "images" needs a folder of PNG/JPEG images')
    root = Path(config.path).expanduser().resolve()
    files, labels, class_names = find_images(root, config.semisupervised)
    decoded = decode_cached(root, files, config)
    return RawData(
        x=torch.from_numpy(decoded.x).float(),  # [N, C, H, W], levels 0..255; uint8 until here
        y=torch.from_numpy(labels[decoded.kept]) if labels is not None else None,
        class_names=class_names,
        normalize="minmax",
        value_range=(0.0, 255.0),
    )


def find_images(root: Path, semisup: bool = False) -> tuple[list[Path], np.ndarray | None, list[str]]:
    """The image files under ``root`` in a fixed order, their labels [N] int64 (None when flat) and class names;
    ``semisup``: the images of ``unlabelled/`` are labelled -1 and it is no class."""
    if not root.exists():
        raise GankitError(f"{root}: folder not found")
    if not root.is_dir():
        raise GankitError(f"{root}: is a file; data.path must be a folder of PNG/JPEG images")
    flat = sorted(p for p in root.iterdir() if _is_image(p))
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [(d.name, sorted(p for p in d.rglob("*") if _is_image(p, d))) for d in folders]
    classes = [(name, found) for name, found in classes if found]  # a folder without images is no class
    if flat and classes:
        raise GankitError(f"{root}: holds images both directly ({flat[0].name}) and in sub-folders "
                          f"({classes[0][0]}/); expected either class sub-folders or images only")
    if flat:
        return flat, None, []
    if not classes:
        others = [p for p in sorted(root.rglob("*")) if p.is_file()]
        seen = f"; it holds other files, e.g. {others[0].relative_to(root)}" if others else ""
        raise GankitError(f"{root}: no images found (looked for {', '.join(EXTENSIONS)} files directly or in "
                          f"class sub-folders){seen}")
    files = [p for _, found in classes for p in found]
    names = [name for name, _ in classes if not (semisup and name == UNLABELLED_FOLDER)]
    labels = np.concatenate([np.full(len(found), names.index(name) if name in names else UNLABELLED, dtype=np.int64)
                             for name, found in classes])
    return files, labels, names


def _is_image(path: Path, under: Path | None = None) -> bool:
    parts = path.relative_to(under).parts if under else (path.name,)
    return (path.suffix.lower() in EXTENSIONS and not any(p.startswith(".") for p in parts)  # ._x.jpg, .git/
            and path.is_file())


# --------------------------------------------------------------------------------------------- decoding


def decode_cached(root: Path, files: list[Path], config: DataConfig, halves: bool = False) -> Decoded:
    """``decode_all`` through the cache (unless GANKIT_CACHE=0); bad files refused or reported, also on a hit."""
    cache = _cache_path(root, files, config, halves) if cache_enabled() else None
    decoded = _cache_load(cache, len(files)) if cache else None
    if decoded is None:
        decoded = decode_all(root, files, config, halves)
        if cache:
            _cache_save(cache, decoded)
    _report_bad(root, decoded.bad, config.bad_files)
    if len(decoded.kept) == 0:
        raise GankitError(f"{root}: none of its {len(files)} images could be decoded")
    return decoded


def decode_all(root: Path, files: list[Path], config: DataConfig, halves: bool = False) -> Decoded:
    """Decode every file once into a uint8 array [N, C, H, W]; bad files raise or are skipped (data.bad_files).

    ``halves``: each file is two images side by side (pix2pix's A|B), each treated as a whole image would be
    and put side by side again, so x[..., :W // 2] is A and x[..., W // 2:] is B."""
    bad: dict[int, str] = {}
    modes, sizes = {}, {}
    for i, path in enumerate(files):  # headers only: cheap, and enough to choose channels and check sizes
        try:
            modes[i], sizes[i] = probe(path)
        except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...) for bad files
            bad[i] = _refuse_or_note(path, e, config.bad_files)
            continue
        if halves and sizes[i][0] % 2:
            raise GankitError(f"{path}: is {sizes[i][0]} pixels wide, an odd width; a side-by-side A|B image needs "
                              f"an even one (A the left half, B the right)")
    channels = config.channels or (1 if all(m in GREY_MODES for m in modes.values()) else 3)
    if config.image_size:
        width = height = config.image_size
        width *= 1 + halves
    else:
        width, height = _one_size(root, files, sizes)
    x = np.empty((len(sizes), channels, height, width), dtype=np.uint8)
    kept = []
    for i in sizes:
        try:
            pixels = decode(files[i], "L" if channels == 1 else "RGB", config.image_size, halves)  # [H, W(, 3)]
        except Exception as e:
            bad[i] = _refuse_or_note(files[i], e, config.bad_files)
            continue
        x[len(kept)] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        kept.append(i)
    return Decoded(x=x[:len(kept)], kept=np.array(kept, dtype=np.int64),
                   bad=[(str(files[i].relative_to(root)), bad[i]) for i in sorted(bad)])


def probe(path: Path) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) from the file's header, without decoding its pixels."""
    from PIL import Image

    with Image.open(path) as image:
        return image.mode, image.size


def decode(path: Path, mode: str, size: int, halves: bool = False) -> np.ndarray:
    """The image as uint8 [H, W] (mode L) or [H, W, 3] (RGB); with size > 0, its centre square resized to size.
    ``halves``: its left and right halves each so treated, side by side again ([size, 2 * size(, 3)])."""
    from PIL import Image

    with Image.open(path) as image:
        if size:
            image.draft(mode, ((1 + halves) * size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale while >= size
        image = image.convert(mode)
        if not halves:
            return _square(image, size)
        w, h = image.size
        return np.concatenate([_square(image.crop(box), size) for box in ((0, 0, w // 2, h), (w // 2, 0, w, h))],
                              axis=1)


def _square(image, size: int) -> np.ndarray:
    """A Pillow image as an array; with size > 0, its centre square resized to size x size."""
    from PIL import Image

    if size:
        w, h = image.size
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        # Lanczos, as StyleGAN's dataset tool; resizing the box is resize-shorter-side + centre-crop in one pass.
        image = image.resize((size, size), Image.Resampling.LANCZOS, box=box)
    return np.asarray(image)


def _one_size(root: Path, files: list[Path], sizes: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """The (width, height) all images share, as data.image_size = 0 needs."""
    if not sizes:
        return 0, 0
    first = next(iter(sizes))
    for i, size in sizes.items():
        if size != sizes[first]:
            (w1, h1), (w2, h2) = sizes[first], size
            raise GankitError(f"{root}: images differ in size: {files[first].relative_to(root)} is {w1}x{h1}, "
                              f"{files[i].relative_to(root)} is {w2}x{h2} (width x height); set data.image_size "
                              f"to resize and centre-crop them all to one square size")
    return sizes[first]


def _refuse_or_note(path: Path, error: Exception, bad_files: str) -> str:
    """Why ``path`` could not be decoded, on one line; raised at once when data.bad_files = "error"."""
    why = " ".join(str(error).split())[:200] or type(error).__name__
    if bad_files == "error":
        raise _undecodable(path, why)
    return why


def _undecodable(path: Path, why: str) -> GankitError:
    return GankitError(f"{path}: cannot be decoded as an image ({why}); fix or remove it, "
                       f'or set data.bad_files = "skip"')


def _report_bad(root: Path, bad: list[tuple[str, str]], bad_files: str) -> None:
    """Refuse (data.bad_files = "error") or warn about files that could not be decoded; also on a cache hit."""
    if not bad:
        return
    if bad_files == "error":
        raise _undecodable(root / bad[0][0], bad[0][1])
    names = ", ".join([f"{bad[0][0]} ({bad[0][1][:80]})"] + [name for name, _ in bad[1:3]])  # why, once
    names += f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    print(f"gankit: warning: {root}: skipped {len(bad)} image(s) that could not be decoded: {names}", file=sys.stderr)


# --------------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gankit"


def cache_enabled() -> bool:
    """False when GANKIT_CACHE=0: nothing is read from or written to cache_dir()."""
    return os.environ.get("GANKIT_CACHE", "1") != "0"


def files_digest(settings: list, files: list[Path]) -> str:
    """A hash of the settings and of the files (absolute path, size, mtime): what a cache entry is keyed by."""
    digest = hashlib.sha256(json.dumps(settings).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:24]


def _cache_path(root: Path, files: list[Path], config: DataConfig, halves: bool = False) -> Path:
    """The cache file for these files (path, size, mtime) decoded with these settings."""
    from PIL import __version__ as pillow

    settings = [CACHE_VERSION, pillow, config.image_size, config.channels] + (["halves"] if halves else [])
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name)[:40] or "root"
    return cache_dir() / f"images-{slug}-{files_digest(settings, files)}.npz"


def _cache_load(path: Path, num_files: int) -> Decoded | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            decoded = Decoded(x=saved["x"], kept=saved["kept"],
                              bad=list(zip(saved["bad_files"].tolist(), saved["bad_why"].tolist())))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged entry is decoded again and overwritten
    if (decoded.x.dtype != np.uint8 or decoded.x.ndim != 4 or len(decoded.x) != len(decoded.kept)
            or (len(decoded.kept) and decoded.kept.max() >= num_files)):
        return None  # not what this version writes: decode again
    return decoded


def _cache_save(path: Path, decoded: Decoded) -> None:
    """Write atomically: a crash never leaves a half-written entry."""
    buffer = io.BytesIO()
    np.savez(buffer, x=decoded.x, kept=decoded.kept,
             bad_files=np.array([name for name, _ in decoded.bad], dtype=str),
             bad_why=np.array([why for _, why in decoded.bad], dtype=str))
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as e:  # a cache that cannot be written only costs time
        print(f"gankit: warning: could not write the image cache {path} ({e.strerror or e}); set GANKIT_CACHE=0 "
              f"to stop trying", file=sys.stderr)
