"""Built-in image-to-image tasks: super-resolution, pix2pix and CycleGAN data that need no download.

    sr-fashion-mnist   7x7 (or 14x14) -> 28x28 Fashion-MNIST, inputs made by bicubic downsampling
    sr-photos          random crops of scikit-image's bundled colour photos, 4x (data.factor)
    edges2fashion      Canny edge maps -> Fashion-MNIST images (pix2pix's edges2shoes, at 28x28)
    sneaker2boot       Fashion-MNIST sneakers <-> ankle boots, unpaired (CycleGAN's horse2zebra, small)

Each loader returns the targets (domain B) as ``x`` and G's inputs in ``RawData.translation``, all pixels in
[0, 1], with a held-out set that training never sees: for the Fashion-MNIST tasks the test split's images, for
sr-photos two whole photos. Everything is a function of (config, seed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from . import idx, images
from .dataset import DATASETS, RawData, Translation

SR_FASHION_FACTORS = (2, 4)  # the factors that divide 28 and leave an input worth enlarging (14x14, 7x7)
HELD_OUT_TEST = 2000  # Fashion-MNIST tasks: the first test images are the held-out set (sneaker2boot: all of both)
TRAIN_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                "camera", "grass", "gravel", "brick", "coins")  # the last five are grey: RGB with R = G = B
FLAT = 0.03  # sr-photos: training crops whose pixels vary less than this (std) are redrawn: black sky teaches nothing
HELD_OUT_PHOTOS = ("chelsea", "coffee")  # a cat and a cup: subjects no training photo shows
MAX_CROP_BYTES = 4 * 2**30  # sr-photos: the float32 training crops may take at most this much memory
# Canny's Gaussian sigma on 28x28 pixels in [0, 1]: 1.0 keeps each garment's closed outline and its main seams
# (collars, sleeves, soles) while smoothing away most print texture; 0.5 traces the texture, 2.0 breaks outlines.
EDGE_SIGMA = 1.0
EDGES_VERSION = 1  # bump when the edge maps change, so old cache entries are not reused
SNEAKER, ANKLE_BOOT = 7, 9  # Fashion-MNIST classes of sneaker2boot's domains A and B


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H / factor, W / factor]: bicubic with antialiasing, SRGAN's way of making inputs
    (Ledig et al. 2017 used MATLAB's bicubic imresize, which antialiases too), clamped back to [0, 1]."""
    h, w = x.shape[-2:]
    if factor < 1 or h % factor or w % factor:
        raise GankitError(f"data.factor = {factor}: does not divide the {h}x{w} images' sides; expected a divisor")
    small = torch.nn.functional.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True,
                                            align_corners=False)
    return small.clamp_(0, 1)


def translation_raw(x: torch.Tensor, source: torch.Tensor, held_source: torch.Tensor, held_target: torch.Tensor,
                    **facts) -> RawData:
    """What an image-to-image loader returns: targets ``x`` and G's inputs ``source``, pixels [N, C, H, W] in [0, 1];
    ``facts`` are the other fields of ``Translation`` (paired, factor, task, domains, classes)."""
    return RawData(x=x, normalize="minmax", value_range=(0.0, 1.0),
                   translation=Translation(source=source, held_source=held_source, held_target=held_target, **facts))


def _fixed_images(config: DataConfig, task: str, channels: int, sizes: str) -> None:
    """Refuse data.image_size and a data.channels the task cannot honour: load_data would convert the targets
    alone, leaving G's inputs as they were."""
    if config.image_size:
        raise GankitError(f"data.image_size = {config.image_size}: the {task} task's sizes are fixed ({sizes}); "
                          f"leave data.image_size at 0")
    if config.channels not in (0, channels):
        raise GankitError(f"data.channels = {config.channels}: the {task} task's images have {channels} "
                          f"channel(s); leave data.channels at 0")


# --------------------------------------------------------------------------------------------- Fashion-MNIST


def _fashion(config: DataConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A Fashion-MNIST split as pixels [N, 1, 28, 28] in [0, 1] and labels [N], read by the fashion-mnist loader
    (data.path or the Debian package's folder), so a missing set gets that loader's message."""
    raw = idx.fashion_mnist(replace(config, split=split), 0)
    return raw.x.div_(255), raw.y


def _fashion_held_out(config: DataConfig) -> torch.Tensor:
    return _fashion(config, "test")[0][:HELD_OUT_TEST].clone()  # a copy: the rest of the split is freed


@DATASETS.register("sr-fashion-mnist")
def sr_fashion_mnist(config: DataConfig, seed: int) -> RawData:
    """Super-resolution of Fashion-MNIST by data.factor (2 or 4): small and fast enough to try SRGAN on a CPU."""
    factor = config.factor
    if factor not in SR_FASHION_FACTORS:
        raise GankitError(f"data.factor = {factor}: sr-fashion-mnist's 28x28 images allow a factor of "
                          f"{' or '.join(map(str, SR_FASHION_FACTORS))} (14x14 or 7x7 inputs)")
    _fixed_images(config, "sr-fashion-mnist", 1, "28x28 Fashion-MNIST")
    target, held = _fashion(config, "train")[0], _fashion_held_out(config)  # [60000, 1, 28, 28], [2000, ...]
    return translation_raw(target, downsample(target, factor), downsample(held, factor), held,
                           factor=factor, task="sr", domains=("low-res", "high-res"))


@DATASETS.register("edges2fashion")
def edges2fashion(config: DataConfig, seed: int) -> RawData:
    """pix2pix from Canny edge maps of Fashion-MNIST images (domain A) to the images (B), as edges2shoes."""
    _fixed_images(config, "edges2fashion", 1, "28x28 Fashion-MNIST")
    target, held = _fashion(config, "train")[0], _fashion_held_out(config)
    edges, held_edges = _cached_edges(config, target, held)
    return translation_raw(target, edges, held_edges, held, task="paired", domains=("edges", "fashion-mnist"))


def edge_map(x: torch.Tensor, sigma: float = EDGE_SIGMA) -> torch.Tensor:
    """Grey images [N, 1, H, W] in [0, 1] -> Canny edge maps [N, 1, H, W] in {0, 1} (Canny 1986, scikit-image's),
    one image at a time (about 0.17 ms each at 28x28)."""
    from skimage.feature import canny

    pixels = x[:, 0].numpy()  # [N, H, W]
    return torch.from_numpy(np.stack([canny(p, sigma=sigma) for p in pixels])).unsqueeze(1).float()


def _cached_edges(config: DataConfig, *batches: torch.Tensor) -> list[torch.Tensor]:
    """``edge_map`` of each batch, through the image cache: ~10 s for Fashion-MNIST's 62,000 images, then a read.
    Keyed by the IDX image files (path, size, mtime), the sigma, scikit-image's version and EDGES_VERSION."""
    import skimage

    sizes = [len(b) for b in batches]
    cache = None
    if images.cache_enabled():
        folder = Path(config.path).expanduser() if config.path else idx.FASHION_DIR
        files = [idx._find(folder, f"{prefix}-images-idx3-ubyte", "").resolve() for prefix in ("train", "t10k")]
        settings = ["edges2fashion", EDGES_VERSION, EDGE_SIGMA, skimage.__version__, sizes]
        cache = images.cache_dir() / f"edges2fashion-{images.files_digest(settings, files)}.npz"
    saved = images._cache_load(cache, sum(sizes)) if cache else None
    if saved is not None and len(saved.x) == sum(sizes):
        edges = torch.from_numpy(saved.x).float()
    else:
        edges = torch.cat([edge_map(b) for b in batches])  # [N, 1, 28, 28] in {0, 1}
        if cache:
            kept = np.arange(len(edges), dtype=np.int64)
            images._cache_save(cache, images.Decoded(x=edges.to(torch.uint8).numpy(), kept=kept, bad=[]))
    return list(edges.split(sizes))


@DATASETS.register("sneaker2boot")
def sneaker2boot(config: DataConfig, seed: int) -> RawData:
    """CycleGAN between Fashion-MNIST's sneakers (domain A) and ankle boots (B): unpaired, 6,000 of each to
    train on, the test split's 1,000 of each held out."""
    _fixed_images(config, "sneaker2boot", 1, "28x28 Fashion-MNIST")
    (train, train_y), (test, test_y) = _fashion(config, "train"), _fashion(config, "test")
    return translation_raw(train[train_y == ANKLE_BOOT], train[train_y == SNEAKER], test[test_y == SNEAKER],
                           test[test_y == ANKLE_BOOT], paired=False, task="unpaired", classes=(SNEAKER, ANKLE_BOOT),
                           domains=("sneaker", "ankle boot"))


# --------------------------------------------------------------------------------------------- photos


def _photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos, [H, W, 3] uint8; these ship inside its wheel, nothing is downloaded."""
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image)


def held_out_photos() -> dict[str, np.ndarray]:
    """sr-photos' held-out photos by name, [H, W, 3] uint8: whole images for demos that training never saw."""
    return {name: _photo(name) for name in HELD_OUT_PHOTOS}


@DATASETS.register("sr-photos")
def sr_photos(config: DataConfig, seed: int) -> RawData:
    """Super-resolution (data.factor) of data.n random data.crop-sided crops of five photos; held out: the
    crop-sized tiles of two other photos, so the scores measure photos the networks never saw."""
    factor, crop = config.factor, config.crop
    _fixed_images(config, "sr-photos", 3, "data.crop sets them")
    if crop % factor:
        raise GankitError(f"data.crop = {crop}: not a multiple of data.factor = {factor}; expected e.g. "
                          f"{crop // factor * factor or factor}")
    need = 3 * config.n * 3 * crop * crop * 4  # three candidates per crop, as float32
    if need > MAX_CROP_BYTES:
        raise GankitError(f"data.n = {config.n}: drawing {config.n} crops of {crop}x{crop} takes {need / 2**30:.1f} GiB; "
                          f"lower data.n (at most {MAX_CROP_BYTES // (9 * crop * crop * 4)}) or data.crop")
    train = [_photo(name) for name in TRAIN_PHOTOS]
    held = held_out_photos()
    sides = {name: min(p.shape[:2]) for name, p in [*zip(TRAIN_PHOTOS, train), *held.items()]}
    smallest = min(sides, key=sides.get)
    if crop > sides[smallest]:
        raise GankitError(f"data.crop = {crop}: larger than the {smallest} photo's shorter side "
                          f"({sides[smallest]} pixels); expected at most {sides[smallest]}")
    target = random_crops(train, config.n, crop, np.random.default_rng(seed))  # [n, 3, crop, crop]
    held_target = torch.from_numpy(np.concatenate([_tiles(p, crop) for p in held.values()])).float().div_(255)
    return translation_raw(target, downsample(target, factor), downsample(held_target, factor), held_target,
                           factor=factor, task="sr", domains=("low-res", "high-res"))


def random_crops(photos: list[np.ndarray], n: int, crop: int, rng: np.random.Generator) -> torch.Tensor:
    """n crops [n, 3, crop, crop] in [0, 1] of photos [H, W, 3] uint8: each from a photo drawn uniformly (so the
    large, mostly black hubble and retina images do not dominate), at a uniform position, half of them mirrored;
    of three candidates per crop the first n that are not flat (pixel std >= FLAT) are kept."""
    m = 3 * n
    which = rng.integers(len(photos), size=m)
    corner = rng.random((m, 2))  # top, left as fractions of the positions a crop can take
    flip = rng.random(m) < 0.5
    out = torch.empty(m, 3, crop, crop)
    for k, photo in enumerate(photos):
        rows = np.flatnonzero(which == k)
        h, w = photo.shape[:2]
        top = (corner[rows, 0] * (h - crop + 1)).astype(np.int64)
        left = (corner[rows, 1] * (w - crop + 1)).astype(np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(photo, (crop, crop), axis=(0, 1))  # [h', w', 3, c, c]
        patches = windows[top, left]  # [k, 3, crop, crop], a copy
        patches[flip[rows]] = patches[flip[rows]][..., ::-1]
        out[rows] = torch.from_numpy(patches).float().div_(255)
    varied = out.flatten(1).std(1) >= FLAT
    order = torch.cat([torch.nonzero(varied).flatten(), torch.nonzero(~varied).flatten()])  # flat ones last
    return out[order[:n].sort().values].contiguous()


def _tiles(photo: np.ndarray, crop: int) -> np.ndarray:
    """The non-overlapping crop x crop tiles of a photo [H, W, 3], as [T, 3, crop, crop] row by row; the grid is
    centred, so the margins left over are shared by both sides."""
    h, w = photo.shape[:2]
    rows, cols = h // crop, w // crop
    top, left = (h - rows * crop) // 2, (w - cols * crop) // 2
    grid = photo[top:top + rows * crop, left:left + cols * crop].reshape(rows, crop, cols, crop, 3)
    return grid.transpose(0, 2, 4, 1, 3).reshape(rows * cols, 3, crop, crop)
