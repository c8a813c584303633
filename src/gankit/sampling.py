"""Pictures of generated images: pixels, grids, the fixed noise batch of a run's grids, and GIFs.

A chain of small functions, each usable on its own:

    images [N, C, H, W] (normalised)  --to_pixels-->  uint8 [N, H, W, C]  --image_grid-->  PIL image
    G + fixed_batch(...)  --generator_grid-->  PIL image;  grids  --save_gif-->  an animation

Pixel mapping. Image data is min-max normalised to [-1, 1] (``data.normalize = "minmax"``, what the
built-in image sets use): the data's lowest value (its black, 0 for 8-bit images and for ``digits``)
is -1 and its highest (white: 255, or 16 for ``digits``) is 1. So a generated value x becomes

    pixel = round((x - lo) / (hi - lo) * 255), clipped to 0..255, with (lo, hi) = (-1, 1)

which is (x + 1) / 2 * 255: a digit's grey level v in 0..16 shows as round(v / 16 * 255). For data
normalised otherwise, pass the range that should be black and white (e.g. the real data's min and max).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

MINMAX_RANGE = (-1.0, 1.0)  # what black and white are after minmax normalisation
GRID_SIDE = 8  # an unconditional grid is GRID_SIDE x GRID_SIDE samples
PER_CLASS = 10  # samples in each class row of a conditional grid
MAX_CLASSES = 32  # a conditional grid shows the first MAX_CLASSES classes, one row each


def to_pixels(images: Tensor | np.ndarray, value_range: tuple[float, float] | None = MINMAX_RANGE) -> np.ndarray:
    """uint8 pixels [N, H, W, C] from images [N, C, H, W] in the networks' (normalised) space.

    ``value_range`` = (black, white) in that space; (-1, 1) for minmax-normalised data (see the module
    docstring); ``None`` stretches the batch's own min..max. Values outside are clipped; NaN is black.
    """
    x = images.detach().float().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"images of shape {x.shape}: expected [N, C, H, W]")
    lo, hi = value_range if value_range is not None else (np.nanmin(x), np.nanmax(x))
    unit = (np.nan_to_num(x, nan=lo) - lo) / max(hi - lo, 1e-12)
    pixels = np.floor(np.clip(unit, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)  # round half up
    return pixels.transpose(0, 2, 3, 1)  # [N, H, W, C]


def picture_range(data) -> tuple[float, float]:
    """Black and white of a data set's pictures: -1 and 1 for minmax data, else the real data's extremes."""
    return MINMAX_RANGE if data.normalize == "minmax" else (data.x.min().item(), data.x.max().item())


def to_image(pixels: np.ndarray):
    """A PIL image of one image's uint8 pixels [H, W, C]: mode "L" for C = 1, "RGB" for C = 3."""
    from PIL import Image

    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or pixels.dtype != np.uint8:
        raise ValueError(f"pixels {pixels.dtype} {pixels.shape}: expected uint8 [H, W, C] with C = 1 or 3")
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels))


def image_grid(pixels: np.ndarray, nrow: int = GRID_SIDE, padding: int = 1, pad_value: int = 64,
               min_width: int = 512, row_labels: Sequence[str] | None = None):
    """One picture of many images: ``nrow`` images per row, ``padding`` pixels around each, as a PIL image.

    ``pixels``: uint8 [N, H, W, C] with C = 1 (grey, mode "L") or 3 (RGB). A row that is not full is
    padded. The grid is enlarged by a whole factor with nearest-neighbour (sharp pixels) until it is at
    least ``min_width`` pixels wide, so an 8 x 8 grid of 8x8 digits is 584 px wide, not 73. With
    ``row_labels``, each label is written in a margin at the left of its row.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[3] not in (1, 3) or pixels.dtype != np.uint8:
        raise ValueError(f"pixels {pixels.dtype} {pixels.shape}: expected uint8 [N, H, W, C] with C = 1 or 3")
    n, h, w, c = pixels.shape
    nrow = max(1, min(nrow, n))
    rows = math.ceil(n / nrow)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    step_h, step_w = h + padding, w + padding
    grid = np.full((rows * step_h + padding, nrow * step_w + padding, c), pad_value, np.uint8)
    for i in range(n):
        top, left = padding + (i // nrow) * step_h, padding + (i % nrow) * step_w
        grid[top:top + h, left:left + w] = pixels[i]
    scale = max(1, math.ceil(min_width / grid.shape[1]))
    image = to_image(grid.repeat(scale, axis=0).repeat(scale, axis=1))  # nearest-neighbour enlargement
    if row_labels is not None:
        image = _label_rows(image, row_labels, top=padding * scale, pitch=step_h * scale, cell=h * scale,
                             pad_value=pad_value)
    return image


def _label_rows(grid, labels: Sequence[str], top: int, pitch: int, cell: int, pad_value: int):
    """``grid`` with a left margin holding each row's label, centred on the row."""
    from PIL import Image, ImageDraw

    def colour(v: int):
        return v if grid.mode == "L" else (v, v, v)

    font = _font(size=max(10, min(cell // 2, 24)))
    boxes = [ImageDraw.Draw(grid).textbbox((0, 0), text, font=font) for text in labels]  # (x0, y0, x1, y1)
    margin = max(b[2] - b[0] for b in boxes) + 2 * max(4, cell // 8)
    out = Image.new(grid.mode, (grid.width + margin, grid.height), colour(pad_value))
    out.paste(grid, (margin, 0))
    draw = ImageDraw.Draw(out)
    for i, (text, (x0, y0, x1, y1)) in enumerate(zip(labels, boxes)):
        centre = top + i * pitch + cell / 2
        draw.text(((margin - (x1 - x0)) / 2 - x0, centre - (y1 - y0) / 2 - y0), text, font=font,
                  fill=colour(255 if pad_value < 128 else 0))
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # a scalable font, Pillow >= 10.1
    except TypeError:
        return ImageFont.load_default()


def save_gif(frames: Sequence, path: str | Path, duration: int | Sequence[int] = 400) -> Path:
    """An animated GIF of PIL images that loops forever; ``duration`` in ms, one for all or one per frame.

    Frames take the first frame's size and mode. Note that Pillow merges a frame identical to the one
    before into it (adding up their durations).
    """
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    first = frames[0]
    rest = [f if f.size == first.size else f.resize(first.size) for f in frames[1:]]
    rest = [f.convert(first.mode) if f.mode != first.mode else f for f in rest]
    durations = list(duration) if not isinstance(duration, int) else [duration] * len(frames)
    first.save(path, save_all=True, append_images=rest, duration=durations, loop=0)
    return Path(path)


def fixed_batch(z_dim: int, num_classes: int = 0, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """The noise (and labels) of a run's grids: the same for the same seed, on any device, in any session.

    Unconditional: 64 noise vectors (an 8 x 8 grid). Conditional: ``PER_CLASS`` vectors for each of the
    first ``MAX_CLASSES`` classes, labels 0, 0, ..., 1, 1, ... (one row per class).
    """
    g = torch.Generator().manual_seed(seed)
    if not num_classes:
        return torch.randn(GRID_SIDE * GRID_SIDE, z_dim, generator=g), None
    classes = min(num_classes, MAX_CLASSES)
    y = torch.arange(classes).repeat_interleave(PER_CLASS)  # [classes * PER_CLASS]
    return torch.randn(len(y), z_dim, generator=g), y


def seeded_inputs(n: int, z_dim: int, seed: int, class_frequencies: Sequence[float] | Tensor | None = None,
                  label: int | None = None, truncation: float | None = None) -> tuple[Tensor, Tensor | None]:
    """``n`` noise vectors and, for a conditional G, class indices: ``label`` for all, else drawn with
    ``class_frequencies``. The same seed gives the same inputs, so ``gankit sample`` and ``gankit eval``
    with one seed see one set of samples. ``truncation`` t redraws the entries of z outside [-t, t]
    (see ``truncate``); the other entries and the labels stay those of the untruncated draw."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=g)
    y = None
    if class_frequencies is not None and len(class_frequencies) > 0:
        y = (torch.full((n,), label, dtype=torch.long) if label is not None else
             torch.multinomial(torch.as_tensor(class_frequencies, dtype=torch.float), n, replacement=True, generator=g))
    if truncation is not None:
        truncate(z, truncation, g)
    return z, y


def truncate(z: Tensor, t: float, generator: torch.Generator | None = None) -> Tensor:
    """The truncation trick (Brock et al. 2019, BigGAN), in place: entries of z ~ N(0, 1) with |z| > t are
    redrawn from N(0, 1) restricted to [-t, t], so every entry is then distributed as that truncated normal.

    Drawn in one pass by the inverse CDF (u uniform on [Phi(-t), Phi(t)], z = Phi^-1(u)) rather than by
    rejection, which would take thousands of rounds for a small t. Smaller t: typical samples, less variety.
    """
    if not t > 0:
        raise ValueError(f"truncation {t}: expected a positive number")
    outside = z.abs() > t
    count = int(outside.sum())
    if count:
        lo = torch.special.ndtr(torch.tensor(-float(t), dtype=torch.float64))
        u = lo + (1 - 2 * lo) * torch.rand(count, generator=generator, dtype=torch.float64)
        z[outside] = torch.special.ndtri(u).clamp_(-t, t).to(z.dtype)
    return z


@torch.no_grad()
def run_generator(G: nn.Module, z: Tensor, y: Tensor | None = None, batch_size: int = 1024) -> Tensor:
    """``G(z, y)`` in batches on G's device and in eval mode (batch norm uses its running statistics; G's
    mode is restored afterwards); the output is on the CPU."""
    device = next(iter(G.parameters()), torch.empty(0)).device
    was_training = G.training
    G.eval()
    try:
        return torch.cat([G(z[i:i + batch_size].to(device), None if y is None else y[i:i + batch_size].to(device))
                          .cpu() for i in range(0, len(z), batch_size)])
    finally:
        G.train(was_training)


def generator_grid(G: nn.Module, z: Tensor, y: Tensor | None = None, class_names: Sequence[str] = (),
                   value_range: tuple[float, float] | None = MINMAX_RANGE, batch_size: int = 256):
    """The grid of ``G(z, y)``: 8 per row without labels; with labels, one row per class named at the left.

    G runs in eval mode (batch norm uses its running statistics) and gets its mode back afterwards.
    ``z``/``y`` come from ``fixed_batch`` and live on G's device.
    """
    pixels = to_pixels(run_generator(G, z, y, batch_size), value_range)  # from [N, C, H, W]
    if y is None:
        return image_grid(pixels, nrow=GRID_SIDE)
    classes = y.cpu().unique_consecutive().tolist()
    names = [class_names[k] if k < len(class_names) else str(k) for k in classes]
    return image_grid(pixels, nrow=len(y) // len(classes), row_labels=names)


def read_frames(paths: Iterable[Path], max_frames: int = 50) -> list:
    """PIL images of ``paths`` (in order), at most ``max_frames`` spread evenly, always the first and the last."""
    from PIL import Image

    paths = list(paths)
    if len(paths) > max_frames:
        keep = np.unique(np.linspace(0, len(paths) - 1, max_frames).round().astype(int))
        paths = [paths[i] for i in keep]
    frames = []
    for p in paths:
        with Image.open(p) as im:
            frames.append(im.copy())
    return frames
