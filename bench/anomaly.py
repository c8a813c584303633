"""Anomaly detection: gankit's GAN scorers beside the detectors a user would otherwise pick, on the same splits.

The one-class protocol of Golan & El-Yaniv 2018 (GEOM): each class in turn is normal, every method trains on that
class of the training split only, and is scored (AUROC, and AUPRC with "anomalous" as the positive class) on the
whole test split. The splits come from gankit itself, ``load_data(DataConfig(name, normal_class=k,
normal_holdout=0.1), seed=0)``, so every method sees the same rows:
- fashion-mnist: 10 classes, 5,400 training images of the normal class, the 10,000 test images;
- digits: 10 classes, a fixed stratified 2/3 / 1/3 split of the 1,797 images;
- breast-cancer: benign is normal (60% of the benign rows train), test = the other benign rows + all malignant.

Methods, every score oriented "higher = more anomalous":
- gankit: for each game in ``--methods`` (default all three) the recipe ``configs/anomaly-<set>.toml`` trains
  with ``data.normal_class=k``, then ``gankit.evaluate`` scores the run's labelled test set;
- scikit-learn ``IsolationForest`` and ``OneClassSVM`` (their defaults: 100 trees; RBF kernel, gamma "scale",
  nu 0.5), each on the raw values and on PCA features (PCA fitted on the normal training data, keeping
  ``PCA_VARIANCE`` = 90% of its variance);
- pyod's ``KNN``, ``AutoEncoder`` and ``DeepSVDD`` with pyod's defaults; the only changes: ``verbose=0``, a fixed
  ``random_state`` (DeepSVDD's default is None), and DeepSVDD's required ``n_features``.
The peers train on the Dataset's ``x`` alone (the networks' units: images 2p - 1, flattened; breast-cancer
standardised by the training rows), the same rows gankit's networks train on; the held normal rows
(``anomaly.held``), which gankit uses only to set its flag threshold, are not given to anyone's training.
Wall time per method is fit + score of the test split (gankit: training + ``gankit.evaluate``).
GEOM's published Fashion-MNIST AUROC is printed beside ours (their Table; other training code, same protocol).

    pip install -e ".[bench]"                     # pyod (and the other benchmarks' peers)
    python bench/anomaly.py                       # everything (hours on 2 cores: 21 trainings per gankit game)
    python bench/anomaly.py --methods none        # the classical and pyod detectors alone
    python bench/anomaly.py --sets digits --classes 0,1,2 --set train.steps=200   # a quick look
Prints the tables to stderr; ends with one JSON line; also writes bench/results/anomaly.json (unless --no-save).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("NUMBA_NUM_THREADS", "2")  # pyod imports numba; before that import, like OMP_NUM_THREADS

import numpy as np
import torch

import gankit
from gankit.config import DataConfig
from gankit.data.dataset import load_data

sys.path.insert(0, str(Path(__file__).parent))
from tabular import cpu  # noqa: E402  (the CPU's name and flags, as every benchmark reports them)

SETS = {"fashion-mnist": [str(k) for k in range(10)], "digits": [str(k) for k in range(10)],
        "breast-cancer": ["benign"]}
PER_CLASS = ("fashion-mnist", "digits")  # sets reported per class and as a mean; the others as one split
HOLDOUT = 0.1  # the anomaly recipes' data.normal_holdout, so the training rows are exactly those gankit trains on
PCA_VARIANCE = 0.9
PEERS = ("iforest", "iforest-pca", "ocsvm", "ocsvm-pca", "knn", "autoencoder", "deepsvdd")
GAMES = ("bigan", "ganomaly", "fanogan")  # --methods may name any; the default runs all three
# GEOM (Golan & El-Yaniv 2018), Fashion-MNIST one-class AUROC in %, classes 0..9, and their mean
GEOM_FASHION = {"per_class": [99.4, 97.6, 91.1, 89.9, 92.1, 93.4, 83.3, 98.9, 90.8, 99.2], "mean": 93.5}
TARGETS = {"gankit_beats_every_peer_mean_auroc": True, "fashion_mnist_mean_auroc_goal": 0.935,
           "minutes_per_class": 5.0}
RESULTS = Path(__file__).parent / "results" / "anomaly.json"


def split(name: str, normal: str, holdout: float = HOLDOUT) -> dict:
    """The rows every method sees: ``train`` [N, F] (flattened, networks' units), ``test`` [T, F], ``labels`` [T]
    (1 = anomalous), ``held`` [M, F] (not given to the peers), as numpy float32 / int64."""
    data = load_data(DataConfig(name=name, normal_class=normal, normal_holdout=holdout), seed=0)
    flat = lambda t: t.reshape(t.shape[0], -1).numpy().astype(np.float32)  # [N, *shape] -> [N, F]
    anomaly = data.anomaly
    return {"train": flat(data.x), "held": flat(anomaly.held), "test": flat(anomaly.test_x),
            "labels": anomaly.test_y.numpy().astype(np.int64)}


# --- the peers: (train [N, F], seed) -> score(test [T, F]) -> [T], higher = more anomalous -----------------------

def _pca(train: np.ndarray, seed: int):
    from sklearn.decomposition import PCA

    return PCA(n_components=PCA_VARIANCE, svd_solver="full", random_state=seed).fit(train)


def _sklearn(make: Callable, pca: bool) -> Callable:
    """IsolationForest / OneClassSVM, on the raw values or on PCA features; sklearn's ``score_samples`` is higher
    for normal samples, so the anomaly score is its negative."""
    def fit(train: np.ndarray, seed: int) -> Callable:
        project = _pca(train, seed).transform if pca else (lambda a: a)
        model = make(seed).fit(project(train))
        return lambda test: -model.score_samples(project(test))
    return fit


def _pyod(make: Callable) -> Callable:
    """A pyod detector: ``decision_function`` is already higher for outliers."""
    def fit(train: np.ndarray, seed: int) -> Callable:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = make(train.shape[1], seed)
        model.fit(train)
        return model.decision_function
    return fit


def _iforest(seed: int):
    from sklearn.ensemble import IsolationForest
    return IsolationForest(random_state=seed)


def _ocsvm(seed: int):
    from sklearn.svm import OneClassSVM
    return OneClassSVM()


def _knn(features: int, seed: int):
    from pyod.models.knn import KNN
    return KNN()


def _autoencoder(features: int, seed: int):
    from pyod.models.auto_encoder import AutoEncoder
    return AutoEncoder(random_state=seed, verbose=0)


def _deepsvdd(features: int, seed: int):
    from pyod.models.deep_svdd import DeepSVDD
    return DeepSVDD(n_features=features, random_state=seed, verbose=0)


PEER_FITS = {"iforest": _sklearn(_iforest, False), "iforest-pca": _sklearn(_iforest, True),
             "ocsvm": _sklearn(_ocsvm, False), "ocsvm-pca": _sklearn(_ocsvm, True),
             "knn": _pyod(_knn), "autoencoder": _pyod(_autoencoder), "deepsvdd": _pyod(_deepsvdd)}


def scores(labels: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if not np.isfinite(score).all():
        return {"auroc": float("nan"), "auprc": float("nan"), "non_finite": int((~np.isfinite(score)).sum())}
    return {"auroc": float(roc_auc_score(labels, score)), "auprc": float(average_precision_score(labels, score))}


def run_peer(peer: str, rows: dict, seed: int) -> dict:
    """Fit ``peer`` on the normal training rows and score the test split: AUROC, AUPRC and the wall time."""
    start = time.perf_counter()
    score = np.asarray(PEER_FITS[peer](rows["train"], seed)(rows["test"]), dtype=np.float64)  # [T]
    seconds = time.perf_counter() - start
    return {**scores(rows["labels"], score), "seconds": round(seconds, 2)}


# --- gankit's games --------------------------------------------------------------------------------------------

GAME_SETTINGS = {  # each game's own settings over the recipe's data, model and steps (whichever game it names)
    "bigan": ["loss.name=nonsaturating", "train.d_steps=1", "game.score_term=auto"],
    "ganomaly": ["loss.name=nonsaturating", "train.d_steps=1", "loss.pixel_weight=50", "game.score_term=auto"],
    "fanogan": ["loss.name=wgan-gp", "train.d_steps=5", "game.score_term=knn"],
}


def game_overrides(game: str, name: str, normal: str) -> list[str]:
    """The game, its settings and the normal class over ``configs/anomaly-<name>.toml`` (f-AnoGAN's encoder trains
    for the last third of the recipe's steps, its default)."""
    return [f"game.name={game}", *GAME_SETTINGS[game], f"data.normal_class={normal}"]


def run_game(game: str, name: str, normal: str, root: Path, overrides: list[str]) -> dict:
    """Train the recipe for one normal class and evaluate it: AUROC, AUPRC, the run's other numbers, the times."""
    run_dir, n = root / f"{name}-{game}-{normal}", 1
    while run_dir.exists():  # --keep with an earlier run there: a new folder beside it
        n += 1
        run_dir = root / f"{name}-{game}-{normal}-{n}"
    start = time.perf_counter()
    result = gankit.train(f"anomaly-{name}", run_dir=run_dir, progress=False,
                          overrides=[*game_overrides(game, name, normal), *overrides])
    trained = time.perf_counter()
    metrics = gankit.evaluate(result.run_dir)
    done = time.perf_counter()
    kept = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {**kept, "auroc": float(metrics["auroc"]), "auprc": float(metrics["auprc"]),
            "train_s": round(trained - start, 1), "eval_s": round(done - trained, 1),
            "seconds": round(done - start, 2), "run_dir": str(result.run_dir)}


# --- the tables ------------------------------------------------------------------------------------------------

def summary(per_class: dict[str, dict]) -> dict:
    """Per-class results of one method -> lists in class order, the means and the total time."""
    classes = list(per_class)
    auroc = [per_class[k]["auroc"] for k in classes]
    auprc = [per_class[k]["auprc"] for k in classes]
    return {"classes": classes, "auroc": auroc, "auprc": auprc, "mean_auroc": float(np.mean(auroc)),
            "mean_auprc": float(np.mean(auprc)), "seconds": round(sum(per_class[k]["seconds"] for k in classes), 1),
            "runs": per_class}


def table(name: str, methods: dict[str, dict]) -> list[str]:
    """One set's table: per-class AUROC % and the mean (fashion-mnist, digits) or AUROC/AUPRC, and the time."""
    lines = []
    if name in PER_CLASS:
        classes = next(iter(methods.values()))["classes"] if methods else []
        lines.append(f"{name} (AUROC %)".ljust(22) + "".join(f"{k:>6s}" for k in classes) + "    mean   time s")
        for method, row in methods.items():
            lines.append(f"  {method:20s}" + "".join(f"{100 * a:6.1f}" for a in row["auroc"])
                         + f"  {100 * row['mean_auroc']:6.1f}  {row['seconds']:7.1f}")
        if name == "fashion-mnist":
            geom = [GEOM_FASHION["per_class"][int(k)] for k in classes]
            lines.append(f"  {'GEOM (published)':20s}" + "".join(f"{a:6.1f}" for a in geom)
                         + f"  {np.mean(geom):6.1f}  (all 10: {GEOM_FASHION['mean']})")
    else:
        lines.append(f"{name}".ljust(22) + "   AUROC   AUPRC   time s")
        for method, row in methods.items():
            lines.append(f"  {method:20s}  {row['auroc'][0]:6.4f}  {row['auprc'][0]:6.4f}  {row['seconds']:7.1f}")
    return lines


def verdict(methods: dict[str, dict]) -> str | None:
    """The issue's target on one set: gankit's best mean AUROC against the best peer's."""
    ours = {m: r["mean_auroc"] for m, r in methods.items() if m.startswith("gankit-")}
    theirs = {m: r["mean_auroc"] for m, r in methods.items() if not m.startswith("gankit-")}
    if not ours or not theirs:
        return None
    best, peer = max(ours, key=ours.get), max(theirs, key=theirs.get)
    return (f"  best of gankit: {best} {100 * ours[best]:.1f} vs best peer {peer} {100 * theirs[peer]:.1f}: "
            f"{'beats' if ours[best] > theirs[peer] else 'does not beat'}")


def names(value: str, known, option: str, parser) -> list[str]:
    chosen = [] if value.strip() == "none" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown:
        parser.error(f"{option}: unknown {unknown}; expected some of {', '.join(known)} (or none)")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated, of " + ", ".join(SETS))
    parser.add_argument("--classes", help="normal classes of the per-class sets, e.g. 0,1,2 (default: all ten)")
    parser.add_argument("--methods", default=",".join(GAMES), help=f"gankit's games ({', '.join(GAMES)}) or none")
    parser.add_argument("--peers", default=",".join(PEERS), help="the other detectors, comma-separated, or none")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override gankit's recipes, e.g. --set train.steps=200 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="the peers' random_state")
    parser.add_argument("--threads", type=int, default=2, help="torch, BLAS and OpenMP threads (default 2)")
    parser.add_argument("--keep", metavar="DIR", help="keep gankit's run folders here (default: a temporary folder)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/anomaly.json")
    args = parser.parse_args()
    sets = names(args.sets, list(SETS), "--sets", parser)
    games = names(args.methods, GAMES, "--methods", parser)
    peers = names(args.peers, PEERS, "--peers", parser)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    if classes and any(c not in SETS["digits"] for c in classes):
        parser.error(f"--classes {args.classes}: expected class indices 0..9, comma-separated")
    holdout = next((float(o.split("=", 1)[1]) for o in reversed(args.set) if o.startswith("data.normal_holdout=")),
                   HOLDOUT)  # the peers' rows follow gankit's
    for name in sets if games else []:  # before hours of work: every recipe is there
        gankit.recipe(f"anomaly-{name}")

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    import pyod
    import sklearn

    machine = f"{cpu()}, {args.threads} threads, torch {torch.__version__}"
    print(f"# {machine}; scikit-learn {sklearn.__version__}, pyod {pyod.__version__}", file=sys.stderr)
    out: dict = {"bench": "anomaly", "machine": machine, "cpu": cpu(), "torch": torch.__version__,
                 "sklearn": sklearn.__version__, "pyod": pyod.__version__, "python": sys.version.split()[0],
                 "threads": args.threads, "seed": args.seed, "overrides": args.set, "holdout": holdout,
                 "pca_variance": PCA_VARIANCE, "sets": {}, "geom_fashion_mnist_auroc": GEOM_FASHION,
                 "targets": TARGETS}
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        for name in sets:
            normals = classes if classes and name in PER_CLASS else SETS[name]
            runs: dict[str, dict[str, dict]] = {m: {} for m in [*(f"gankit-{g}" for g in games), *peers]}
            for normal in normals:
                rows = split(name, normal, holdout)
                for game in games:
                    runs[f"gankit-{game}"][normal] = run_game(game, name, normal, root, args.set)
                for peer in peers:
                    runs[peer][normal] = run_peer(peer, rows, args.seed)
                print(f"# {name} normal {normal} (train {len(rows['train'])}, test {len(rows['test'])}, anomalous "
                      f"{int(rows['labels'].sum())}): " + "  ".join(
                          f"{m} {r[normal]['auroc']:.3f} ({r[normal]['seconds']:.1f} s)" for m, r in runs.items()),
                      file=sys.stderr, flush=True)
            methods = {m: summary(r) for m, r in runs.items()}
            out["sets"][name] = methods
            lines += table(name, methods)
            lines += [v for v in [verdict(methods)] if v]
    print("\n".join([f"# {machine}", *lines]), file=sys.stderr)
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
