"""TimeGAN's sequence metrics: copies score like the real floor, noise scores badly, padding is ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from gankit.errors import GankitError
from gankit.metrics.sequences import (_Discriminator, autocorrelation_difference, autocorrelations,
                                      discriminative_score, marginal_ks, predictive_score, real_floor, scores)


def sines(n: int, t: int = 24, f: int = 3, seed: int = 0) -> np.ndarray:
    """TimeGAN's sine_data_generation: per sequence and feature, freq, phase ~ U(0, 0.1)."""
    rng = np.random.default_rng(seed)
    freq, phase = rng.uniform(0, 0.1, (n, 1, f)), rng.uniform(0, 0.1, (n, 1, f))
    return ((np.sin(freq * np.arange(t)[None, :, None] + phase) + 1) / 2).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """2,000 sines; a generator that copies the data is the other, disjoint half."""
    x = sines(2000)
    return x[:1000], x[1000:], np.random.default_rng(1).uniform(size=(1000, 24, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def ragged():
    """Variable-length sines (12..24 valid steps) and their lengths."""
    rng = np.random.default_rng(3)
    real, fake = sines(200, seed=4), sines(150, seed=5)
    return real, fake, rng.integers(12, 25, 200), rng.integers(12, 25, 150)


def padded(x: np.ndarray, lengths: np.ndarray, value: float) -> np.ndarray:
    x = x.copy()
    x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = value
    return x


def test_discriminative_copy_near_zero_noise_near_half(data):
    real, copy, noise = data
    assert discriminative_score(real, copy, iterations=300) < 0.1
    assert discriminative_score(real, noise, iterations=1000) > 0.4


def test_predictive_copy_matches_real_floor_noise_is_worse(data):
    real, copy, noise = data
    floor = real_floor(np.concatenate([real, copy]), repeats=1, iterations=(0, 500))["predictive"]["mean"]
    on_copy, on_noise = predictive_score(real, copy, iterations=500), predictive_score(real, noise, iterations=500)
    assert abs(on_copy - floor) < 0.2 * floor
    assert on_noise > 1.5 * floor


def test_marginal_ks_identical_zero_and_hand_case():
    x = sines(50)
    assert marginal_ks(x, x) == [0.0, 0.0, 0.0]
    real = np.array([[[0.0, 0.0], [1.0, 1.0]], [[2.0, 2.0], [3.0, 3.0]]])  # [2, 2, 2]
    fake = real + np.array([0.5, 10.0])  # feature 0 shifted by half a step, feature 1 past all of real
    assert marginal_ks(real, fake) == pytest.approx([0.25, 1.0])
    # lengths: real keeps 0, 1, 2 (the 3 is padding), fake keeps 0.5, 2.5
    got = marginal_ks(real, fake, lengths_real=[2, 1], lengths_fake=[1, 1])
    assert got[0] == pytest.approx(ks_2samp([0, 1, 2], [0.5, 2.5]).statistic)


def hand_acf(x: np.ndarray, lengths: np.ndarray, max_lag: int) -> np.ndarray:
    """The documented definition, with loops: mean over sequences of the per-sequence biased ACF."""
    out = np.zeros((max_lag, x.shape[2]))
    for f in range(x.shape[2]):
        for k in range(1, max_lag + 1):
            acfs = []
            for i in range(len(x)):
                s = x[i, : lengths[i], f].astype(np.float64)
                d = s - s.mean()
                acfs.append(sum(d[t] * d[t + k] for t in range(len(s) - k)) / (d @ d) if d @ d > 0 else 0.0)
            out[k - 1, f] = np.mean(acfs)
    return out


def test_autocorrelation_hand_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 6, 2)), rng.normal(size=(2, 6, 2))
    lx, ly = np.array([6, 4, 5]), np.array([5, 6])
    x[1, :, 1] = 7.0  # a constant sequence counts as 0
    np.testing.assert_allclose(autocorrelations(x, lx, max_lag=3), hand_acf(x, lx, 3), rtol=1e-6, atol=1e-12)
    want = np.abs(hand_acf(x, lx, 3) - hand_acf(y, ly, 3)).mean()
    assert autocorrelation_difference(x, y, 3, lx, ly) == pytest.approx(want, rel=1e-6)
    # default max_lag: shortest length - 1 = 3
    assert autocorrelation_difference(x, y, None, lx, ly) == pytest.approx(want, rel=1e-6)


def test_autocorrelation_identical_zero_sine_vs_noise_large():
    t = np.arange(24)
    sin = np.sin(0.5 * t[None, :, None] + np.linspace(0, 3, 40)[:, None, None])  # [40, 24, 1]
    noise = np.random.default_rng(0).normal(size=sin.shape)
    assert autocorrelation_difference(sin, sin) == 0.0
    big = autocorrelation_difference(sin, noise)
    assert big > 0.2
    assert big == pytest.approx(np.abs(hand_acf(sin, [24] * 40, 23) - hand_acf(noise, [24] * 40, 23)).mean())


def test_padding_past_lengths_changes_nothing(ragged):
    real, fake, lr, lf = ragged
    results = []
    for value in (0.0, 1e6, np.nan):
        r, f = padded(real, lr, value), padded(fake, lf, value)
        results.append((discriminative_score(r, f, lr, lf, iterations=20),
                        predictive_score(r, f, lr, lf, iterations=20),
                        marginal_ks(r, f, lr, lf), autocorrelation_difference(r, f, None, lr, lf)))
    assert results[0] == results[1] == results[2]
    # and the lengths are used: the full sequences score differently
    assert predictive_score(real, fake, iterations=20) != results[0][1]


def test_discriminator_reads_the_last_valid_state():
    torch.manual_seed(0)
    model = _Discriminator(3)
    x = torch.rand(2, 10, 3)
    with torch.no_grad():
        both = model(x, torch.tensor([4, 10]))
        assert torch.allclose(both[0], model(x[:1, :4], torch.tensor([4]))[0], atol=1e-6)
        assert torch.allclose(both[1], model(x[1:], torch.tensor([10]))[0], atol=1e-6)


def test_deterministic_and_leaves_global_state_alone(ragged):
    real, fake, lr, lf = ragged
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    a = discriminative_score(real, fake, lr, lf, iterations=30, seed=1), predictive_score(real, fake, lr, lf, iterations=30, seed=1)
    b = discriminative_score(real, fake, lr, lf, iterations=30, seed=1), predictive_score(real, fake, lr, lf, iterations=30, seed=1)
    assert a == b
    assert predictive_score(real, fake, lr, lf, iterations=30, seed=2) != a[1]
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), state)


def test_scores_and_real_floor_summaries(ragged):
    real, fake, lr, lf = ragged
    out = scores(torch.from_numpy(real), fake, lr, torch.from_numpy(lf), repeats=2, iterations=(10, 10), progress=True)
    assert set(out) == {"discriminative", "predictive"}
    for summary in out.values():
        assert len(summary["values"]) == 2 and summary["mean"] == pytest.approx(np.mean(summary["values"]))
        assert summary["std"] == pytest.approx(np.std(summary["values"]))
    assert out["predictive"]["values"][0] == predictive_score(real, fake, lr, lf, iterations=10, seed=0)
    floor = real_floor(real, lr, repeats=2, iterations=(10, 10))
    assert len(floor["predictive"]["values"]) == 2 and 0 <= floor["discriminative"]["mean"] <= 0.5


def test_bad_input_one_line_errors():
    x = sines(10)
    with pytest.raises(GankitError, match=r"real has shape \[10, 24, 3\] and fake \[10, 24, 2\]"):
        discriminative_score(x, x[..., :2])
    with pytest.raises(GankitError, match=r"expected \[N, T, F\]"):
        marginal_ks(x[0], x)
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(GankitError, match="NaN"):
        predictive_score(x, bad, iterations=1)
    late = x.copy()
    late[0, -1, 0] = np.nan  # in the padding of a 23-step sequence: fine
    assert len(marginal_ks(x, late, lengths_fake=[23] + [24] * 9)) == 3
    with pytest.raises(GankitError, match=">= 2 features"):
        predictive_score(x[..., :1], x[..., :1], iterations=1)
    with pytest.raises(GankitError, match=r"lengths_fake must lie in 1\.\.24"):
        marginal_ks(x, x, lengths_fake=[0] * 10)
    with pytest.raises(GankitError, match="max_lag"):
        autocorrelation_difference(x, x, max_lag=24)
