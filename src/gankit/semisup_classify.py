"""Classifying with a semi-supervised run (game.name = "ssgan"): ``gankit classify`` and ``gankit.classify``.

The classifier is D's K class logits under a softmax (``models.semisup.Classifier``: the probabilities of the K
classes given that the input is real), from the moving average of D where the run kept one, with D's Gaussian
noise off. The inputs are read as ``gankit score`` reads them (``anomaly_inputs.read_inputs``): a folder of
images, an .npy, or a CSV of rows, each in the networks' units as the same sample was when training.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import GankitError
from .fileio import atomic_write


@torch.no_grad()
def probabilities_of(classifier: nn.Module, x: Tensor, batch_size: int = 512) -> np.ndarray:
    """The classifier's class probabilities (float64 [N, K]) of ``x`` [N, *shape] in the networks' units, in eval
    mode (D's Gaussian noise off, so a sample's answer does not depend on its batch or on chance); every submodule's
    mode is put back afterwards (during training D trains while its moving average stays in eval mode)."""
    modes = [m.training for m in classifier.modules()]
    device = next(classifier.parameters()).device
    classifier.eval()
    try:
        out = [classifier(x[i:i + batch_size].to(device, torch.float32)).double().cpu()  # [b, K]
               for i in range(0, len(x), batch_size)]
    finally:
        for module, mode in zip(classifier.modules(), modes):
            module.training = mode
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def classify(run_dir: str | Path, input: str | Path, out: str | Path | None = None, checkpoint: str = "latest",
             batch_size: int = 512) -> dict[str, Any]:
    """Classify the samples in ``input`` (a folder of images, an .npy, or a CSV of rows; see
    ``gankit.anomaly_inputs.read_inputs``) with a semi-supervised run's classifier, and write ``out`` (a CSV
    ``input,class,p_<class>...`` in the input's order: the input's file name or row index, the predicted class by
    name, one probability per class; None: no file).

    Returns {"n", "out", "inputs" (names), "classes" (the predicted class names), "probabilities" (float64 [n, K]),
    "class_names", "counts" (inputs per predicted class), "classifier" ("D_ema" or "D"), "step"}.
    """
    from .anomaly_inputs import read_inputs
    from .anomaly_scores import run_folder
    from .product_loader import load_classifier

    run = run_folder(run_dir)
    if out is not None and Path(out).suffix.lower() != ".csv":
        raise GankitError(f"--out {out}: expected a .csv file name (columns input, class, p_<class> per class)")
    classifier, meta, shift, scale = load_classifier(run.path, checkpoint)
    names = list(meta["model"]["class_names"])
    x, inputs = read_inputs(input, meta, shift, scale)  # [N, *shape] in the networks' units
    probabilities = probabilities_of(classifier, x, batch_size)  # [N, K]
    if not np.isfinite(probabilities).all():
        raise GankitError(f"{run.path}: the classifier of the checkpoint at step {meta['step']} gives non-finite "
                          f"probabilities (the training diverged); train again with lower learning rates")
    predicted = probabilities.argmax(1) if len(probabilities) else np.zeros(0, dtype=np.int64)
    classes = [names[k] for k in predicted]
    if out is not None:
        atomic_write(out, _csv(inputs, classes, probabilities, names).encode("utf-8"))
    counts = {name: int((predicted == k).sum()) for k, name in enumerate(names)}
    return {"n": len(inputs), "out": None if out is None else str(out), "inputs": list(inputs), "classes": classes,
            "probabilities": probabilities, "class_names": names, "counts": counts,
            "classifier": meta["classifier"], "step": meta["step"]}


def _csv(inputs: list[str], classes: list[str], probabilities: np.ndarray, names: list[str]) -> str:
    """``input,class,p_<name>...`` rows; probabilities with 9 significant digits (float32 networks: all that is
    meaningful)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["input", "class", *(f"p_{name}" for name in names)])
    writer.writerows((name, c, *(f"{p:.9g}" for p in row)) for name, c, row in zip(inputs, classes, probabilities))
    return text.getvalue()
