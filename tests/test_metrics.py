"""Metrics against independent computations: closed forms, scipy, and the papers' definitions written out
as plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from gankit.errors import GankitError
from gankit.metrics import (GaussianStats, class_scores, classifier_score, column_scores, compare,
                            correlation_difference, density_coverage, frechet_distance, gaussian_stats, get_extractor,
                            histogram_kl, kernel_distance, ks_statistic, mmd2_unbiased, mode_scores, parse_metrics,
                            precision_recall, wasserstein1)


def rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------- Fréchet


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The straightforward computation (as in the original TF and pytorch-fid code): scipy's sqrtm of S_a S_b."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * root))


@pytest.mark.parametrize("dim", [1, 8, 32])
def test_frechet_distance_matches_scipy_sqrtm(dim):
    r = rng(dim)
    a = r.standard_exponential((600, dim))  # not Gaussian: the statistic is of the fitted Gaussians anyway
    b = r.normal(0.3, 1.5, (500, dim)) @ r.normal(size=(dim, dim)) * 0.5
    ours = frechet_distance(gaussian_stats(a), gaussian_stats(b))
    assert ours == pytest.approx(reference_fid(a, b), rel=1e-4)


def test_frechet_distance_closed_form_for_two_gaussians():
    # Diagonal covariances: d^2 = |mu_a - mu_b|^2 + sum_i (sqrt(s_a,i) - sqrt(s_b,i))^2.
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    a = GaussianStats(mu_a, np.diag(var_a), 0)
    b = GaussianStats(mu_b, np.diag(var_b), 0)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    # Rotating both Gaussians together changes nothing.
    q, _ = np.linalg.qr(rng(1).normal(size=(3, 3)))
    ra = GaussianStats(q @ mu_a, q @ np.diag(var_a) @ q.T, 0)
    rb = GaussianStats(q @ mu_b, q @ np.diag(var_b) @ q.T, 0)
    assert frechet_distance(ra, rb) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_with_fewer_samples_than_features_is_finite():
    r = rng(2)
    a, b = r.normal(size=(20, 64)), r.normal(size=(30, 64))
    ours = frechet_distance(gaussian_stats(a), gaussian_stats(b))
    assert math.isfinite(ours) and ours == pytest.approx(reference_fid(a, b), rel=1e-3)


def test_gaussian_stats_match_numpy():
    x = rng(3).normal(size=(100, 5))
    stats = gaussian_stats(torch.from_numpy(x).float())
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.cov, np.cov(x, rowvar=False), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------- kernel


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al. 2018, eq. for the unbiased MMD^2 estimator, as plain loops."""
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_unbiased_matches_the_definition():
    r = rng(4)
    x, y = r.normal(size=(20, 4)), r.normal(0.5, 1.2, size=(25, 4))
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(reference_mmd2(x, y), rel=1e-10)


def test_kernel_distance_one_full_subset_is_the_full_estimate():
    r = rng(5)
    x, y = torch.from_numpy(r.normal(size=(30, 3))), torch.from_numpy(r.normal(1.0, 1.0, size=(30, 3)))
    mean, std = kernel_distance(x, y, subsets=1, subset_size=30)
    assert mean == pytest.approx(reference_mmd2(x.numpy(), y.numpy()), rel=1e-10) and std == 0.0


def test_kernel_distance_is_unbiased_near_zero_for_one_distribution():
    r = rng(6)
    x, y = torch.from_numpy(r.normal(size=(2000, 8))), torch.from_numpy(r.normal(size=(2000, 8)))
    mean, std = kernel_distance(x, y, subsets=20, subset_size=500)
    far, _ = kernel_distance(x, y + 1.0, subsets=20, subset_size=500)
    assert abs(mean) < 3 * std + 1e-3
    assert far > 50 * abs(mean) and far > 0.1


# --------------------------------------------------------------------------------------------- score


def reference_score(logits: np.ndarray, splits: int) -> tuple[float, float]:
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0)
        kl = np.sum(part * (np.log(part) - np.log(marginal)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores, ddof=1))


def test_classifier_score_matches_the_definition():
    logits = rng(7).normal(0, 3, size=(1000, 10))
    ours = classifier_score(torch.from_numpy(logits), splits=10)
    assert ours == pytest.approx(reference_score(logits, 10), rel=1e-9)


def test_classifier_score_extremes():
    confident = torch.full((100, 10), -50.0)
    confident[torch.arange(100), torch.arange(100) % 10] = 50.0
    assert classifier_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)  # even and sure: K
    same = torch.zeros(100, 10)
    same[:, 3] = 50.0
    assert classifier_score(same, splits=1)[0] == pytest.approx(1.0, rel=1e-6)  # one class for all: 1


# --------------------------------------------------------------------------------------------- manifold


def reference_prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5):
    def dists(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(a, k):
        d = dists(a, a)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    rr, rf = radii(real, k_pr), radii(fake, k_pr)
    d_fr = dists(fake, real)  # [M, N]
    precision = np.mean([any(d_fr[j, i] <= rr[i] for i in range(len(real))) for j in range(len(fake))])
    recall = np.mean([any(d_fr[j, i] <= rf[j] for j in range(len(fake))) for i in range(len(real))])
    r5 = radii(real, k_dc)
    density = sum(d_fr[j, i] <= r5[i] for j in range(len(fake)) for i in range(len(real))) / (k_dc * len(fake))
    coverage = np.mean([d_fr[:, i].min() <= r5[i] for i in range(len(real))])
    return precision, recall, density, coverage


def test_precision_recall_density_coverage_match_the_definitions():
    r = rng(8)
    real = r.normal(size=(80, 3))
    fake = np.concatenate([r.normal(size=(40, 3)) * 0.5, r.normal(3, 1, size=(30, 3))])  # half on, some off
    p, rc = precision_recall(torch.from_numpy(real), torch.from_numpy(fake))
    d, c = density_coverage(torch.from_numpy(real), torch.from_numpy(fake))
    ref = reference_prdc(real, fake)
    assert (p, rc, d, c) == pytest.approx(ref, abs=1e-12)
    assert 0.5 < p < 0.75 and rc < 0.9  # the off-manifold part lowers precision; the narrow part lowers recall


def test_manifold_metrics_for_identical_and_disjoint_sets():
    x = torch.from_numpy(rng(9).normal(size=(200, 4)))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert density_coverage(x, x)[1] == 1.0
    far = x + 100
    assert precision_recall(x, far) == (0.0, 0.0)
    assert density_coverage(x, far) == (0.0, 0.0)


# --------------------------------------------------------------------------------------------- modes


def test_mode_scores_by_hand():
    modes = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.5, 0.0], [9.0, 0.5], [5.0, 0.0], [0.0, -2.9]])  # the third is 5 std from both
    s = mode_scores(samples, modes, mode_std=1.0)
    assert s["high_quality"] == 0.75 and s["modes_covered"] == 2 and s["modes_total"] == 2
    # p = (2/3, 1/3) against the uniform q = (1/2, 1/2)
    assert s["mode_kl"] == pytest.approx(2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3))
    one = mode_scores(np.zeros((10, 2)), modes, 1.0)
    assert one["modes_covered"] == 1 and one["mode_kl"] == pytest.approx(math.log(2), abs=1e-6)
    none = mode_scores(np.full((5, 2), 50.0), modes, 1.0)
    assert none["high_quality"] == 0.0 and none["modes_covered"] == 0 and none["mode_kl"] is None


def test_class_scores_by_hand():
    predicted = torch.tensor([0, 0, 1, 1, 1, 2])
    s = class_scores(predicted, 4, data_frequencies=torch.full((4,), 0.25), requested=torch.tensor([0, 1, 1, 1, 1, 2]))
    assert s["classes_covered"] == 3 and s["classes_total"] == 4
    assert s["class_accuracy"] == pytest.approx(5 / 6)
    p = np.array([2, 3, 1]) / 6
    expected = float(np.sum(p * np.log(p / 0.25))) + 1e-10 * math.log(1e-10 / 0.25)
    assert s["class_kl"] == pytest.approx(expected)
    assert histogram_kl(np.array([1, 3]), np.array([0.25, 0.75])) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------- columns


def test_ks_and_wasserstein_match_scipy():
    r = rng(10)
    for n, m in [(100, 150), (500, 37)]:
        a, b = r.normal(size=n), r.standard_exponential(size=m)
        assert ks_statistic(a, b) == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, abs=1e-12)
        assert wasserstein1(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-9)
    ties = np.array([0.0, 0.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0, 1.0, 3.0])
    assert ks_statistic(*ties) == pytest.approx(scipy.stats.ks_2samp(*ties).statistic)
    assert wasserstein1(*ties) == pytest.approx(scipy.stats.wasserstein_distance(*ties))


def test_column_scores():
    r = rng(11)
    real = r.multivariate_normal([0, 5], [[1, 0.8], [0.8, 1]], size=4000)
    fake = np.stack([r.normal(0, 1, 4000), r.normal(5.5, 2, 4000)], 1)  # right margin of x0, no correlation
    s = column_scores(real, fake, ["a", "b"])
    assert s["columns"]["a"]["ks"] < 0.05 and s["columns"]["b"]["ks"] > 0.15
    assert s["columns"]["b"]["fake_mean"] == pytest.approx(5.5, abs=0.1)
    assert s["columns"]["b"]["fake_std"] == pytest.approx(2.0, rel=0.05)
    assert s["corr_diff"] == pytest.approx(0.8, abs=0.05)
    assert s["ks_max"] == s["columns"]["b"]["ks"]
    assert correlation_difference(real[:, :1], fake[:, :1]) is None


# --------------------------------------------------------------------------------------------- compare


def test_compare_raw_and_standardized_features_and_batch_size_independence():
    r = rng(12)
    real = torch.from_numpy(r.normal(0, 0.1, size=(3000, 1))).float()
    fake = torch.from_numpy(r.normal(0.3, 0.1, size=(3000, 1))).float()
    out = compare(real, fake, "raw", "fid,kid,pr,dc,columns")
    # 1-D Gaussians: d^2 = (mu_a - mu_b)^2 + (s_a - s_b)^2: on the values as given 0.3^2 + 0^2...
    assert out["metrics"]["fid"] == pytest.approx(0.09, rel=0.05)
    assert out["metrics"]["ks_max"] > 0.8 and out["metrics"]["coverage"] < 0.35
    assert out["how"]["features"] == "raw" and out["how"]["n_real"] == 3000 and out["how"]["seed"] == 0
    standard = compare(real, fake, "standardized", "fid,columns")  # ...in units of the real std (0.1): 3^2 + 0^2
    assert standard["metrics"]["fid"] == pytest.approx(9.0, rel=0.05)
    assert standard["metrics"]["ks_max"] == out["metrics"]["ks_max"]  # column scores stay in the data's units
    assert compare(real, fake, metrics="fid")["how"]["features"] == "standardized"  # auto, for rows
    apart = compare(real, fake + 1.0, "raw", "pr")["metrics"]  # 13 std apart: no overlap
    assert apart == {"precision": 0.0, "recall": 0.0}

    extractor = get_extractor("raw")
    whole, _ = extractor(real, batch_size=3000)
    parts, _ = extractor(real, batch_size=7)
    assert torch.equal(whole, parts)


def test_metric_names_are_checked():
    with pytest.raises(GankitError, match="unknown metric 'fidd'"):
        parse_metrics("fid,fidd")
    assert parse_metrics("auto") is None
    x = torch.zeros(10, 2)
    with pytest.raises(GankitError, match="needs a classifier's logits"):
        compare(x, x, "raw", "is")
    with pytest.raises(GankitError, match="unknown feature extractor 'nope'"):
        compare(x, x, "nope")


def test_standardized_row_scores_do_not_depend_on_the_columns_units():
    """A weight in grams beside a height in metres: on standardized features FID, KID and the k-NN scores of rows
    see standardised columns, so a change of units changes nothing; on raw ones the gram column alone decides."""
    r = rng(3)
    real = torch.from_numpy(r.normal(0, 1, size=(1500, 2))).float()
    fake = torch.from_numpy(r.normal(0.2, 1.1, size=(1500, 2))).float()
    units = torch.tensor([1.0, 1000.0])
    a = compare(real, fake, "standardized", "fid,kid,pr,dc")["metrics"]
    b = compare(real * units, fake * units, "standardized", "fid,kid,pr,dc")["metrics"]
    assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    assert a["fid"] < 0.2
    raw = compare(real * units, fake * units, "raw", "fid")["metrics"]
    assert raw["fid"] > 1e4 * a["fid"]


def test_frechet_distance_of_a_set_with_itself_is_zero_not_minus_rounding():
    for seed in range(20):  # rounding gave -8.9e-16 for some sets: a distance is never negative
        x = torch.from_numpy(rng(seed).normal(size=(300, 1 + seed % 5)))
        assert 0.0 <= compare(x, x, "raw", "fid")["metrics"]["fid"] < 1e-10
