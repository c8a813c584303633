"""``gankit eval`` on a semi-supervised run: its classifier on the labelled test set, and its generator as any
generator is scored.

- The classifier (the moving average of D where the run kept one, noise off) on the test split, never trained
  on: accuracy, macro F1 (the unweighted mean over the classes of each class's F1, scikit-learn's
  ``f1_score(average="macro")``; a class never predicted counts 0) and the confusion matrix (a row per true class,
  a column per predicted class). Fashion-MNIST's own test split; for digits and the other labelled sets the fixed
  stratified third of each class (``gankit.data.semisup``). The user's partly labelled data has no test set: then
  the generator's metrics alone, and the result says so.
- G (rebuilt from the checkpoint's ``G.*`` weights) as the classic generator eval scores it (``metrics.Evaluator``):
  ``n`` samples from seeded noise against up to ``n`` training samples (FID, KID, precision/recall, ... on the
  data's bundled classifier for digits and Fashion-MNIST). Salimans et al. (2016) note that feature matching trains
  a better classifier but a worse-looking generator than minibatch discrimination: expect a high FID.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import nn

from .checkpoint import load_checkpoint, unprefixed
from .errors import GankitError


def classification_scores(y: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro F1 and the confusion matrix of the argmax of ``probabilities`` [N, K] against the true
    classes ``y`` [N], by scikit-learn; the matrix as {"classes", "matrix": [true][predicted] counts}."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(range(len(class_names)))
    predicted = probabilities.argmax(1)
    return {"accuracy": float(accuracy_score(y, predicted)),
            "macro_f1": float(f1_score(y, predicted, labels=labels, average="macro", zero_division=0)),
            "confusion": {"classes": list(class_names),
                          "matrix": confusion_matrix(y, predicted, labels=labels).tolist()}}


def load_semisup_generator(path: str | Path) -> tuple[nn.Module, str]:
    """G of a semi-supervised run's checkpoint (its moving average where one was kept), in eval mode: z ~ N(0, I) of
    the settings' ``z_dim`` -> samples in the networks' units; and which it is ("G_ema" or "G")."""
    from .models.semisup import semisup_players

    tensors, meta = load_checkpoint(path, prefix="G")
    G = semisup_players(meta["model"]["classifier"])["G"]
    which = "G_ema" if any(k.startswith("G_ema.") for k in tensors) else "G"
    G.load_state_dict(unprefixed(which, tensors))
    return G.eval(), which


def evaluate_semisup(run_dir: str | Path, data=None, checkpoint: str = "latest", n: int | None = None, seed: int = 0,
                     metrics: str = "auto", features: str | None = None, inception_weights: str = ""
                     ) -> dict[str, Any]:
    """The classifier's scores on the test split and G's metrics (``metrics``, ``features``, ``inception_weights``:
    as ``gankit.evaluate``'s; ``n`` default 10,000 as there) of a run's ``latest`` or ``best`` checkpoint;
    ``data``: the run's ``Dataset``, default loaded from its config."""
    from .anomaly_scores import run_folder
    from .metrics import Evaluator
    from .product_loader import eval_samples, load_classifier
    from .semisup_classify import probabilities_of

    run = run_folder(run_dir)
    config = run.config()
    classifier, meta, _, _ = load_classifier(run.path, checkpoint)
    if data is None:
        from .data import load_data

        data = load_data(config.data, config.seed)
    semi = data.semisup
    if semi is None:
        raise GankitError(f"{run.path}: data {data.name!r} is not semi-supervised; pass the data the run trained on")
    result: dict[str, Any] = {"run": str(run.path), "step": meta["step"], "checkpoint": checkpoint,
                              "classifier": meta["classifier"], "n_labelled": len(semi.labelled_y),
                              "n_test": 0 if semi.test_y is None else len(semi.test_y)}
    if semi.test_x is not None:
        probabilities = probabilities_of(classifier, semi.test_x)
        if not np.isfinite(probabilities).all():
            raise GankitError(f"{run.path}: the classifier gives non-finite probabilities on the test set at step "
                              f"{meta['step']} (the training diverged); train again with lower learning rates")
        result.update(classification_scores(semi.test_y.numpy(), probabilities, semi.class_names))

    n = 10_000 if n is None else n
    settings = replace(config.eval, metrics=metrics, features=features or config.eval.features,
                       inception_weights=inception_weights or config.eval.inception_weights)
    evaluator = Evaluator(data, settings, n_real=n, seed=seed)
    G, result["generator"] = load_semisup_generator(run.checkpoint_file(checkpoint))
    scored = evaluator.evaluate(eval_samples(evaluator, G, int(meta["model"]["z_dim"]), n, False, seed=seed))
    result.update(scored)
    result["how"].update(classifier=_how_classifier(meta["classifier"], len(semi.class_names)),
                         test=_how_test(data, config, semi),
                         real=f"{data.name} (every training sample, labelled or not)")
    return result


def _how_classifier(which: str, classes: int) -> str:
    what = "the moving average of D's weights (game.d_ema)" if which == "D_ema" else "D"
    return (f"{what} as a {classes}-class classifier: the softmax of its class logits, with its Gaussian noise off; "
            f"the predicted class is the most probable")


def _how_test(data, config, semi) -> str:
    if semi.test_x is None:
        return ("no labelled test set: this run trained on the user's partly labelled data, so accuracy, macro F1 and "
                "the confusion matrix are left out; classify labelled samples of your own with gankit classify RUN "
                "--input DATA --out predictions.csv")
    from .data.anomaly import OWN_SPLITS

    split = ("its own test split" if config.data.name in OWN_SPLITS
             else "a fixed stratified third of each class, held out of training")
    kept = (f"{config.data.labels_per_class} labels per class kept" if config.data.labels_per_class
            else "every labelled sample kept")
    return (f"{len(semi.test_y)} labelled test samples of {data.name} ({split}), never trained on; training had "
            f"{len(semi.labelled_y)} labelled samples ({kept}); accuracy and macro F1 (sklearn.metrics f1_score, "
            f"average='macro') of the predicted classes; confusion: a row per true class, a column per predicted "
            f"class")
