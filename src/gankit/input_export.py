"""What the exports of models that take samples in share: an anomaly scorer's (``scorer_export``) and a
classifier's (``classifier_export``).

    EXPORT/manifest.json        the product's inputs and outputs; ``input``: the shape, the units a user sends
                                and how they become the networks' units
    EXPORT/<kind>.safetensors   the network's weights, rebuilt from ``architecture.<kind>`` alone
    EXPORT/<kind>.onnx          optional: x [batch, *shape] float32 in the networks' units -> the outputs

Inputs come in the units a user holds. Rows are in the data's own units u: x = (u - shift) / scale per column.
Images are pixels p in [0, 1] (floats, or uint8 0..255): x = 2 p - 1, what black and white are in a
minmax-normalised run (``anomaly_inputs`` reads image folders so too); an image run normalised otherwise takes
its images in the data's units, as rows.

The ONNX model has a dynamic batch; before it is written onnxruntime is checked against PyTorch on random
inputs at several batch sizes, and refused (nothing is written) beyond the tolerance. Loading reads JSON and
safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import GankitError
from .fileio import atomic_write
from .onnx_export import bundle_session, export_checked
from .runs import RunDir

if TYPE_CHECKING:  # export imports this module
    from .export import ExportResult

CHECK_BATCHES = (1, 7, 64)  # batch sizes of the ONNX check: the batch dimension must really be dynamic
PIXELS = "x = 2 * p - 1 (pixels p in [0, 1], or uint8 p * 255)"
DIFFERENCE = "max |onnxruntime - PyTorch| / max(1, max |PyTorch|), per output, over random inputs"
DATA_UNITS = "x = (u - shift) / scale (u in the data's own units; per column for rows, per channel for images)"


def product_kind(run_dir: str | Path, checkpoint: str = "latest") -> str | None:
    """The kind of product a run folder's checkpoint holds ("scorer", "classifier"; None for a generator), from
    its JSON header only; None where it cannot be read, so the generator's loader reports the problem."""
    from .checkpoint import read_meta

    try:
        return read_meta(RunDir(Path(run_dir)).checkpoint_file(checkpoint))["model"].get("kind")
    except (GankitError, KeyError, TypeError, AttributeError):
        return None


def input_section(shape: Sequence[int], data: dict[str, Any], shift: Tensor, scale: Tensor) -> dict[str, Any]:
    """The manifest's ``input``: the samples' shape, the units a user sends them in and how they become the
    networks' units (pixels for a minmax-normalised image run, else the data's units)."""
    image = len(shape) == 3
    pixels = image and data.get("normalize") == "minmax"
    return {"kind": "image" if image else "rows", "shape": list(shape), "units": "pixels" if pixels else "data",
            "to_network": PIXELS if pixels else DATA_UNITS, "normalize": data.get("normalize"),
            "shift": shift.flatten().tolist(), "scale": scale.flatten().tolist(),
            "columns": list(data.get("columns") or [])}


class InputModel:
    """A network that takes samples, with its manifest: inputs in the user's units -> the networks' units, the
    network on PyTorch or onnxruntime, its checked ONNX twin. Subclasses name the files, the ONNX outputs and
    how the network is rebuilt (``build``); ``run`` gives the outputs of network inputs."""

    kind = ""  # the product's kind, and the manifest's architecture key
    WEIGHTS, ONNX_MODEL = "", ""
    ONNX_INPUT, ONNX_OUTPUTS = "x", ()

    def __init__(self, manifest: dict[str, Any], network: nn.Module | None, path: Path | None = None):
        self.manifest, self.network, self.path = manifest, network, path
        put = manifest["input"]
        self.shape: tuple[int, ...] = tuple(put["shape"])
        stat = (self.shape[0], 1, 1) if len(self.shape) == 3 else self.shape[-1:]  # per channel or per column
        self.shift = np.asarray(put["shift"], np.float32).reshape(stat)
        self.scale = np.asarray(put["scale"], np.float32).reshape(stat)
        self.takes_pixels: bool = put["units"] == "pixels"
        self._onnx = None

    @classmethod
    def from_export(cls, path: Path, manifest: dict[str, Any], state: dict[str, Tensor]) -> InputModel:
        """The model of an export folder from its manifest and weights (``export.load`` has read both)."""
        settings = manifest.get("architecture", {}).get(cls.kind)
        if not isinstance(settings, dict):
            raise GankitError(f"{path}: the manifest's architecture has no {cls.kind} settings")
        try:
            network = cls.build(settings)
            network.load_state_dict(state)
        except (KeyError, ValueError, TypeError) as e:
            raise GankitError(f"{path}: the manifest's {cls.kind} settings cannot be built ({e})") from None
        except RuntimeError as e:
            lines = str(e).splitlines()
            raise GankitError(f"{path}: the weights do not fit the manifest's {cls.kind} "
                              f"({lines[1].strip() if len(lines) > 1 else e})") from None
        return cls(manifest, network.eval(), path)

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def expected(self) -> str:
        """The inputs it takes, in words (for messages)."""
        if not self.is_image:
            return f"rows [N, {self.shape[0]}] in the data's units"
        c, h, w = self.shape
        shapes = f"[N, {c}, {h}, {w}]" + (f" or [N, {h}, {w}]" if c == 1 else "")
        return f"images {shapes} of " + ("pixels in [0, 1] (or uint8 0..255)" if self.takes_pixels
                                         else "values in the data's units")

    def to_network(self, x: np.ndarray | Sequence) -> np.ndarray:
        """Inputs in the user's units (see ``expected``) -> x [N, *shape] float32 in the networks' units;
        ``GankitError`` naming what is wrong (shape, dtype, non-finite or out-of-range values)."""
        array = np.asarray(x)
        if array.dtype.kind not in "iuf":
            raise GankitError(f"inputs of dtype {array.dtype}: expected numbers, {self.expected}")
        if self.is_image and self.shape[0] == 1 and array.ndim == 3:
            array = array[:, None]  # grey [N, H, W] -> [N, 1, H, W]
        if array.shape[1:] != self.shape or len(array) == 0:
            raise GankitError(f"inputs of shape {list(np.shape(x))}: this {self.kind} takes {self.expected}, N > 0")
        if self.takes_pixels and array.dtype == np.uint8:
            return (array.astype(np.float32) / 255.0) * 2.0 - 1.0
        values = array.astype(np.float32)
        finite = np.isfinite(values)
        if not finite.all():
            at = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise GankitError(f"inputs{list(at)} = {values[at]}: expected finite numbers")
        if self.takes_pixels:
            lo, hi = float(values.min()), float(values.max())
            if lo < 0 or hi > 1:
                raise GankitError(f"pixel values in [{lo:.3g}, {hi:.3g}]: expected pixels in [0, 1] (floats) or "
                                  f"uint8 0..255")
            return values * 2.0 - 1.0
        return (values - self.shift) / self.scale

    @classmethod
    def build(cls, settings: dict[str, Any]) -> nn.Module:
        """The network with fresh weights from the manifest's ``architecture.<kind>`` settings."""
        raise NotImplementedError

    def run(self, x: np.ndarray, backend: str = "torch"):
        """The network on x [n, *shape] float32 in the networks' units -> its outputs, a tuple in the order of
        ``ONNX_OUTPUTS`` (numpy), on PyTorch or onnxruntime."""
        if backend == "onnx":
            feeds = {self.ONNX_INPUT: np.ascontiguousarray(x, np.float32)}
            return tuple(self.onnx_session().run(list(self.ONNX_OUTPUTS), feeds))
        if backend != "torch":
            raise GankitError(f"backend {backend!r}: expected torch or onnx")
        if self.network is None:
            raise GankitError("this export has no PyTorch weights")
        with torch.inference_mode():
            out = self.network(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        return tuple(t.numpy() for t in (out if isinstance(out, tuple) else (out,)))

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """PyTorch's outputs of ``run`` as a tuple (a subclass's ``run`` may give its one output bare)."""
        out = self.run(x)
        return out if isinstance(out, tuple) else (out,)

    def check_input(self, n: int, seed: int) -> np.ndarray:
        """Random network inputs [n, *shape] for the ONNX check: uniform in [-1, 1] for pixels, else normal."""
        rng = np.random.default_rng(seed)
        shape = (n, *self.shape)
        x = rng.random(shape, dtype=np.float32) * 2 - 1 if self.takes_pixels else rng.standard_normal(shape)
        return x.astype(np.float32)

    def onnx_model(self, tolerance: float) -> tuple[bytes, float, list[int]]:
        """(ONNX bytes of the network in eval mode, dynamic batch; the largest |onnxruntime - PyTorch| over the
        outputs, relative to an output's largest magnitude where that is over 1 (a score sums a sample's values);
        batches checked). Tries the dynamo exporter, then the legacy one; ``GankitError`` when neither agrees
        within ``tolerance``."""
        example = torch.from_numpy(self.check_input(2, seed=0))
        self.network.eval()  # no training-time randomness (dropout, noise layers) in the graph
        data, exporter, worst = export_checked(
            f"this {self.manifest['family']} {self.kind}",
            lambda path, exporter: _export(self.network, example, path, exporter, self.ONNX_INPUT, self.ONNX_OUTPUTS),
            lambda session: self._parity(session, tolerance))
        self.manifest["onnx"].update(exporter=exporter, difference=DIFFERENCE)
        return data, worst, list(CHECK_BATCHES)

    def _parity(self, session, tolerance: float) -> tuple[float, str | None]:
        """(the largest difference over the check batches, None or what failed at which batch)."""
        worst = 0.0
        for i, n in enumerate(CHECK_BATCHES):
            x = self.check_input(n, seed=i + 1)
            theirs = session.run(list(self.ONNX_OUTPUTS), {self.ONNX_INPUT: x})
            for name, ours, other in zip(self.ONNX_OUTPUTS, self.outputs(x), theirs):
                if other.shape != ours.shape:
                    return worst, (f"batch {n}: onnxruntime gave {name} of shape {list(other.shape)}, PyTorch "
                                   f"{list(ours.shape)}")
                diff = float(np.abs(other.astype(np.float64) - ours).max()) / max(1.0, float(np.abs(ours).max()))
                worst = max(worst, diff)
                if not diff <= tolerance:
                    return worst, (f"batch {n}: onnxruntime's {name} differs from PyTorch by {diff:.3g} "
                                   f"(> {tolerance:g})")
        return worst, None

    def onnx_session(self, threads: int = 0):
        """The onnxruntime session of the export's ONNX model, made once."""
        return bundle_session(self, threads, self.manifest.get("files", {}).get("onnx") or self.ONNX_MODEL)


def _export(network: nn.Module, example: Tensor, path: Path, exporter: str, input_name: str,
            output_names: Sequence[str]) -> None:
    """torch.onnx.export of ``network`` to ``path``: one input -> ``output_names``, dynamic batch; refused when
    the graph draws random numbers (a noise layer left in training mode)."""
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        program = torch.onnx.export(network, (example,), input_names=[input_name], output_names=list(output_names),
                                    dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(path))
    else:
        torch.onnx.export(network, (example,), str(path), input_names=[input_name], output_names=list(output_names),
                          dynamo=False, dynamic_axes={k: {0: "batch"} for k in (input_name, *output_names)})
    random = random_ops(path)
    if random:
        raise GankitError(f"the graph draws random numbers ({', '.join(random)}); export the network in eval mode")


def random_ops(path: Path) -> list[str]:
    """The operators of an ONNX file that draw random numbers (RandomNormal, RandomUniformLike, ...)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sorted({node.op_type for node in graph.node if node.op_type.startswith(("Random", "Multinomial",
                                                                                  "Bernoulli"))})


def write_export(model: InputModel, out: Path, formats: Sequence[str], tolerance: float) -> ExportResult:
    """Write ``model`` to ``out`` (``export.export`` of a scorer or classifier run): ONNX first, checked (nothing
    is written when it fails), then the weights, the manifest last (a folder with a manifest is a complete
    export)."""
    from safetensors.torch import save

    from .export import EXPORT_FORMAT, MANIFEST, ExportResult

    manifest = dict(model.manifest)
    manifest["files"] = {"weights": model.WEIGHTS}
    result = ExportResult(out, [], model.kind)
    onnx_bytes = None
    if "onnx" in formats:
        onnx_bytes, result.onnx_max_abs_diff, result.checked = model.onnx_model(tolerance)
        manifest["files"]["onnx"] = model.ONNX_MODEL
        manifest["onnx"] = {**model.manifest["onnx"], "max_abs_diff": result.onnx_max_abs_diff}
    state = {k: v.detach().contiguous() for k, v in model.network.state_dict().items()}
    writes = [(model.WEIGHTS, save(state, metadata={"format": EXPORT_FORMAT})),
              *([(model.ONNX_MODEL, onnx_bytes)] if onnx_bytes is not None else []),
              (MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())]
    if onnx_bytes is None:  # an earlier export's: it would not match these weights
        (out / model.ONNX_MODEL).unlink(missing_ok=True)
    for name, data in writes:
        atomic_write(out / name, data)
        result.files.append(out / name)
    return result
