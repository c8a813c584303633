"""Metrics: features -> statistics -> value, under stable result names.

Image metrics on pluggable features (``features.EXTRACTORS``): Fréchet distance (FID on Inception
features), kernel distance (KID), classifier/Inception score, precision/recall, density/coverage.
Mode coverage for data with known modes or classes; distribution tests for 1-D and tabular data.
Rows are scored on their values as given (``raw``) or standardised by the real samples (``standardized``,
what ``auto`` picks for rows).
"""

from .columns import column_scores, correlation_difference, ks_statistic, wasserstein1
from .evaluate import (HIGHER_IS_BETTER, LOWER_IS_BETTER, RESULT_KEYS, Evaluator, SampleSet, Structure, best_key,
                       compare, is_better, parse_metrics, resolve_features)
from .features import EXTRACTORS, Extractor, get_extractor
from .frechet import GaussianStats, frechet_distance, gaussian_stats
from .kernel import kernel_distance, mmd2_unbiased, polynomial_kernel
from .manifold import density_coverage, knn_radii, manifold_scores, precision_recall
from .modes import class_scores, histogram_kl, mode_scores
from .scores import classifier_score

__all__ = ["EXTRACTORS", "Evaluator", "Extractor", "GaussianStats", "HIGHER_IS_BETTER", "LOWER_IS_BETTER",
           "RESULT_KEYS", "SampleSet", "Structure", "best_key", "class_scores", "classifier_score", "column_scores",
           "compare", "correlation_difference", "density_coverage", "frechet_distance",
           "gaussian_stats", "get_extractor", "histogram_kl", "is_better", "kernel_distance", "knn_radii",
           "ks_statistic", "manifold_scores", "mmd2_unbiased", "mode_scores", "parse_metrics", "polynomial_kernel", "precision_recall",
           "resolve_features", "wasserstein1"]
