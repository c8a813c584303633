"""Scoring with an anomaly run: its scorer's scores, the threshold that flags them, and ``gankit score``.

The threshold is set on normal data the run never trained on (``Dataset.anomaly.held``, kept out by
``data.normal_holdout``): with target false-positive rate ``game.fpr`` = a, it is the (1 - a) quantile of the held
scores, taken as an observed score (numpy's method "higher"), so at most a share a of the held normal samples
score above it. It is written to ``RUN/threshold.json`` with the checkpoint's step (at the end of training, by
``anomaly_pictures``) and computed again when the checkpoint's step differs. A sample is flagged when its score
is strictly above the threshold.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoint import read_meta
from .errors import GankitError
from .fileio import atomic_write
from .runs import RunDir

THRESHOLD_FILE = "threshold.json"


@torch.no_grad()
def scores_of(scorer: nn.Module, x: Tensor, batch_size: int = 512) -> tuple[np.ndarray, Tensor]:
    """The scorer's scores (float64 [N], higher = more anomalous) and reconstructions ([N, *shape] on the CPU) of
    ``x`` [N, *shape] in the networks' units, in eval mode (batch norm's running statistics, so a sample's score
    does not depend on its batch); a scorer in training mode is put back in it."""
    was_training = scorer.training
    device = next(scorer.parameters()).device
    scorer.eval()
    scores, recs = [], []
    try:
        for start in range(0, len(x), batch_size):
            score, rec = scorer(x[start:start + batch_size].to(device, torch.float32))  # [b], [b, *shape]
            scores.append(score.double().cpu())
            recs.append(rec.float().cpu())
    finally:
        scorer.train(was_training)
    if not scores:
        return np.zeros(0), x.new_zeros((0, *x.shape[1:]))
    return torch.cat(scores).numpy(), torch.cat(recs)


def threshold_record(held_scores: np.ndarray, fpr: float, step: int) -> dict[str, Any]:
    """What threshold.json holds: t = the (1 - fpr) quantile of the held scores (an observed score), the step of
    the checkpoint they came from, the held count and the false-positive rate t achieves on them."""
    if len(held_scores) == 0:
        raise GankitError("the run held no normal data out of training (data.normal_holdout = 0), so no threshold "
                          "can be set at game.fpr; train with data.normal_holdout (e.g. 0.1) or pass --threshold T")
    if not np.isfinite(held_scores).all():
        raise GankitError(f"the scorer of the checkpoint at step {step} gives non-finite scores on the held normal "
                          f"data (the training diverged); train again with lower learning rates")
    t = float(np.quantile(held_scores, 1.0 - fpr, method="higher"))
    return {"threshold": t, "fpr": fpr, "step": step, "held": int(len(held_scores)),
            "held_fpr": float(np.mean(held_scores > t)),
            "how": f"the {1 - fpr:g} quantile (numpy method 'higher') of the scores of {len(held_scores)} normal "
                   f"samples held out of training; flagged = score > threshold"}


def write_threshold(run: RunDir, record: dict[str, Any]) -> None:
    atomic_write(run.path / THRESHOLD_FILE, (json.dumps(record, indent=2) + "\n").encode())


def threshold(run_dir: str | Path, checkpoint: str = "latest", data=None) -> dict[str, Any]:
    """The run's threshold record (``threshold_record``) for its ``latest`` or ``best`` checkpoint: read from
    ``RUN/threshold.json`` when that was computed at the checkpoint's step with the run's fpr, else computed from
    the held normal data (``data``: the run's ``Dataset``, default loaded from its config) and written there."""
    run = run_folder(run_dir)
    meta = read_meta(run.checkpoint_file(checkpoint))
    if meta["model"].get("kind") != "scorer":
        raise GankitError(f"{run.path}: this run trained a {meta['model']['family']} generator, not an anomaly "
                          f"scorer; a threshold belongs to game.name = \"bigan\", \"ganomaly\" or \"fanogan\" runs")
    fpr = float(meta["model"]["fpr"])
    saved = _read_threshold(run)
    if saved is not None and saved.get("step") == meta["step"] and saved.get("fpr") == fpr:
        return saved
    from .product_loader import load_scorer

    scorer, meta, _, _ = load_scorer(run.path, checkpoint)
    if data is None:
        from .data import load_data

        config = run.config()
        data = load_data(config.data, config.seed)
    record = threshold_record(scores_of(scorer, data.anomaly.held)[0], fpr, meta["step"])
    write_threshold(run, record)
    return record


def run_folder(run_dir: str | Path) -> RunDir:
    """The run folder, checked to exist (its checkpoints are checked where they are read)."""
    run = RunDir(Path(run_dir))
    if not run.config_path.is_file():
        raise GankitError(f"{run.path}: not a gankit run folder (no config.toml); expected the folder gankit train "
                          f"wrote")
    return run


def _read_threshold(run: RunDir) -> dict[str, Any] | None:
    path = run.path / THRESHOLD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or not JSON: computed again
        return None
    return record if isinstance(record, dict) and isinstance(record.get("threshold"), (int, float)) else None


def score(run_dir: str | Path, input: str | Path, out: str | Path | None = None, threshold: float | None = None,
          checkpoint: str = "latest", batch_size: int = 512) -> dict[str, Any]:
    """Score the samples in ``input`` (a folder of images, an .npy, or a CSV of rows; see
    ``gankit.anomaly_inputs.read_inputs``) with a run's scorer, flag those above the run's threshold (or
    ``threshold``), and write ``out`` (a CSV ``input,score,flag`` in the input's order; None: no file).

    Returns {"n", "flagged", "threshold", "fpr" (the run's, None with an explicit threshold), "out", "inputs"
    (file names or row indices), "scores" (float64 [n]), "flags" (bool [n])}.
    """
    from .anomaly_inputs import read_inputs
    from .product_loader import load_scorer

    run = run_folder(run_dir)
    if threshold is not None and not math.isfinite(threshold):
        raise GankitError(f"--threshold {threshold}: expected a finite number")
    if out is not None and Path(out).suffix.lower() != ".csv":
        raise GankitError(f"--out {out}: expected a .csv file name (columns input, score, flag)")
    scorer, meta, shift, scale = load_scorer(run.path, checkpoint)
    x, names = read_inputs(input, meta, shift, scale)  # [N, *shape] in the networks' units
    t, fpr = (float(threshold), None) if threshold is not None else _run_threshold(run, checkpoint)
    scores = scores_of(scorer, x, batch_size)[0]
    flags = scores > t
    if out is not None:
        atomic_write(out, _csv(names, scores, flags).encode("utf-8"))
    return {"n": len(scores), "flagged": int(flags.sum()), "threshold": t, "fpr": fpr,
            "out": None if out is None else str(out), "inputs": list(names), "scores": scores, "flags": flags}


def _run_threshold(run: RunDir, checkpoint: str) -> tuple[float, float]:
    record = threshold(run.path, checkpoint)
    return record["threshold"], record["fpr"]


def _csv(names: list[str], scores: np.ndarray, flags: np.ndarray) -> str:
    """``input,score,flag`` rows; scores with 9 significant digits (float32 networks: all that is meaningful)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["input", "score", "flag"])
    writer.writerows((name, f"{s:.9g}", int(f)) for name, s, f in zip(names, scores, flags))
    return text.getvalue()
