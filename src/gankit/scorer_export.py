"""An anomaly run's scorer as an export (``gankit export``), and the scores it gives back (``gankit.load``,
``gankit serve``'s POST /v1/score).

    EXPORT/manifest.json       product.kind "scorer": inputs and outputs, how inputs become the networks' units,
                               the threshold and its false-positive rate, the normal class, the scorer's settings
    EXPORT/scorer.safetensors  the scorer's weights (the players its score uses: G, and E and D for EGBAD)
    EXPORT/scorer.onnx         optional: x [batch, *shape] float32 in the networks' units -> score [batch],
                               reconstruction [batch, *shape]

Inputs come in the units a user holds (``input_export``: pixels for images, the data's units for rows). A sample
is flagged when its score is strictly above the run's threshold, the (1 - fpr) quantile of the scores of normal
data held out of training (``anomaly_scores``).

On PyTorch ``ExportedScorer.score`` gives the run's own scores; the ONNX model is checked against PyTorch before
it is written (``input_export``). Loading reads JSON and safetensors only: ``models.anomaly.build_scorer(settings)``
rebuilds the scorer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import Tensor, nn

from .errors import GankitError
from .input_export import CHECK_BATCHES, PIXELS, InputModel, input_section  # noqa: F401  (the scorer's names too)
from .products import ScorerProduct
from .runs import RunDir

WEIGHTS, ONNX_MODEL = "scorer.safetensors", "scorer.onnx"
ONNX_INPUT, ONNX_OUTPUTS = "x", ("score", "reconstruction")


def scorer_manifest(scorer: nn.Module, meta: dict[str, Any], shift: Tensor, scale: Tensor,
                    threshold: dict[str, Any] | None, source: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a scorer export. ``threshold``: the run's record (``anomaly_scores.threshold``), or None
    when the run held no normal data out (then ``score`` needs a threshold given)."""
    from . import __version__
    from .export import EXPORT_FORMAT

    model, data = meta["model"], meta["data"]
    shape = [int(s) for s in model["shape"]]
    product = ScorerProduct(tuple(shape), scorer.settings(), float(model["fpr"]))
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
        "input": input_section(shape, data, shift, scale),
        "onnx": {"inputs": {ONNX_INPUT: ["batch", *shape, "float32 in the networks' units (input.to_network)"]},
                 "outputs": {"score": ["batch", "float32, higher = more anomalous"],
                             "reconstruction": ["batch", *shape, "float32 in the networks' units"]}},
        "source": source,
    }


class ExportedScorer(InputModel):
    """An anomaly scorer with its manifest: samples in the user's units -> (scores, flags), on PyTorch or
    onnxruntime. ``gankit.load`` gives one for a scorer export (or run folder)."""

    kind = "scorer"
    WEIGHTS, ONNX_MODEL, ONNX_INPUT, ONNX_OUTPUTS = WEIGHTS, ONNX_MODEL, ONNX_INPUT, ONNX_OUTPUTS

    def __init__(self, manifest: dict[str, Any], scorer: nn.Module | None, path: Path | None = None):
        super().__init__(manifest, scorer, path)
        self.threshold: float | None = manifest["anomaly"]["threshold"]
        self.fpr: float = manifest["anomaly"]["fpr"]
        self.normal: str = manifest["anomaly"]["normal"]

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
    def what(self) -> str:
        return f"anomaly scores of {self.expected}"

    @classmethod
    def build(cls, settings: dict[str, Any]) -> nn.Module:
        from .models.anomaly import build_scorer

        return build_scorer(settings)

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
