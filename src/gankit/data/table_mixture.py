"""The per-column Gaussian mixture of CTGAN's mode-specific normalisation, fitted fast and stored as arrays.

CTGAN (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN") fits, through rdt's
ClusterBasedNormalizer, sklearn's ``BayesianGaussianMixture(n_components=10,
weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=0.001, n_init=1)`` to each
numeric column. This is the same variational model with the same priors, initialisation (k-means) and
updates (Bishop 2006, sec. 10.2; Blei & Jordan 2006 for the stick-breaking weights), written for one
variable and for weighted points:

- the distinct values with their counts give exactly the fit on every row (sklearn has no sample weights
  and takes ~1.2 s a column at 20,000 rows, as its 100 iterations rarely meet its absolute tolerance);
- past ``MAX_POINTS`` distinct values, the sorted column is cut into that many equal-count runs, each
  replaced by its mean with its count: the fit sees every row, at a resolution far finer than any mode.

The result is plain arrays (no sklearn object to pickle): the posterior over modes is
``log p(k | x) = log_const[k] - 0.5 ((x - mean[k]) * precision[k])^2 + c(x)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln

MAX_POINTS = 2048  # distinct points the fit sees at most; runs of equal-count rows past that
REG_COVAR = 1e-6  # sklearn's default, added to each variance
MAX_ITER, TOL = 100, 1e-3  # sklearn's defaults (the tolerance is on the lower bound summed over rows)
EPS = 10 * np.finfo(np.float64).eps  # sklearn's guard on empty components


@dataclass(frozen=True)
class Mixture:
    """A fitted 1-D mixture: every array is [K]."""

    weights: np.ndarray  # the expected stick-breaking weights, summing to 1
    means: np.ndarray
    stds: np.ndarray  # sqrt of the (normalised) covariance, as rdt uses to scale values
    precisions: np.ndarray  # 1 / std, from sklearn's Cholesky factor of the precision
    log_const: np.ndarray  # the per-mode constant of the variational posterior

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """[N] values -> [N, K] posterior probabilities of each mode (sklearn's predict_proba)."""
        logits = self.log_const - 0.5 * np.square((x[:, None] - self.means) * self.precisions)  # [N, K]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def compress(x: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """[N] values -> (points [P], counts [P]), sorted: the distinct values, or runs of equal-count rows."""
    points, counts = np.unique(x, return_counts=True)
    if len(points) <= max_points:
        return points, counts.astype(np.float64)
    ordered = np.sort(x)
    starts = np.linspace(0, len(ordered), max_points + 1).astype(np.int64)[:-1]
    sizes = np.diff(np.append(starts, len(ordered))).astype(np.float64)
    return np.add.reduceat(ordered, starts) / sizes, sizes


def fit_mixture(x: np.ndarray, counts: np.ndarray, n_components: int, seed: int = 0,
                weight_prior: float = 0.001) -> Mixture:
    """Variational Dirichlet-process Gaussian mixture of points ``x`` [P] weighted by ``counts`` [P]."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    total = counts.sum()
    mean_prior = float(counts @ x / total)
    cov_prior = float(counts @ np.square(x - mean_prior) / (total - 1)) if total > 1 else 0.0  # np.cov, ddof 1
    # one thread: on a few thousand points OpenMP's start-up costs 30x the clustering itself
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # fewer distinct points than clusters is handled by the caller's cap
        labels = KMeans(n_clusters=n_components, n_init=1, random_state=seed).fit(
            x[:, None], sample_weight=counts).labels_
    resp = np.zeros((len(x), n_components))
    resp[np.arange(len(x)), labels] = 1.0
    priors = (weight_prior, mean_prior, cov_prior)
    params = _m_step(x, counts[:, None] * resp, priors)
    lower_bound = -math.inf
    for _ in range(MAX_ITER):
        log_resp, resp = _e_step(x, params)
        weighted = counts[:, None] * resp  # [P, K] each point counted as often as it occurs
        params = _m_step(x, weighted, priors)
        previous, lower_bound = lower_bound, _lower_bound(weighted, log_resp, params)
        if abs(lower_bound - previous) < TOL:
            break
    return _mixture(params)


def _m_step(x, wr, priors):
    """The variational M-step (sklearn's _estimate_weights, _estimate_means, _estimate_wishart_full), from the
    responsibilities times the counts ``wr`` [P, K]."""
    weight_prior, mean_prior, cov_prior = priors
    nk = wr.sum(axis=0) + EPS
    xk = np.einsum("p,pk->k", x, wr) / nk
    sk = np.einsum("pk,pk->k", wr, np.square(x[:, None] - xk)) / nk + REG_COVAR
    a = 1.0 + nk  # Beta(a, b) of each stick
    b = weight_prior + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))
    mean_precision = 1.0 + nk  # mean_precision_prior = 1
    means = (mean_prior + nk * xk) / mean_precision
    dof = 1.0 + nk  # degrees_of_freedom_prior = n_features = 1
    cov = (cov_prior + nk * sk + nk / mean_precision * np.square(xk - mean_prior)) / dof
    return a, b, mean_precision, means, dof, cov, 1.0 / np.sqrt(cov)


def _log_const(params) -> np.ndarray:
    """[K] log weight + the Gaussian's normaliser + the variational corrections (sklearn's _estimate_log_prob)."""
    a, b, mean_precision, _, dof, _, prec = params
    digamma_sum = digamma(a + b)
    log_weights = digamma(a) - digamma_sum + np.hstack((0.0, np.cumsum(digamma(b) - digamma_sum)[:-1]))
    log_lambda = math.log(2.0) + digamma(0.5 * dof)
    return (log_weights - 0.5 * math.log(2 * math.pi) + np.log(prec) - 0.5 * np.log(dof)
            + 0.5 * (log_lambda - 1.0 / mean_precision))


def _e_step(x, params) -> tuple[np.ndarray, np.ndarray]:
    """[P, K] log responsibilities and responsibilities."""
    means, prec = params[3], params[6]
    logits = np.subtract(x[:, None], means)  # [P, K]
    logits *= prec
    np.square(logits, out=logits)
    logits *= -0.5
    logits += _log_const(params)
    logits -= logits.max(axis=1, keepdims=True)
    resp = np.exp(logits)
    total = resp.sum(axis=1, keepdims=True)
    resp /= total
    logits -= np.log(total)
    return logits, resp


def _lower_bound(wr, log_resp, params) -> float:
    """sklearn's _compute_lower_bound (constants dropped), with each point counted as often as it occurs."""
    a, b, mean_precision, _, dof, _, prec = params
    log_det = np.log(prec) - 0.5 * np.log(dof)
    log_wishart = np.sum(-(dof * log_det + dof * 0.5 * math.log(2.0) + gammaln(0.5 * dof)))
    log_norm_weight = -np.sum(betaln(a, b))
    entropy = -np.einsum("pk,pk->", wr, log_resp)  # einsum, not BLAS: its threads cost more than the sum
    return float(entropy - log_wishart - log_norm_weight - 0.5 * np.sum(np.log(mean_precision)))


def _mixture(params) -> Mixture:
    a, b, _, means, _, cov, prec = params
    sticks = a / (a + b)
    weights = sticks * np.hstack((1.0, np.cumprod(b / (a + b))[:-1]))
    return Mixture(weights=weights / weights.sum(), means=means, stds=np.sqrt(cov), precisions=prec,
                   log_const=_log_const(params))
