"""The user's image-to-image data: a paired folder (pix2pix) or two unpaired ones (CycleGAN).

    data.name = "pairs", data.layout = "folders":       facades/A/1.jpg beside facades/B/1.jpg, matched by name
    data.name = "pairs", data.layout = "side-by-side":  facades/1.jpg holding A | B, as pix2pix's data sets come
    data.name = "unpaired", data.path_a, data.path_b:   horse2zebra/trainA/ and horse2zebra/trainB/

Decoding (data.channels per side, data.image_size, data.bad_files) and its cache are the image folders'
(``gankit.data.images``). A held-out set -- data.holdout of the images if > 0, else min(64, max(1, N // 10)),
drawn with the seed -- is kept out of training for the pictures and ``gankit eval``. Pairs whose B is an
integer multiple (> 1) of A's size on both sides are super-resolution data (task "sr", that factor).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from .dataset import DATASETS, RawData
from .images import decode_cached, find_images, probe
from .translation import translation_raw

LAYOUTS = ("folders", "side-by-side")
HELD_OUT_MAX = 64  # held-out images when data.holdout = 0: enough for a picture and a score, few enough to spare


@DATASETS.register("pairs")
def paired_folder(config: DataConfig, seed: int) -> RawData:
    """Paired images (data.path) in one of LAYOUTS, as described at the top of this module."""
    if not config.path:
        raise GankitError('data.path is empty: data.name = "pairs" needs a folder with A/ and B/ sub-folders '
                          '(data.layout = "folders") or of A|B images (data.layout = "side-by-side")')
    if config.layout not in LAYOUTS:
        raise GankitError(f"data.layout = {config.layout!r}: expected one of {', '.join(LAYOUTS)}")
    root = Path(config.path).expanduser().resolve()
    a, b = _side_by_side(root, config) if config.layout == "side-by-side" else _folders(root, config)
    held = held_out(len(a), config.holdout, np.random.default_rng(seed), f"{root}: {len(a)} pair(s)")
    train = _others(len(a), held)
    factor = _factor(a.shape[2:], b.shape[2:])
    return translation_raw(_pixels(b[train]), _pixels(a[train]), _pixels(a[held]), _pixels(b[held]),
                           factor=factor, task="sr" if factor > 1 else "paired", domains=("A", "B"))


@DATASETS.register("unpaired")
def unpaired_folders(config: DataConfig, seed: int) -> RawData:
    """Two folders of images, domain A (data.path_a) and domain B (data.path_b), each held out from as above."""
    rng = np.random.default_rng(seed)
    (a, held_a, name_a), (b, held_b, name_b) = (_domain(config, key, rng) for key in ("path_a", "path_b"))
    return translation_raw(b, a, held_a, held_b, paired=False, task="unpaired", domains=(name_a, name_b))


def held_out(n: int, share: float, rng: np.random.Generator, what: str) -> np.ndarray:
    """Sorted indices of the held-out images among n: round(share * n) (at least 1) when share > 0, else
    min(HELD_OUT_MAX, max(1, n // 10)); drawn by a seeded permutation. ``what`` names the images in errors."""
    m = max(1, round(share * n)) if share > 0 else min(HELD_OUT_MAX, max(1, n // 10))
    if n - m < 1:
        raise GankitError(f"{what}, {m} held out, leaves none to train on; expected at least {m + 1} "
                          f"(add images or lower data.holdout)")
    return np.sort(rng.permutation(n)[:m])


def _others(n: int, held: np.ndarray) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return keep


def _pixels(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255)  # uint8 [N, C, H, W] -> [0, 1]


def _factor(a_size: tuple[int, int], b_size: tuple[int, int]) -> int:
    """B's side / A's side when that is one integer > 1 on both axes (super-resolution), else 1."""
    k = b_size[0] // a_size[0]
    return k if k > 1 and tuple(b_size) == (k * a_size[0], k * a_size[1]) else 1


def _flat_images(root: Path, what: str) -> list[Path]:
    """The images directly in ``root``: sub-folders there would be classes, which image-to-image data has none of."""
    files, labels, names = find_images(root)
    if labels is not None:
        raise GankitError(f"{root}: holds its images in sub-folders ({names[0]}/, ...); {what} expects them "
                          f"directly in it")
    return files


# --------------------------------------------------------------------------------------------- pairs


def _folders(root: Path, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, C_a, H_a, W_a] and [N, C_b, H_b, W_b] of A/ and B/'s files with the same name (stem)."""
    if not root.is_dir():
        raise GankitError(f"{root}: folder not found; data.path must be a folder with A/ and B/ sub-folders")
    stems = {}
    for side in "AB":
        if not (root / side).is_dir():
            raise GankitError(f'{root}: has no {side}/ sub-folder; data.layout = "folders" expects A/ and B/ '
                              f'holding files of the same names (or set data.layout = "side-by-side" for A|B images)')
        stems[side] = _by_stem(root / side, _flat_images(root / side, 'data.layout = "folders"'))
    unmatched = ([f"A/{stems['A'][s].name}" for s in sorted(stems["A"].keys() - stems["B"].keys())]
                 + [f"B/{stems['B'][s].name}" for s in sorted(stems["B"].keys() - stems["A"].keys())])
    if unmatched:
        more = f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
        raise GankitError(f"{root}: {len(unmatched)} file(s) have no partner of the same name in the other of A/ "
                          f"and B/: {', '.join(unmatched[:3])}{more}; expected the same names (stems) in both")
    names = sorted(stems["A"])
    files_a, files_b = [stems["A"][s] for s in names], [stems["B"][s] for s in names]
    size_a = _size_of_a(config.image_size, files_a[0], files_b[0])
    a = decode_cached(root / "A", files_a, replace(config, image_size=size_a))
    b = decode_cached(root / "B", files_b, config)
    both = np.intersect1d(a.kept, b.kept)  # data.bad_files = "skip": a pair with either side undecodable goes
    return a.x[np.searchsorted(a.kept, both)], b.x[np.searchsorted(b.kept, both)]


def _by_stem(folder: Path, files: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        if path.stem in found:
            raise GankitError(f"{folder}: {found[path.stem].name} and {path.name} share the name {path.stem!r}; "
                              f"expected one file per name, to pair with the other side's")
        found[path.stem] = path
    return found


def _size_of_a(size: int, first_a: Path, first_b: Path) -> int:
    """data.image_size applies to B; A is resized to size / factor when the first pair is super-resolution."""
    if not size:
        return 0
    try:
        (wa, ha), (wb, hb) = probe(first_a)[1], probe(first_b)[1]
    except Exception:  # an undecodable file: decoding refuses or skips it (data.bad_files)
        return size
    k = _factor((ha, wa), (hb, wb))
    if size % k:
        raise GankitError(f"data.image_size = {size}: not a multiple of {k}, the factor between B/{first_b.name} "
                          f"({wb}x{hb}) and A/{first_a.name} ({wa}x{ha}); expected e.g. {size // k * k or k}")
    return size // k


def _side_by_side(root: Path, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, C, H, W] of the left halves (A) and of the right halves (B) of the images in ``root``."""
    if not root.is_dir():
        raise GankitError(f"{root}: folder not found; data.path must be a folder of A|B images")
    files = _flat_images(root, 'data.layout = "side-by-side"')
    x = decode_cached(root, files, config, halves=True).x  # [N, C, H, 2W]
    half = x.shape[3] // 2
    return x[..., :half], x[..., half:]


# --------------------------------------------------------------------------------------------- unpaired


def _domain(config: DataConfig, key: str, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The training and held-out images ([N, C, H, W] in [0, 1]) of the folder data.<key>, and its name."""
    path = getattr(config, key)
    if not path:
        raise GankitError(f'data.{key} is empty: data.name = "unpaired" needs data.path_a and data.path_b, '
                          f"a folder of PNG/JPEG images for each domain")
    root = Path(path).expanduser().resolve()
    try:
        files = _flat_images(root, f"data.{key}")
    except GankitError as e:
        raise GankitError(f"data.{key}: {e}") from None
    x = decode_cached(root, files, config).x
    held = held_out(len(x), config.holdout, rng, f"data.{key} = {root}: {len(x)} image(s)")
    return _pixels(x[_others(len(x), held)]), _pixels(x[held]), root.name
