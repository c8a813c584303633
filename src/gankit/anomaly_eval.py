"""``gankit eval`` on an anomaly run: its scorer on the labelled test set (normal and anomalous samples it never
trained on), anomalous as the positive class.

- AUROC: the probability that a random anomalous sample scores above a random normal one (ties count 1/2); the
  threshold-free measure of the one-class literature (Golan & El-Yaniv 2018; Zenati et al. 2018).
- AUPRC: average precision, sum_k (R_k - R_{k-1}) P_k over the score thresholds (scikit-learn's
  ``average_precision_score``); its chance level is the share of anomalous samples, not 1/2.
- precision, recall and F1 of the flags at the run's threshold (``anomaly_scores.threshold``: set on held-out
  normal data at game.fpr), with the confusion counts and the FPR the threshold gives on the normal test samples
  beside the one it gave on the held-out ones.
- the mean score of each class of the test set (which classes the scorer finds hard to tell from normal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .anomaly_scores import run_folder, scores_of, threshold
from .checkpoint import read_meta
from .errors import GankitError


def ranking_scores(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC of ``scores`` for labels ``y`` (1 = anomalous), by scikit-learn."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(y)) < 2:  # a ranking needs both kinds
        return {"auroc": float("nan"), "auprc": float("nan")}
    return {"auroc": float(roc_auc_score(y, scores)), "auprc": float(average_precision_score(y, scores))}


def flag_scores(y: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    """Precision, recall and F1 of ``flags`` (True = flagged anomalous) against ``y``, with the confusion counts
    and the false-positive rate on the normal samples; a ratio with nothing to count is 0."""
    y, flags = y.astype(bool), flags.astype(bool)
    tp, fp = int((flags & y).sum()), int((flags & ~y).sum())
    fn, tn = int((~flags & y).sum()), int((~flags & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "test_fpr": fp / (fp + tn) if fp + tn else 0.0,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def evaluate_anomaly(run_dir: str | Path, data=None, checkpoint: str = "latest") -> dict[str, Any]:
    """The scores of a run's scorer on its labelled test set (``data``: the run's ``Dataset``, default loaded from
    its config); refuses a run trained on the user's unlabelled normal data, which has no test set."""
    from .product_loader import load_scorer

    run = run_folder(run_dir)
    meta = read_meta(run.checkpoint_file(checkpoint))
    if not meta["data"].get("anomaly", {}).get("test"):
        raise GankitError(f"{run.path}: this anomaly run has no labelled test set (it trained on unlabelled normal "
                          f"data); score your own labelled samples with gankit score RUN --input DATA --out "
                          f"scores.csv, or train with data.normal_class on a labelled set")
    if data is None:
        from .data import load_data

        config = run.config()
        data = load_data(config.data, config.seed)
    a = data.anomaly
    scorer, meta, _, _ = load_scorer(run.path, checkpoint)
    scores = scores_of(scorer, a.test_x)[0]
    if not np.isfinite(scores).all():
        raise GankitError(f"{run.path}: the scorer gives non-finite scores on the test set at step {meta['step']} "
                          f"(the training diverged); train again with lower learning rates")
    y, classes = a.test_y.numpy(), a.test_classes.numpy()
    per_class = {name: float(scores[classes == k].mean()) for k, name in enumerate(a.class_names)
                 if (classes == k).any()}
    result = {"run": str(run.path), "step": meta["step"], "checkpoint": checkpoint, "scorer": meta["model"]["family"],
              **ranking_scores(y, scores), "n_normal": int((y == 0).sum()), "n_anomalous": int((y == 1).sum()),
              "normal": a.normal, "mean_score": per_class}
    how = {"test": f"{len(y)} labelled test samples of {data.name} never trained on: class {a.normal!r} normal, the "
                   f"other classes anomalous (the positive class)",
           "auroc_auprc": "sklearn.metrics roc_auc_score and average_precision_score of the scores"}
    if len(a.held):  # no held normal data (data.normal_holdout = 0): no threshold, the ranking scores alone
        record = threshold(run.path, checkpoint, data=data)
        result.update(flag_scores(y, scores > record["threshold"]), threshold=record["threshold"], fpr=record["fpr"],
                      held_fpr=record["held_fpr"], n_held=record["held"])
        how.update(threshold=record["how"], precision_recall_f1="of the flags score > threshold on the test "
                                                                "samples; test_fpr: the share of normal test samples "
                                                                "flagged")
    return {**result, "how": how}
