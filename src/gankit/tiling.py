"""Running a fully convolutional image-to-image network on images of any size, without visible seams.

``pad_to_multiple`` pads an image by reflection so its sides divide by the network's multiple (a U-Net with k
levels needs 2 ** k), and the caller crops the output back. ``translate_tiled`` cuts an image too large for one
pass into overlapping tiles, runs the network on them in batches and feathers the outputs together: each tile's
weight is 0 over the outer quarter of an overlap (where the tile's own edge spoils its output), ramps linearly
to 1 over the middle half, and the sum is divided by the summed weights. A network whose receptive field reaches
at most overlap / 4 pixels gives exactly its whole-image output; a wider one, a smooth blend with no seam.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def pad_to_multiple(image: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """(image [N, C, H', W'] with H', W' the next multiples of ``multiple``, the original (H, W)). Reflection
    padding, or replication where the image is too small to reflect."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return image, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode), (h, w)


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins along one side: every ``step``, the last aligned to the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramp(size: int, overlap: int, lead: bool, trail: bool) -> Tensor:
    """[size] weights along one side of a tile: where a neighbour comes before (``lead``) the weight is 0 over the
    first quarter of the overlap (the pixels a tile's edge spoils), rises linearly over the middle half, and is 1
    after; mirrored where one comes after (``trail``); 1 elsewhere. The neighbour's weight is 1 wherever this one's
    is 0, so every pixel has weight."""
    w = torch.ones(size, dtype=torch.float64)
    if overlap:
        i = torch.arange(overlap, dtype=torch.float64) + 0.5
        ramp = ((i - overlap / 4) / (overlap / 2)).clamp(0.0, 1.0)
        if lead:
            w[:overlap] = torch.minimum(w[:overlap], ramp)
        if trail:
            w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def translate_tiled(fn: Callable[[Tensor], Tensor], image: Tensor, factor: int = 1, tile: int = 256,
                    overlap: int = 32, multiple: int = 1, batch: int = 8) -> Tensor:
    """``fn`` over ``image`` [N, C, H, W] tile by tile; ``fn`` maps [n, C, h, w] (sides multiples of ``multiple``)
    to [n, C', h * factor, w * factor]. Returns [N, C', H * factor, W * factor]."""
    if tile < 1 or tile % multiple:
        raise ValueError(f"tile = {tile}: expected a positive multiple of multiple = {multiple}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap = {overlap}: expected 0 <= overlap < tile = {tile}")
    padded, (h, w) = pad_to_multiple(image, multiple)
    H, W = padded.shape[-2:]
    step = max((tile - overlap) // multiple * multiple, multiple)
    th, tw = min(tile, H), min(tile, W)
    ys, xs = _starts(H, th, step), _starts(W, tw, step)
    boxes = [(y, x) for y in ys for x in xs]
    out = weight = None
    for n in range(len(padded)):
        for i in range(0, len(boxes), batch):
            chunk = boxes[i:i + batch]
            result = fn(torch.cat([padded[n:n + 1, :, y:y + th, x:x + tw] for y, x in chunk]))  # [b, C', th f, tw f]
            if out is None:
                out = torch.zeros(len(padded), result.shape[1], H * factor, W * factor, dtype=torch.float64)
                weight = torch.zeros(H * factor, W * factor, dtype=torch.float64)
            for (y, x), part in zip(chunk, result):
                # the overlap actually shared with the neighbour (the last tile may overlap more)
                wy = _ramp(th * factor, overlap * factor, y > 0, y + th < H)
                wx = _ramp(tw * factor, overlap * factor, x > 0, x + tw < W)
                wmap = wy[:, None] * wx[None, :]
                ys_, xs_ = slice(y * factor, (y + th) * factor), slice(x * factor, (x + tw) * factor)
                out[n, :, ys_, xs_] += part.double() * wmap
                if n == 0:
                    weight[ys_, xs_] += wmap
    return (out / weight).to(image.dtype)[..., :h * factor, :w * factor]
