"""An anomaly run's scorer as an export (``gankit export``), and the scores it gives back (``gankit.load``,
``gankit serve``'s POST /v1/score).

    EXPORT/manifest.json       product.kind "scorer": inputs and outputs, how inputs become the networks' units,
                               the threshold and its false-positive rate, the normal class, the scorer's settings
    EXPORT/scorer.safetensors  the scorer's weights (the players its score uses: G, and E and D for EGBAD)
    EXPORT/scorer.onnx         optional: x [batch, *shape] float32 in the networks' units -> score [batch],
                               reconstruction [batch, *shape]

Inputs come in the units a user holds. Rows are in the data's own units u: x = (u - shift) / scale per column.
Images are pixels p in [0, 1] (floats, or uint8 0..255): x = 2 p - 1, what black and white are in a
minmax-normalised run (``anomaly_inputs`` reads image folders so too); an image run normalised otherwise takes
its images in the data's units, as rows. A sample is flagged when its score is strictly above the run's
threshold, the (1 - fpr) quantile of the scores of normal data held out of training (``anomaly_scores``).

On PyTorch ``ExportedScorer.score`` gives the run's own scores. The ONNX model has a dynamic batch; before it is
written onnxruntime is checked against PyTorch on random inputs, and refused (nothing is written) beyond the
tolerance. Loading reads JSON and safetensors only: ``models.anomaly.build_scorer(settings)`` rebuilds the scorer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import GankitError
from .fileio import atomic_write
from .onnx_export import bundle_session, export_checked
from .products import ScorerProduct
from .runs import RunDir

if TYPE_CHECKING:  # export imports this module
    from .export import ExportResult

WEIGHTS, ONNX_MODEL = "scorer.safetensors", "scorer.onnx"
ONNX_INPUT, ONNX_OUTPUTS = "x", ("score", "reconstruction")
CHECK_BATCHES = (1, 7, 64)  # batch sizes of the ONNX check: the batch dimension must really be dynamic
PIXELS = "x = 2 * p - 1 (pixels p in [0, 1], or uint8 p * 255)"
DIFFERENCE = "max |onnxruntime - PyTorch| / max(1, max |PyTorch|), per output, over random inputs"
DATA_UNITS = "x = (u - shift) / scale (u in the data's own units; per column for rows, per channel for images)"


def is_scorer_run(run_dir: str | Path, checkpoint: str = "latest") -> bool:
    """Whether a run folder's checkpoint holds an anomaly scorer (reads its JSON header only); False where it
    cannot be read, so the generator's loader reports the problem."""
    from .checkpoint import read_meta

    try:
        return read_meta(RunDir(Path(run_dir)).checkpoint_file(checkpoint))["model"].get("kind") == "scorer"
    except (GankitError, KeyError, TypeError, AttributeError):
        return False


def scorer_manifest(scorer: nn.Module, meta: dict[str, Any], shift: Tensor, scale: Tensor,
                    threshold: dict[str, Any] | None, source: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a scorer export. ``threshold``: the run's record (``anomaly_scores.threshold``), or None
    when the run held no normal data out (then ``score`` needs a threshold given)."""
    from . import __version__
    from .export import EXPORT_FORMAT

    model, data = meta["model"], meta["data"]
    shape = [int(s) for s in model["shape"]]
    product = ScorerProduct(tuple(shape), scorer.settings(), float(model["fpr"]))
    image = len(shape) == 3
    pixels = image and data.get("normalize") == "minmax"
    anomaly = data.get("anomaly") or {}
    return {
        "format": EXPORT_FORMAT,
        "gankit_version": __version__,
        "product": {"kind": "scorer", "inputs": product.inputs(), "outputs": product.outputs()},
        "family": model["family"],
        "architecture": {"scorer": scorer.settings()},  # build_scorer(settings)
        "anomaly": {"normal": anomaly.get("normal", ""), "class_names": list(anomaly.get("class_names") or []),
                    "fpr": product.fpr, "threshold": None if threshold is None else float(threshold["threshold"]),
                    "held": int(anomaly.get("held", 0)), "held_fpr": None if threshold is None else
                    threshold.get("held_fpr"), "flag": "score > threshold", "score": "higher = more anomalous"},
        "input": {"kind": "image" if image else "rows", "shape": shape, "units": "pixels" if pixels else "data",
                  "to_network": PIXELS if pixels else DATA_UNITS, "normalize": data.get("normalize"),
                  "shift": shift.flatten().tolist(), "scale": scale.flatten().tolist(),
                  "columns": list(data.get("columns") or [])},
        "onnx": {"inputs": {ONNX_INPUT: ["batch", *shape, "float32 in the networks' units (input.to_network)"]},
                 "outputs": {"score": ["batch", "float32, higher = more anomalous"],
                             "reconstruction": ["batch", *shape, "float32 in the networks' units"]}},
        "source": source,
    }


class ExportedScorer:
    """An anomaly scorer with its manifest: samples in the user's units -> (scores, flags), on PyTorch or
    onnxruntime. ``gankit.load`` gives one for a scorer export (or run folder)."""

    kind = "scorer"

    def __init__(self, manifest: dict[str, Any], scorer: nn.Module | None, path: Path | None = None):
        self.manifest, self.scorer, self.path = manifest, scorer, path
        put = manifest["input"]
        self.shape: tuple[int, ...] = tuple(put["shape"])
        stat = (self.shape[0], 1, 1) if len(self.shape) == 3 else self.shape[-1:]  # per channel or per column
        self.shift = np.asarray(put["shift"], np.float32).reshape(stat)
        self.scale = np.asarray(put["scale"], np.float32).reshape(stat)
        self.takes_pixels: bool = put["units"] == "pixels"
        self.threshold: float | None = manifest["anomaly"]["threshold"]
        self.fpr: float = manifest["anomaly"]["fpr"]
        self.normal: str = manifest["anomaly"]["normal"]
        self._onnx = None

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "latest", ema: bool | None = None) -> ExportedScorer:
        """The scorer of a run folder with the manifest an export would write, and the run's threshold."""
        from .anomaly_scores import threshold
        from .product_loader import load_scorer

        if ema:
            raise GankitError(f"--ema: {run_dir} is an anomaly scorer run, which keeps no moving average")
        scorer, meta, shift, scale = load_scorer(run_dir, checkpoint)
        held = (meta["data"].get("anomaly") or {}).get("held", 0)
        record = threshold(run_dir, checkpoint) if held else None
        source = {"run": str(RunDir(Path(run_dir)).path.resolve()), "checkpoint": checkpoint, "step": meta["step"],
                  "generator": "scorer", "data": meta["data"]["name"]}
        return cls(scorer_manifest(scorer, meta, shift, scale, record, source), scorer)

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

    @property
    def what(self) -> str:
        return f"anomaly scores of {self.expected}"

    def to_network(self, x: np.ndarray | Sequence) -> np.ndarray:
        """Inputs in the user's units (see ``expected``) -> x [N, *shape] float32 in the networks' units;
        ``GankitError`` naming what is wrong (shape, dtype, non-finite or out-of-range values)."""
        array = np.asarray(x)
        if array.dtype.kind not in "iuf":
            raise GankitError(f"inputs of dtype {array.dtype}: expected numbers, {self.expected}")
        if self.is_image and self.shape[0] == 1 and array.ndim == 3:
            array = array[:, None]  # grey [N, H, W] -> [N, 1, H, W]
        if array.shape[1:] != self.shape or len(array) == 0:
            raise GankitError(f"inputs of shape {list(np.shape(x))}: this scorer takes {self.expected}, N > 0")
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

    def run(self, x: np.ndarray, backend: str = "torch") -> tuple[np.ndarray, np.ndarray]:
        """The scorer on x [n, *shape] float32 in the networks' units -> (score [n], reconstruction [n, *shape])."""
        if backend == "onnx":
            score, rec = self.onnx_session().run(list(ONNX_OUTPUTS), {ONNX_INPUT: np.ascontiguousarray(x, np.float32)})
            return score, rec
        if backend != "torch":
            raise GankitError(f"backend {backend!r}: expected torch or onnx")
        if self.scorer is None:
            raise GankitError("this export has no PyTorch weights")
        with torch.inference_mode():
            score, rec = self.scorer(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        return score.numpy(), rec.numpy()

    def score(self, x: np.ndarray | Sequence, backend: str = "torch", threshold: float | None = None,
              batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores float32 [N], higher = more anomalous; flags bool [N], score > threshold) of inputs in the
        user's units (``expected``), ``batch_size`` at a time. ``threshold`` overrides the run's; flags are None
        when there is neither (a run that held no normal data out of training)."""
        t = self.threshold if threshold is None else threshold
        if t is not None and not math.isfinite(t):
            raise GankitError(f"threshold {t}: expected a finite number")
        net = self.to_network(x)  # [N, *shape]
        scores = np.concatenate([self.run(net[i:i + batch_size], backend)[0] for i in range(0, len(net), batch_size)])
        return scores.astype(np.float32), None if t is None else scores > t

    def check_input(self, n: int, seed: int) -> np.ndarray:
        """Random network inputs [n, *shape] for the ONNX check: uniform in [-1, 1] for pixels, else normal."""
        rng = np.random.default_rng(seed)
        shape = (n, *self.shape)
        x = rng.random(shape, dtype=np.float32) * 2 - 1 if self.takes_pixels else rng.standard_normal(shape)
        return x.astype(np.float32)

    def onnx_model(self, tolerance: float) -> tuple[bytes, float, list[int]]:
        """(ONNX bytes of the scorer, dynamic batch; the largest |onnxruntime - PyTorch| over both outputs, relative
        to the output's largest magnitude where that is over 1 (a score sums a sample's values); batches checked).
        Tries the dynamo exporter, then the legacy one; ``GankitError`` when neither agrees within ``tolerance``."""
        example = torch.from_numpy(self.check_input(2, seed=0))
        data, exporter, worst = export_checked(
            f"this {self.manifest['family']} scorer", lambda path, exporter: _export(self.scorer, example, path, exporter),
            lambda session: self._parity(session, tolerance))
        self.manifest["onnx"].update(exporter=exporter, difference=DIFFERENCE)
        return data, worst, list(CHECK_BATCHES)

    def _parity(self, session, tolerance: float) -> tuple[float, str | None]:
        """(the largest difference over the check batches, None or what failed at which batch)."""
        worst = 0.0
        for i, n in enumerate(CHECK_BATCHES):
            x = self.check_input(n, seed=i + 1)
            theirs = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: x})
            for name, ours, other in zip(ONNX_OUTPUTS, self.run(x), theirs):
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
        return bundle_session(self, threads, self.manifest.get("files", {}).get("onnx") or ONNX_MODEL)


def _export(scorer: nn.Module, example: Tensor, path: Path, exporter: str) -> None:
    """torch.onnx.export of the scorer to ``path``: x -> (score, reconstruction), dynamic batch."""
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        program = torch.onnx.export(scorer, (example,), input_names=[ONNX_INPUT], output_names=list(ONNX_OUTPUTS),
                                    dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(path))
        return
    torch.onnx.export(scorer, (example,), str(path), input_names=[ONNX_INPUT], output_names=list(ONNX_OUTPUTS),
                      dynamo=False, dynamic_axes={k: {0: "batch"} for k in (ONNX_INPUT, *ONNX_OUTPUTS)})


def export_scorer(model: ExportedScorer, out: Path, formats: Sequence[str], tolerance: float) -> ExportResult:
    """Write ``model`` to ``out`` (``export.export`` of a scorer run): ONNX first, checked (nothing is written when
    it fails), then the weights, the manifest last (a folder with a manifest is a complete export)."""
    from safetensors.torch import save

    from .export import EXPORT_FORMAT, MANIFEST, ExportResult

    manifest = dict(model.manifest)
    manifest["files"] = {"weights": WEIGHTS}
    result = ExportResult(out, [], "scorer")
    onnx_bytes = None
    if "onnx" in formats:
        onnx_bytes, result.onnx_max_abs_diff, result.checked = model.onnx_model(tolerance)
        manifest["files"]["onnx"] = ONNX_MODEL
        manifest["onnx"] = {**model.manifest["onnx"], "max_abs_diff": result.onnx_max_abs_diff}
    state = {k: v.detach().contiguous() for k, v in model.scorer.state_dict().items()}
    writes = [(WEIGHTS, save(state, metadata={"format": EXPORT_FORMAT})),
              *([(ONNX_MODEL, onnx_bytes)] if onnx_bytes is not None else []),
              (MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())]
    if onnx_bytes is None:  # an earlier export's: it would not match these weights
        (out / ONNX_MODEL).unlink(missing_ok=True)
    for name, data in writes:
        atomic_write(out / name, data)
        result.files.append(out / name)
    return result


def load_scorer_export(path: Path, manifest: dict[str, Any], state: dict[str, Tensor]) -> ExportedScorer:
    """The scorer of an export folder from its manifest and weights (``export.load`` has read both)."""
    from .models.anomaly import build_scorer

    settings = manifest.get("architecture", {}).get("scorer")
    if not isinstance(settings, dict):
        raise GankitError(f"{path}: the manifest's architecture has no scorer settings")
    try:
        scorer = build_scorer(settings)
        scorer.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as e:
        raise GankitError(f"{path}: the manifest's scorer settings cannot be built ({e})") from None
    except RuntimeError as e:
        lines = str(e).splitlines()
        raise GankitError(f"{path}: the weights do not fit the manifest's scorer "
                          f"({lines[1].strip() if len(lines) > 1 else e})") from None
    return ExportedScorer(manifest, scorer.eval(), path)
