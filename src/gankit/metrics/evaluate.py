"""Evaluation: samples -> features -> metrics, with a record of how each number was computed.

``compare`` scores two sets of samples; ``Evaluator`` holds a data set's real samples and their
features (extracted once) and scores generators against them, during training or after it. Result
keys are stable (``RESULT_KEYS``); each result also says which features, how many samples and which
seed produced it.

Rows have two value features: ``raw``, the numbers as given (the standard formulas: a Fréchet distance of
two files is the one any other tool computes), and ``standardized``, each column in units of the real
samples' std first, so that no column wins by its units; ``auto`` picks ``standardized`` for rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from ..config import EvalConfig
from ..data import Dataset
from ..errors import GankitError
from .columns import column_scores
from .features import EXTRACTORS, Extractor, get_extractor, inception_weights
from .frechet import frechet_distance, gaussian_stats
from .kernel import kernel_distance
from .manifold import knn_radii, manifold_scores
from .modes import class_scores, mode_scores
from .scores import classifier_score

# Metric groups -> the result keys each one writes.
RESULT_KEYS = {
    "fid": ("fid",),
    "kid": ("kid_mean", "kid_std"),
    "is": ("is_mean", "is_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
    "modes": ("modes_covered", "modes_total", "high_quality", "mode_kl"),
    "classes": ("classes_covered", "classes_total", "class_kl", "class_accuracy"),
    "columns": ("ks_mean", "ks_max", "w1_mean", "corr_diff"),
}
LOWER_IS_BETTER = {"fid", "kid_mean", "mode_kl", "class_kl", "ks_mean", "ks_max", "w1_mean", "corr_diff"}
HIGHER_IS_BETTER = {"is_mean", "precision", "recall", "coverage", "modes_covered", "high_quality",
                    "classes_covered", "class_accuracy"}
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # as Bińkowski et al. 2018 and torch-fidelity
PR_K, DC_K, IS_SPLITS = 3, 5, 10  # Kynkäänniemi et al. 2019; Naeem et al. 2020; Salimans et al. 2016
DATA_CLASSIFIERS = {"fashion-mnist": "fashion-mnist", "digits": "digits"}  # data set -> its bundled classifier
INCEPTION_HINT = ("for FID comparable with papers, download pt_inception-2015-12-05-6726825d.pth (pytorch-fid's "
                  "release) and set eval.inception_weights or GANKIT_INCEPTION_WEIGHTS to its path")


@dataclass
class SampleSet:
    """Samples in the extractor's units, with what the metrics need to know about them."""

    x: Tensor  # [N, ...]
    labels: Tensor | None = None  # [N] class asked of a conditional generator
    features: Tensor | None = None  # [N, D] float64, filled by ``featurize``
    logits: Tensor | None = None  # [N, K]
    radii: dict[int, Tensor] | None = None  # k-NN radii of the features, for precision/recall/density/coverage


@dataclass
class Structure:
    """What is known about the real data beyond its samples."""

    modes: Tensor | None = None  # [M, F] mixture centres, in the samples' units
    mode_std: float = 0.0
    class_frequencies: Tensor | None = None  # [K]
    columns: Sequence[str] = ()
    is_image: bool = False


def parse_metrics(text: str | Sequence[str], source: str = "eval.metrics") -> list[str] | None:
    """``"fid,kid"`` -> ["fid", "kid"]; ``"auto"`` -> None (all that apply)."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    if names in ([], ["auto"]):
        return None
    unknown = [m for m in names if m not in RESULT_KEYS]
    if unknown:
        raise GankitError(f"{source} = {','.join(names)}: unknown metric {unknown[0]!r}; expected a comma-separated "
                          f"list of {', '.join(RESULT_KEYS)} (or auto)")
    return names


def applicable(extractor: Extractor, structure: Structure) -> list[str]:
    """The metric groups that make sense for these features and this data (what ``auto`` means)."""
    out = ["fid", "kid", "pr", "dc"]
    if extractor.has_logits:
        out.append("is")
    if extractor.classes and (structure.class_frequencies is None
                              or len(structure.class_frequencies) == len(extractor.classes)):
        out.append("classes")  # a classifier of these classes, not of some other data's
    if structure.modes is not None:
        out.append("modes")
    if not structure.is_image:
        out.append("columns")
    return out


def check_metrics(names: list[str], extractor: Extractor, structure: Structure) -> None:
    """The metrics (and features) asked for make sense for this data; else a GankitError saying what does."""
    if extractor.standardize and structure.is_image:  # per pixel: a constant border pixel's std is 0
        raise GankitError(f"features {extractor.name!r} standardise the columns of rows; these samples are images "
                          f"(use raw, or inception with its weights)")
    for name in names:
        if name == "is" and not extractor.has_logits:
            raise GankitError(f"metric 'is' needs a classifier's logits; features {extractor.name!r} have none "
                              f"(use --features {' or '.join(DATA_CLASSIFIERS.values())} or inception)")
        if name == "classes" and not extractor.classes:
            raise GankitError(f"metric 'classes' needs a classifier of the data's classes; features "
                              f"{extractor.name!r} have none (use --features {' or '.join(DATA_CLASSIFIERS.values())})")
        if name == "modes" and structure.modes is None:
            raise GankitError("metric 'modes' needs data with known mixture centres (ring8, grid25); for classes "
                              "use 'classes'")
        if name == "columns" and structure.is_image:
            raise GankitError("metric 'columns' compares table columns; these samples are images")


def featurize(extractor: Extractor, samples: SampleSet) -> SampleSet:
    samples.features, samples.logits = extractor(samples.x)
    samples.radii = None
    return samples


def score(names: list[str], real: SampleSet, fake: SampleSet, extractor: Extractor, structure: Structure,
          seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, details) of the metric groups ``names`` for featurized sample sets."""
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    manifold: dict[str, float] = {}
    for name in names:
        if name == "fid":
            out["fid"] = frechet_distance(gaussian_stats(real.features), gaussian_stats(fake.features))
        elif name == "kid":
            out["kid_mean"], out["kid_std"] = kernel_distance(real.features, fake.features, KID_SUBSETS,
                                                              kid_subset_size(len(real.x), len(fake.x)), seed)
        elif name == "is":
            out["is_mean"], out["is_std"] = classifier_score(fake.logits, IS_SPLITS)
        elif name in ("pr", "dc"):
            if "precision" not in manifold:  # one pass over distances gives both pairs
                if real.radii is None:  # kept with the real set: the same for every evaluation
                    real.radii = knn_radii(real.features.float(), (PR_K, DC_K))
                manifold.update(manifold_scores(real.features.float(), fake.features.float(), PR_K, DC_K,
                                                real.radii))
            keys = ("precision", "recall") if name == "pr" else ("density", "coverage")
            out.update({k: manifold[k] for k in keys})
        elif name == "modes":
            out.update(mode_scores(fake.x, structure.modes, structure.mode_std))
        elif name == "classes":
            predicted = fake.logits.argmax(1)
            counted = class_scores(predicted, len(extractor.classes), structure.class_frequencies, fake.labels)
            out.update(counted)
        elif name == "columns":
            table = column_scores(real.x.numpy(), fake.x.numpy(), structure.columns)
            details["columns"] = table.pop("columns")
            out.update(table)
    return out, details


def kid_subset_size(n_real: int, n_fake: int) -> int:
    """1,000, or half the smaller set when that is less, so that the subsets differ and their std means something."""
    return min(KID_SUBSET_SIZE, max(2, min(n_real, n_fake) // 2))


def how(names: list[str], extractor: Extractor, n_real: int, n_fake: int, seed: int) -> dict[str, Any]:
    """How the numbers were computed: enough to reproduce them or to know what they may be compared with."""
    return {
        "features": extractor.name,
        "extractor": extractor.info,
        "n_real": n_real,
        "n_fake": n_fake,
        "seed": seed,
        "metrics": names,
        "settings": {k: v for k, v in {
            "kid": {"kernel": "(x.y/d + 1)^3", "subsets": KID_SUBSETS, "subset_size": kid_subset_size(n_real, n_fake)},
            "pr": {"k": PR_K}, "dc": {"k": DC_K}, "is": {"splits": IS_SPLITS},
            "modes": {"high_quality": "within 3 std of the nearest mode"},
        }.items() if k in names},
    }


def resolve_features(name: str, is_image: bool, weights: str = "", data_name: str = "", channels: int = 1) -> str:
    """What ``auto`` features are: rows, the values standardised by the real samples (columns of mixed units);
    images, the data's bundled classifier (grey images, as it was trained on), else Inception when its weights
    are given (``weights`` or $GANKIT_INCEPTION_WEIGHTS), else the raw pixels."""
    if name != "auto":
        return name
    if not is_image:
        return "standardized"
    if data_name in DATA_CLASSIFIERS and channels == 1:
        return DATA_CLASSIFIERS[data_name]
    return "inception" if inception_weights(weights) else "raw"


def result(names: list[str], real: SampleSet, fake: SampleSet, extractor: Extractor, structure: Structure,
           seed: int, started: float) -> dict[str, Any]:
    """The metrics of featurized sets, with how they were computed and, for images on raw pixels, how to get FID
    comparable with papers."""
    metrics, details = score(names, real, fake, extractor, structure, seed)
    if fake.labels is None:
        metrics.pop("class_accuracy", None)  # no class was asked for
    out = {"metrics": metrics, **details, "how": how(names, extractor, len(real.x), len(fake.x), seed)}
    note = features_note(extractor, structure)
    if note:
        out["how"]["note"] = note
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


STANDARDIZED_NOTE = ("features 'standardized': FID, KID, precision/recall and density/coverage on the columns "
                     "standardised by the real samples' mean and std (--features raw: on the values as given); "
                     "column scores and modes in the data's units")
RAW_ROWS_NOTE = ("features 'raw': FID, KID, precision/recall and density/coverage on the values as given, so the "
                 "columns with the largest numbers weigh most (--features standardized: every column in units of "
                 "the real samples' std)")


def features_note(extractor: Extractor, structure: Structure) -> str | None:
    """What a reader of the numbers must know about the features they were computed on, if anything."""
    if structure.is_image:
        return f"features are raw pixel values, not Inception's: {INCEPTION_HINT}" if extractor.name == "raw" else None
    if extractor.standardize:
        return STANDARDIZED_NOTE
    return RAW_ROWS_NOTE if extractor.name == "raw" else None


def column_scale(real: SampleSet, extractor: Extractor, structure: Structure) -> tuple[Tensor, Tensor] | None:
    """For rows on standardising features (``standardized``), the real samples' per-column mean and std (ddof 1;
    else None). In the data's units, the distance-based scores are dominated by the column with the largest
    numbers (a weight in grams beside a height in metres, say: a FID of 10^6); in standard units every column
    counts alike."""
    if structure.is_image or not extractor.standardize or real.features is None or real.features.dim() != 2:
        return None
    f = real.features
    return f.mean(0), f.std(0).clamp_min(1e-12)


def standardise(samples: SampleSet, scale: tuple[Tensor, Tensor] | None) -> SampleSet:
    if scale is not None:
        samples.features = (samples.features - scale[0]) / scale[1]
    return samples


def compare(real: Tensor, fake: Tensor, features: str = "auto", metrics: str | Sequence[str] = "auto", *,
            seed: int = 0, weights: str = "", structure: Structure | None = None,
            fake_labels: Tensor | None = None) -> dict[str, Any]:
    """Score ``fake`` against ``real`` (samples in the extractor's units: pixels in [0, 1] for image features)."""
    started = time.perf_counter()
    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    structure = structure or Structure(is_image=real.dim() == 4)
    extractor = get_extractor(resolve_features(features, structure.is_image, weights), weights)
    names = parse_metrics(metrics, "--metrics") or applicable(extractor, structure)
    check_metrics(names, extractor, structure)
    real_set = featurize(extractor, SampleSet(real))
    scale = column_scale(real_set, extractor, structure)
    standardise(real_set, scale)
    fake_set = standardise(featurize(extractor, SampleSet(fake, fake_labels)), scale)
    return result(names, real_set, fake_set, extractor, structure, seed, started)


@dataclass
class Evaluator:
    """Scores generators against ``n_real`` real samples of ``data``, whose features are extracted once."""

    data: Dataset
    settings: EvalConfig = field(default_factory=EvalConfig)
    n_real: int = 10_000
    seed: int = 0

    def __post_init__(self):
        s = self.settings
        name = resolve_features(s.features, self.data.is_image, s.inception_weights, self.data.name,
                                self.data.shape[0] if self.data.is_image else 1)
        self.extractor = get_extractor(name, s.inception_weights)
        self.structure = Structure(
            modes=None if self.data.modes is None else self.data.modes.float(),
            mode_std=self.data.mode_std,
            class_frequencies=self.data.class_frequencies() if self.data.y is not None else None,
            columns=self.data.columns, is_image=self.data.is_image)
        if self.data.is_image and self.data.normalize != "minmax":  # map raw values to [0, 1] by the data's range
            raw = self.data.to_raw(self.data.x)
            self.pixel_range = (float(raw.min()), float(raw.max()))
        else:
            self.pixel_range = None
        self.names = parse_metrics(s.metrics) or applicable(self.extractor, self.structure)
        check_metrics(self.names, self.extractor, self.structure)
        g = torch.Generator().manual_seed(self.seed)
        n = min(self.n_real, len(self.data))
        index = torch.randperm(len(self.data), generator=g)[:n]
        self.real = featurize(self.extractor, SampleSet(self.to_units(self.data.x[index])))
        self.scale = column_scale(self.real, self.extractor, self.structure)
        standardise(self.real, self.scale)

    def to_units(self, x: Tensor) -> Tensor:
        """Samples in the networks' space -> the extractor's units (pixels in [0, 1], or the data's units)."""
        x = x.detach().cpu().float()
        if not self.extractor.pixels:
            return self.data.to_raw(x)
        if not self.data.is_image:
            raise GankitError(f"features {self.extractor.name!r} take images; this data is rows of "
                              f"{self.data.num_features} values (use eval.features = standardized or raw)")
        if self.pixel_range is None:
            return ((x + 1) / 2).clamp(0, 1)  # minmax data: [-1, 1] is the data's full value range
        lo, hi = self.pixel_range
        return ((self.data.to_raw(x) - lo) / max(hi - lo, 1e-12)).clamp(0, 1)

    def evaluate(self, fake: SampleSet) -> dict[str, Any]:
        started = time.perf_counter()
        standardise(featurize(self.extractor, fake), self.scale)
        return result(self.names, self.real, fake, self.extractor, self.structure, self.seed, started)


def best_key(text: str, names: list[str]) -> str | None:
    """The result key that picks the best checkpoint (``eval.best``), checked against the metrics computed."""
    if text == "none":
        return None
    if text == "auto":
        return "fid" if "fid" in names else None
    computed = {k for n in names for k in RESULT_KEYS[n]}
    if text not in LOWER_IS_BETTER | HIGHER_IS_BETTER:
        raise GankitError(f"eval.best = {text!r}: expected one of {', '.join(sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER))}"
                          f", auto or none")
    if text not in computed:
        raise GankitError(f"eval.best = {text!r}: that metric is not computed; eval.metrics gives "
                          f"{', '.join(sorted(computed))}")
    return text


def is_better(key: str, value: float | None, best: float | None) -> bool:
    if value is None or value != value:  # None or NaN never wins
        return False
    if best is None:
        return True
    return value < best if key in LOWER_IS_BETTER else value > best


__all__ = ["EXTRACTORS", "Evaluator", "Extractor", "RESULT_KEYS", "SampleSet", "Structure", "best_key", "compare",
           "is_better", "parse_metrics", "resolve_features"]
