"""Using a trained image translator: ``gankit apply RUN --input IMAGE_OR_DIR_OR_NPY --out DIR_OR_NPY``.

The generator is fully convolutional, so it takes images of any size: sides that do not divide by its multiple
(a U-Net's 2 ** levels) are padded by reflection and the output cropped back, and images larger than a tile
are translated tile by tile with overlapping, feathered seams (``gankit.tiling``). Inputs come in the layout
they are given and go out in it: an image file -> a PNG, a folder -> a folder of PNGs under the same relative
names, an ``.npy`` of pixels in [0, 1] ([N, C, H, W], [N, H, W] or uint8 0..255) -> an ``.npy`` [N, C', H', W']
float32 in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoint import load_checkpoint, unprefixed
from .errors import GankitError
from .product_loader import load_generator
from .runs import RunDir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TILE, OVERLAP = 256, 32  # input pixels per tile and between tiles: a U-Net's 70-pixel patches fit well inside


def load_translator(run_dir: str | Path, checkpoint: str = "latest", ema: bool | None = None,
                    reverse: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """A run's translator G: A -> B (``reverse``: CycleGAN's F: B -> A), in eval mode, and the checkpoint's
    metadata; from safetensors and JSON only."""
    if not reverse:
        G, meta, _, _ = load_generator(run_dir, checkpoint, ema)
        if "translation" not in meta["data"]:
            raise GankitError(f"{run_dir}: this run's generator draws samples from noise; gankit apply runs an "
                              f"image-to-image run (pix2pix, srgan, cyclegan)")
        return G, meta
    from .models.translators import build_translator

    run = RunDir(Path(run_dir))
    tensors, meta = load_checkpoint(run.checkpoint_file(checkpoint), prefix="")
    if not any(k.startswith("F.") for k in tensors):
        raise GankitError(f"{run.path}: --reverse needs a CycleGAN run (it has F: B -> A); this run has only G")
    model = meta["model"]
    kwargs = {**model["kwargs"], "in_channels": model["kwargs"]["out_channels"],
              "out_channels": model["kwargs"]["in_channels"]}
    F = build_translator(model["family"], kwargs)
    name = "F_ema" if any(k.startswith("F_ema.") for k in tensors) and ema is not False else "F"
    F.load_state_dict(unprefixed(name, tensors))
    meta["generator"] = name
    return F.eval(), meta


@torch.no_grad()
def translate(G: nn.Module, pixels: Tensor, tile: int = TILE, overlap: int = OVERLAP, batch_size: int = 64) -> Tensor:
    """Pixels [N, C, H, W] in [0, 1] -> G's outputs as pixels [N, C', H * f, W * f] in [0, 1], f = G's factor.

    Images are batched when they fit in one tile; a larger image goes tile by tile."""
    from .tiling import pad_to_multiple, translate_tiled

    device = next(G.parameters()).device
    factor, multiple = int(getattr(G, "factor", 1)), int(getattr(G, "multiple", 1))

    def run(x: Tensor) -> Tensor:  # [n, C, h, w] in [-1, 1], sides multiples of G's multiple
        return G(x.to(device)).float().cpu()

    h, w = pixels.shape[-2:]
    net = pixels.float() * 2.0 - 1.0
    if max(h, w) <= tile:
        padded, _ = pad_to_multiple(net, multiple)
        out = torch.cat([run(padded[i:i + batch_size]) for i in range(0, len(padded), batch_size)])
        out = out[..., :h * factor, :w * factor]
    else:
        tile = max(tile // multiple, 1) * multiple
        out = torch.cat([translate_tiled(run, net[i:i + 1], factor=factor, tile=tile, overlap=overlap,
                                         multiple=multiple) for i in range(len(net))])
    return ((out + 1.0) / 2.0).clamp_(0.0, 1.0)


# ------------------------------------------------------------------------------------------- files in, files out


def read_inputs(path: str | Path, channels: int) -> tuple[list[Tensor], list[str], str]:
    """(images [1, C, H, W] in [0, 1] each (an .npy: one batch [N, C, H, W]), their names, layout "file" |
    "folder" | "npy") from ``path``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise GankitError(f"--input {path}: no such file or folder")
    if path.suffix.lower() == ".npy":
        return _read_npy(path, channels), [], "npy"
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise GankitError(f"--input {path}: the folder holds no PNG or JPEG images")
        return [_read_image(f, channels) for f in files], [str(f.relative_to(path)) for f in files], "folder"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise GankitError(f"--input {path}: expected a PNG/JPEG image, a folder of them, or an .npy array")
    return [_read_image(path, channels)], [path.name], "file"


def _read_image(path: Path, channels: int) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise GankitError(f"{path}: cannot decode the image ({e})") from None
    x = torch.from_numpy(array.copy()).float().div_(255.0)
    return (x[None] if x.dim() == 2 else x.permute(2, 0, 1))[None]  # [1, C, H, W]


def _read_npy(path: Path, channels: int) -> list[Tensor]:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GankitError(f"{path}: not a readable .npy array ({e})") from None
    if array.ndim == 3 and channels == 1:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] != channels:
        raise GankitError(f"{path}: array of shape {list(array.shape)}; expected images [N, {channels}, H, W]"
                          f"{' or [N, H, W]' if channels == 1 else ''} (the run's generator takes {channels} "
                          f"channel{'s' if channels > 1 else ''})")
    if array.dtype == np.uint8:
        x = torch.from_numpy(array).float().div_(255.0)
    else:
        x = torch.from_numpy(np.asarray(array, np.float32))
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise GankitError(f"{path}: pixel values must be finite and in [0, 1] (or uint8 0..255); got "
                              f"[{float(x.nan_to_num().min()):.3g}, {float(x.nan_to_num().max()):.3g}]")
    return [x]  # one batch: small images go through G together


def write_outputs(outputs: list[Tensor], names: list[str], layout: str, out: str | Path) -> list[Path]:
    """Write translated images in the input's layout; returns the files written."""
    out = Path(out).expanduser()
    if layout == "npy":
        if out.suffix.lower() != ".npy":
            raise GankitError(f"--out {out}: an .npy input gives an .npy output; name it *.npy")
        shapes = {tuple(o.shape[1:]) for o in outputs}
        if len(shapes) > 1:
            raise GankitError(f"--out {out}: outputs of different sizes {sorted(shapes)} do not stack")
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, torch.cat(outputs).numpy().astype(np.float32))
        return [out]
    if out.suffix.lower() in IMAGE_SUFFIXES:
        if layout != "file":
            raise GankitError(f"--out {out}: a folder of inputs gives a folder of outputs; name a folder")
        targets = [out]
    else:
        targets = [out / Path(n).with_suffix(".png") for n in names]
    from PIL import Image

    for image, target in zip(outputs, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        array = (image[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(target)
    return targets


def apply_files(run_dir: str | Path, input: str | Path, out: str | Path, checkpoint: str = "latest",
                ema: bool | None = None, reverse: bool = False, tile: int = TILE, overlap: int = OVERLAP) -> list[Path]:
    """``gankit apply``: translate the images at ``input`` with the run's generator and write them to ``out``."""
    G, _ = load_translator(run_dir, checkpoint, ema, reverse)
    images, names, layout = read_inputs(input, int(G.in_channels))
    outputs = [translate(G, x, tile, overlap) for x in images]
    return write_outputs(outputs, names, layout, out)


def apply(run_dir: str | Path, images, checkpoint: str = "latest", ema: bool | None = None, reverse: bool = False,
          tile: int = TILE, overlap: int = OVERLAP) -> np.ndarray:
    """``gankit.apply``: a run's translations of ``images`` ([N, C, H, W] or [N, H, W] pixels in [0, 1], or uint8)
    as float32 pixels [N, C', H * f, W * f] in [0, 1]."""
    G, _ = load_translator(run_dir, checkpoint, ema, reverse)
    array = np.array(images)  # a copy: the caller's array may be read-only
    if array.ndim == 3 and G.in_channels == 1:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] != G.in_channels:
        raise GankitError(f"images of shape {list(array.shape)}: the run's generator takes [N, {G.in_channels}, H, W]")
    x = torch.from_numpy(array).float().div_(255.0) if array.dtype == np.uint8 else torch.as_tensor(array).float()
    return translate(G, x, tile, overlap).numpy()
