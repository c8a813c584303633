"""An image-to-image run's generator as an export (``gankit export``), and the translations it gives back
(``gankit.load``, ``gankit serve``'s POST /v1/apply).

    EXPORT/manifest.json          product.kind "translator": inputs and outputs, channels, factor, multiple, the
                                  pixel scaling, the task and its domains, and the generator's constructor arguments
    EXPORT/generator.safetensors  G's weights (A -> B; the moving average when the run kept one)
    EXPORT/generator.onnx         optional: image [batch, C, height, width] float32 in [-1, 1], height and width
                                  multiples of ``multiple``  ->  translated [batch, C', f height, f width]

The networks work in [-1, 1]: x = 2 p - 1 for pixels p in [0, 1] in, and p' = clip((y + 1) / 2, 0, 1) out.
``ExportedTranslator.apply`` does what ``gankit.translate.translate`` does on either backend: pads the sides to
the multiple by reflection, runs G (tile by tile with feathered seams for an image over 256 pixels a side) and
crops back to f H x f W. On PyTorch it gives the run's G's output exactly. The ONNX model has dynamic batch,
height and width; before it is written onnxruntime is checked against PyTorch at two sizes, the training input's
and a larger non-square one, and refused (nothing is written) beyond the tolerance.

Loading reads JSON and safetensors only: ``models.translators.build_translator(family, kwargs)`` rebuilds G.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import GankitError
from .onnx_export import bundle_session, export_checked
from .products import TranslatorProduct
from .runs import RunDir
from .translate import OVERLAP, TILE

ONNX_INPUT, ONNX_OUTPUT = "image", "translated"
CHECK_BATCHES = (1, 3)  # images per parity check, at the training size and the larger one (the export example has 2)
TO_NETWORK, TO_PIXELS = "x = 2 * pixels - 1 (pixels in [0, 1])", "pixels = clip((y + 1) / 2, 0, 1)"


def translator_manifest(G: nn.Module, meta: dict[str, Any], source: dict[str, Any],
                        reverse: bool = False) -> dict[str, Any]:
    """The manifest of a translator export; ``source`` says which run, checkpoint and generator it is."""
    from . import __version__
    from .export import EXPORT_FORMAT

    translation = meta["data"]["translation"]
    product = TranslatorProduct(int(G.in_channels), int(G.out_channels), int(G.factor), int(G.multiple))
    domains = list(translation.get("domains") or ["A", "B"])
    c, c_out, f, m = product.in_channels, product.out_channels, product.factor, product.multiple
    out_h, out_w = ("height", "width") if f == 1 else (f"{f} height", f"{f} width")
    return {
        "format": EXPORT_FORMAT,
        "gankit_version": __version__,
        "product": {"kind": "translator", "inputs": product.inputs(), "outputs": product.outputs()},
        "family": meta["model"]["family"],
        "architecture": {"kwargs": G.config()},  # build_translator(family, kwargs); F's: G's, channels swapped
        "translation": {"task": translation["task"], "paired": translation.get("paired"),
                        "domains": domains[::-1] if reverse else domains,  # [from, to]
                        "source_shape": list(translation.get("source_shape") or [])},
        "labels": {"names": [], "frequencies": []},
        "input": {"channels": c, "multiple": m, "to_network": TO_NETWORK,
                  "padding": f"sides padded by reflection up to multiples of {m}, the output cropped back"},
        "output": {"kind": "image", "channels": c_out, "factor": f, "shape": product.outputs()[0]["shape"][1:],
                   "to_pixels": TO_PIXELS},
        "onnx": {"inputs": {ONNX_INPUT: ["batch", c, "height", "width",
                                         f"float32, {TO_NETWORK}; height and width multiples of {m}"]},
                 "outputs": {ONNX_OUTPUT: ["batch", c_out, out_h, out_w,
                                           f"float32 y; {TO_PIXELS}"]}},
        "source": source,
    }


class ExportedTranslator:
    """An image translator with its manifest: pixels [N, C, H, W] in [0, 1] -> pixels [N, C', f H, f W] in
    [0, 1], on PyTorch or onnxruntime. ``gankit.load`` gives one for a translator export (or run folder)."""

    kind = "translator"

    def __init__(self, manifest: dict[str, Any], G: nn.Module | None, path: Path | None = None):
        self.manifest, self.G, self.path = manifest, G, path
        self.in_channels: int = manifest["input"]["channels"]
        self.out_channels: int = manifest["output"]["channels"]
        self.factor: int = manifest["output"]["factor"]
        self.multiple: int = manifest["input"]["multiple"]
        self.calls = 0  # network calls so far
        self._onnx = None

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "latest", ema: bool | None = None,
                 reverse: bool = False) -> ExportedTranslator:
        """The translator of a run folder with the manifest an export would write (``ema`` as for
        ``gankit.translate.load_translator``; ``reverse``: CycleGAN's F: B -> A)."""
        from .translate import load_translator

        G, meta = load_translator(run_dir, checkpoint, ema, reverse)
        return cls(translator_manifest(G, meta, run_source(run_dir, checkpoint, meta), reverse), G)

    @property
    def what(self) -> str:
        """What it makes, in words (for messages)."""
        f = self.factor
        size = "h, w" if f == 1 else f"{f}h, {f}w"
        return f"translations of images [{self.in_channels}, h, w] into [{self.out_channels}, {size}]"

    def run(self, x: np.ndarray, backend: str = "torch") -> np.ndarray:
        """G on network inputs x [n, C, h, w] float32 in [-1, 1], sides multiples of ``multiple``
        -> y [n, C', f h, f w] (unclipped)."""
        self.calls += 1
        if backend == "onnx":
            return self.onnx_session().run([ONNX_OUTPUT], {ONNX_INPUT: np.ascontiguousarray(x, np.float32)})[0]
        if self.G is None:
            raise GankitError("this export has no PyTorch weights")
        with torch.inference_mode():
            return self.G(torch.from_numpy(x)).numpy()

    def apply(self, pixels: np.ndarray, backend: str = "torch", tile: int = TILE, overlap: int = OVERLAP,
              batch_size: int = 64) -> np.ndarray:
        """Pixels [N, C, H, W] in [0, 1] (float, or uint8 0..255) -> float32 pixels [N, C', f H, f W] in [0, 1].

        As ``gankit.translate.translate``: padded to the multiple and cropped back, batched when an image fits
        in one ``tile``, else tile by tile with ``overlap`` feathered pixels (``gankit.tiling``)."""
        from .tiling import pad_to_multiple, translate_tiled

        x = self.check_pixels(pixels)  # [N, C, H, W] in [0, 1]
        f, m = self.factor, self.multiple

        def fn(net: Tensor) -> Tensor:  # [n, C, h, w] in [-1, 1], sides multiples of m -> [n, C', f h, f w]
            return torch.from_numpy(self.run(net.contiguous().numpy(), backend)).float()

        h, w = x.shape[-2:]
        net = x * 2.0 - 1.0
        if max(h, w) <= tile:
            padded, _ = pad_to_multiple(net, m)
            out = torch.cat([fn(padded[i:i + batch_size]) for i in range(0, len(padded), batch_size)])
            out = out[..., :h * f, :w * f]
        else:
            tile = max(tile // m, 1) * m
            out = torch.cat([translate_tiled(fn, net[i:i + 1], factor=f, tile=tile, overlap=overlap, multiple=m)
                             for i in range(len(net))])
        return ((out + 1.0) / 2.0).clamp_(0.0, 1.0).float().numpy()

    def check_pixels(self, pixels: np.ndarray) -> Tensor:
        """``pixels`` as a float tensor [N, C, H, W] in [0, 1]; ``GankitError`` naming what is wrong."""
        array = np.asarray(pixels)
        c = self.in_channels
        if array.ndim != 4 or array.shape[1] != c or 0 in array.shape:
            raise GankitError(f"pixels of shape {list(array.shape)}: this translator takes images [N, {c}, H, W]")
        if array.dtype == np.uint8:
            return torch.from_numpy(array.astype(np.float32) / 255.0)
        if array.dtype.kind != "f":
            raise GankitError(f"pixels of dtype {array.dtype}: expected floats in [0, 1] or uint8 0..255")
        x = torch.from_numpy(np.array(array, np.float32))  # a copy: the caller's array may be read-only
        if not bool(torch.isfinite(x).all()) or float(x.min()) < 0 or float(x.max()) > 1:
            finite = x.nan_to_num(0.5, 0.5, 0.5)
            raise GankitError(f"pixel values must be finite and in [0, 1] (or uint8 0..255); got "
                              f"[{float(finite.min()):.3g}, {float(finite.max()):.3g}]"
                              f"{'' if bool(torch.isfinite(x).all()) else ' and non-finite values'}")
        return x

    def check_sizes(self) -> list[tuple[int, int, int]]:
        """The (n, h, w) the ONNX check runs: the training input size, and a larger non-square one (about 2 and
        1.5 times the sides), both multiples of ``multiple``."""
        m = self.multiple
        shape = self.manifest["translation"]["source_shape"] or [self.in_channels, 4 * m, 4 * m]
        h, w = (m * max(1, math.ceil(s / m)) for s in shape[-2:])
        grow = m * max(1, math.ceil(max(h, w) / (2 * m)))
        return [(CHECK_BATCHES[0], h, w), (CHECK_BATCHES[1], h + 2 * grow, w + grow)]

    def check_input(self, n: int, h: int, w: int, seed: int) -> np.ndarray:
        """Random network inputs [n, C, h, w] in [-1, 1] for the ONNX check."""
        rng = np.random.default_rng(seed)
        return (rng.random((n, self.in_channels, h, w), dtype=np.float32) * 2 - 1).astype(np.float32)

    def onnx_model(self, tolerance: float) -> tuple[bytes, float, list[str]]:
        """(ONNX bytes of G with dynamic batch, height and width; the largest |onnxruntime - PyTorch|; the input
        shapes checked, "NxCxHxW"). Tries the dynamo exporter, then the legacy one; ``GankitError`` when neither
        exports or agrees within ``tolerance`` at both sizes. Records the exporter and each size's difference in
        ``manifest["onnx"]`` (which ``export.export`` writes)."""
        sizes = self.check_sizes()
        example = torch.from_numpy(self.check_input(2, *sizes[0][1:], seed=0))
        data, exporter, diffs = export_checked(
            f"this {self.manifest['family']} translator",
            lambda path, exporter: _export(self.G, example, path, exporter, self.multiple),
            lambda session: self._parity(session, sizes, tolerance))
        checked = [f"{n}x{self.in_channels}x{h}x{w}" for n, h, w in sizes]
        self.manifest["onnx"].update(exporter=exporter, checks=dict(zip(checked, diffs)))
        return data, max(diffs), checked

    def _parity(self, session, sizes: list[tuple[int, int, int]], tolerance: float
                ) -> tuple[list[float], str | None]:
        """(largest |onnxruntime - PyTorch| at each size, None or what failed at which size)."""
        diffs = []
        for i, (n, h, w) in enumerate(sizes):
            x = self.check_input(n, h, w, seed=i + 1)
            ours = self.run(x)
            theirs = session.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
            at = f"input [{n}, {self.in_channels}, {h}, {w}]"
            if theirs.shape != ours.shape:
                return diffs, f"at {at} onnxruntime gave shape {list(theirs.shape)}, PyTorch {list(ours.shape)}"
            diffs.append(float(np.abs(theirs.astype(np.float64) - ours).max()))
            if not diffs[-1] <= tolerance:
                return diffs, f"at {at} onnxruntime differs from PyTorch by up to {diffs[-1]:.3g} (> {tolerance:g})"
        return diffs, None

    def onnx_session(self, threads: int = 0):
        return bundle_session(self, threads)


def _export(G: nn.Module, example: Tensor, path: Path, exporter: str, multiple: int) -> None:
    """torch.onnx.export of G to ``path`` with dynamic batch, height and width (height and width multiples of
    ``multiple``: torch.export needs that stated, or a U-Net's skips would pin the sizes)."""
    if exporter == "dynamo":
        Dim = torch.export.Dim
        batch = Dim("batch", min=1, max=1 << 20)
        if multiple > 1:
            height, width = multiple * Dim("height_blocks", max=1 << 14), multiple * Dim("width_blocks", max=1 << 14)
        else:
            height, width = Dim("height", max=1 << 16), Dim("width", max=1 << 16)
        program = torch.onnx.export(G, (example,), input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                                    dynamo=True, dynamic_shapes=({0: batch, 2: height, 3: width},), verbose=False)
        program.save(str(path))
        return
    torch.onnx.export(G, (example,), str(path), input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT], dynamo=False,
                      dynamic_axes={ONNX_INPUT: {0: "batch", 2: "height", 3: "width"},
                                    ONNX_OUTPUT: {0: "batch", 2: "out_height", 3: "out_width"}})


def run_source(run_dir: str | Path, checkpoint: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``source``: which run, checkpoint, step and generator."""
    return {"run": str(RunDir(Path(run_dir)).path.resolve()), "checkpoint": checkpoint, "step": meta["step"],
            "generator": meta["generator"], "data": meta["data"]["name"]}


def load_translator_export(path: Path, manifest: dict[str, Any], state: dict[str, Tensor]) -> ExportedTranslator:
    """The translator of an export folder from its manifest and weights (``export.load`` has read both)."""
    from .models.translators import build_translator

    kwargs = manifest.get("architecture", {}).get("kwargs")
    if not isinstance(kwargs, dict):
        raise GankitError(f"{path}: the manifest's architecture has no generator arguments (kwargs)")
    G = build_translator(manifest["family"], kwargs)
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise GankitError(f"{path}: the weights do not fit the manifest's architecture "
                          f"({lines[1].strip() if len(lines) > 1 else e})") from None
    model = ExportedTranslator(manifest, G.eval(), path)
    built = (G.in_channels, G.out_channels, G.factor, G.multiple)
    if built != (model.in_channels, model.out_channels, model.factor, model.multiple):
        raise GankitError(f"{path}: the manifest's channels, factor and multiple disagree with its architecture's "
                          f"{list(built)}")
    return model
