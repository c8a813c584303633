"""A semi-supervised run's classifier as an export (``gankit export``), and the classes it gives back
(``gankit.load``, ``gankit serve``'s POST /v1/classify).

    EXPORT/manifest.json           product.kind "classifier": inputs and outputs, how inputs become the networks'
                                   units, the class names, the classifier's settings
    EXPORT/classifier.safetensors  D's weights (its moving average where the run kept one), keys ``D.*``
    EXPORT/classifier.onnx         optional: x [batch, *shape] float32 in the networks' units -> probabilities
                                   [batch, K] float32, in the order of ``classes.names``

Inputs come in the units a user holds (``input_export``: pixels for images, the data's units for rows). The
probabilities are the softmax of D's K class logits, the class given that x is real (Salimans et al. 2016);
the predicted class is their argmax. D is exported in eval mode: its Gaussian-noise layers are the identity, so
the graph draws no random numbers and the same input always gets the same probabilities.

Loading reads JSON and safetensors only: ``models.semisup.build_classifier(settings)`` rebuilds the classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import Tensor, nn

from .errors import GankitError
from .input_export import InputModel, input_section
from .products import ClassifierProduct
from .runs import RunDir

WEIGHTS, ONNX_MODEL = "classifier.safetensors", "classifier.onnx"
ONNX_INPUT, ONNX_OUTPUTS = "x", ("probabilities",)
PREDICTED = "argmax of probabilities (the first class on a tie)"


def classifier_manifest(classifier: nn.Module, meta: dict[str, Any], shift: Tensor, scale: Tensor,
                        source: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a classifier export, from ``product_loader.load_classifier``'s results."""
    from . import __version__
    from .export import EXPORT_FORMAT

    model = meta["model"]
    shape = [int(s) for s in model["shape"]]
    names = [str(n) for n in model["class_names"]]
    product = ClassifierProduct(tuple(shape), classifier.settings, tuple(names))
    return {
        "format": EXPORT_FORMAT,
        "gankit_version": __version__,
        "product": {"kind": "classifier", "inputs": product.inputs(), "outputs": product.outputs()},
        "family": model["family"],
        "architecture": {"classifier": dict(classifier.settings)},  # build_classifier(settings)
        "classes": {"names": names, "weights": meta["classifier"], "predicted": PREDICTED},
        "input": input_section(shape, meta["data"], shift, scale),
        "onnx": {"inputs": {ONNX_INPUT: ["batch", *shape, "float32 in the networks' units (input.to_network)"]},
                 "outputs": {"probabilities": ["batch", len(names), "float32, softmax over classes.names"]}},
        "source": source,
    }


class ExportedClassifier(InputModel):
    """A semi-supervised GAN's classifier with its manifest: samples in the user's units -> class probabilities
    and predicted class names, on PyTorch or onnxruntime. ``gankit.load`` gives one for a classifier export (or
    run folder)."""

    kind = "classifier"
    WEIGHTS, ONNX_MODEL, ONNX_INPUT, ONNX_OUTPUTS = WEIGHTS, ONNX_MODEL, ONNX_INPUT, ONNX_OUTPUTS

    def __init__(self, manifest: dict[str, Any], classifier: nn.Module | None, path: Path | None = None):
        super().__init__(manifest, classifier, path)
        self.class_names: list[str] = list(manifest["classes"]["names"])

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "latest", ema: bool | None = None
                 ) -> ExportedClassifier:
        """The classifier of a run folder (D's moving average where the run kept one) with the manifest an
        export would write."""
        from .product_loader import load_classifier

        classifier, meta, shift, scale = load_classifier(run_dir, checkpoint)
        kept = meta["classifier"] == "D_ema"
        if ema is not None and ema != kept:  # the export is the classifier the run evaluates, nothing else
            why = "kept no moving average of D (game.d_ema = 0)" if ema else "is classified by D's moving average"
            raise GankitError(f"--{'' if ema else 'no-'}ema: {run_dir} {why}; leave --ema out to export "
                              f"its {meta['classifier']}")
        source = {"run": str(RunDir(Path(run_dir)).path.resolve()), "checkpoint": checkpoint, "step": meta["step"],
                  "classifier": meta["classifier"], "data": meta["data"]["name"]}
        return cls(classifier_manifest(classifier, meta, shift, scale, source), classifier)

    @classmethod
    def build(cls, settings: dict[str, Any]) -> nn.Module:
        from .models.semisup import build_classifier

        return build_classifier(settings)

    @property
    def what(self) -> str:
        return f"class probabilities ({len(self.class_names)} classes) of {self.expected}"

    def run(self, x: np.ndarray, backend: str = "torch") -> np.ndarray:
        """The classifier on x [n, *shape] float32 in the networks' units -> probabilities [n, K] float32."""
        return super().run(x, backend)[0]

    def classify(self, x: np.ndarray | Sequence, backend: str = "torch", batch_size: int = 256
                 ) -> tuple[np.ndarray, list[str]]:
        """(probabilities float32 [N, K] in the order of ``class_names``, the predicted class name of each input)
        of inputs in the user's units (``expected``), ``batch_size`` at a time."""
        net = self.to_network(x)  # [N, *shape]
        probabilities = np.concatenate([self.run(net[i:i + batch_size], backend)
                                        for i in range(0, len(net), batch_size)]).astype(np.float32)
        return probabilities, [self.class_names[k] for k in probabilities.argmax(axis=1).tolist()]
