"""Time-series metrics: TimeGAN's discriminative and predictive scores, plus marginal and temporal checks.

Image metrics see no time axis, so generated sequences are judged as TimeGAN (Yoon et al., NeurIPS 2019,
github.com/jsyoon0823/TimeGAN, ``metrics/``) judged them, reimplemented here in PyTorch:

- discriminative score: a post-hoc one-layer GRU (hidden ``max(F // 2, 1)``) learns to tell real from
  fake on 80% of each set (2,000 Adam steps on batches of 128 real + 128 fake); the score is
  |test accuracy - 0.5| on the other 20%. 0 is best, 0.5 worst.
- predictive score ("train on synthetic, test on real"): a one-layer GRU trained on the fake sequences
  predicts the last feature one step ahead from the other features (5,000 Adam steps, batches of 128);
  the score is its mean absolute error on all the real sequences. Lower is better; ``real_floor``
  gives the value real data reach.

Both are noisy, so ``scores`` repeats them with different seeds (the paper reports mean and std of 10).
``marginal_ks`` (per-feature KS statistic) and ``autocorrelation_difference`` (mean |ACF gap|) are
cheap, training-free complements. Inputs are [N, T, F] arrays in the data's own units, with optional
per-sequence lengths; steps past a length are padding and are ignored (zeroed before any network sees
them). Everything runs on the CPU in float32, on one thread, and is deterministic for a given seed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import GankitError
from ..speed import thread_limit

TRAIN_RATE = 0.8  # train_test_divide's split of each set in the discriminative score


def _as_sequences(x, lengths, name: str) -> tuple[Tensor, Tensor]:
    """[N, T, F] float32 CPU tensor with padding zeroed, and int64 lengths [N]; one-line errors."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x.detach()).to("cpu", torch.float32)
    if x.ndim != 3 or min(x.shape) == 0:
        raise GankitError(f"{name} has shape {list(x.shape)}; expected [N, T, F] with N, T, F >= 1")
    n, t, _ = x.shape
    if lengths is None:
        lengths = torch.full((n,), t, dtype=torch.int64)
    else:
        lengths = torch.as_tensor(np.asarray(lengths) if not isinstance(lengths, Tensor) else lengths.detach())
        if lengths.shape != (n,):
            raise GankitError(f"lengths_{name} has shape {list(lengths.shape)}; expected [{n}] for {name} "
                              f"of shape {list(x.shape)}")
        if lengths.is_floating_point() and not torch.equal(lengths, lengths.round()):
            raise GankitError(f"lengths_{name} must be whole numbers of steps; got {lengths.tolist()[:5]}...")
        lengths = lengths.to("cpu", torch.int64)
        if lengths.min() < 1 or lengths.max() > t:
            raise GankitError(f"lengths_{name} must lie in 1..{t}; got {lengths.min()}..{lengths.max()}")
    mask = torch.arange(t) < lengths[:, None]  # [N, T]
    if not torch.isfinite(x[mask]).all():
        raise GankitError(f"{name} has NaN or Inf values at valid steps")
    x = torch.where(mask[..., None], x, 0.0)[:, : int(lengths.max())]
    return x.contiguous(), lengths


def _pair(real, fake, lengths_real, lengths_fake) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Both sets checked, with the same feature count, padded to a common length."""
    real, lr = _as_sequences(real, lengths_real, "real")
    fake, lf = _as_sequences(fake, lengths_fake, "fake")
    if real.shape[2] != fake.shape[2]:
        raise GankitError(f"real has shape {list(real.shape)} and fake {list(fake.shape)}: "
                          f"{real.shape[2]} features against {fake.shape[2]}")
    t = max(real.shape[1], fake.shape[1])
    real, fake = (nn.functional.pad(x, (0, 0, 0, t - x.shape[1])) for x in (real, fake))
    return real, lr, fake, lf


def _mask(lengths: Tensor, t: int) -> Tensor:
    return torch.arange(t) < lengths[:, None]


def _init_like_tensorflow(gru: nn.GRU, head: nn.Linear, gate_bias: float) -> None:
    """The reference's (TF/Keras) initialisation: Glorot-uniform input and output weights, orthogonal
    recurrent weights, zero biases except ``gate_bias`` on the reset and update gates."""
    h = gru.hidden_size
    nn.init.xavier_uniform_(gru.weight_ih_l0)
    for k in range(3):  # (reset, update, new) blocks, each [H, H]
        nn.init.orthogonal_(gru.weight_hh_l0[k * h:(k + 1) * h])
    nn.init.zeros_(gru.bias_hh_l0)
    nn.init.zeros_(gru.bias_ih_l0)
    nn.init.constant_(gru.bias_ih_l0[: 2 * h], gate_bias)
    nn.init.xavier_uniform_(head.weight)
    nn.init.zeros_(head.bias)


class _Discriminator(nn.Module):
    """GRU -> its hidden state at each sequence's last valid step -> one logit."""

    def __init__(self, features: int):
        super().__init__()
        self.gru = nn.GRU(features, max(features // 2, 1), batch_first=True)
        self.head = nn.Linear(self.gru.hidden_size, 1)
        _init_like_tensorflow(self.gru, self.head, gate_bias=0.0)  # Keras GRUCell

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        out, _ = self.gru(x)  # causal: the state at step L-1 never sees the (zeroed) padding
        return self.head(out[torch.arange(len(x)), lengths - 1]).squeeze(1)


class _Predictor(nn.Module):
    """GRU -> per-step linear -> sigmoid: the next value of the last feature."""

    def __init__(self, features: int):
        super().__init__()
        self.gru = nn.GRU(features - 1, max(features // 2, 1), batch_first=True)  # the last feature is the target
        self.head = nn.Linear(self.gru.hidden_size, 1)
        _init_like_tensorflow(self.gru, self.head, gate_bias=1.0)  # TF1 rnn_cell.GRUCell

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.gru(x)[0])).squeeze(2)  # [B, T-1]


def _batch(n: int, size: int, generator: torch.Generator) -> Tensor:
    """batch_generator: ``size`` distinct random indices (all of them when n <= size)."""
    return torch.randperm(n, generator=generator)[:size]


def discriminative_score(real, fake, lengths_real=None, lengths_fake=None, iterations: int = 2000,
                         batch_size: int = 128, seed: int = 0) -> float:
    """|accuracy - 0.5| of a post-hoc GRU classifier on held-out real and fake sequences (0 best, 0.5 worst)."""
    real, lr, fake, lf = _pair(real, fake, lengths_real, lengths_fake)
    if len(real) < 2 or len(fake) < 2:
        raise GankitError(f"discriminative_score needs >= 2 sequences per set; got {len(real)} real, {len(fake)} fake")
    g = torch.Generator().manual_seed(seed)
    parts = []
    for x, lengths in ((real, lr), (fake, lf)):  # train_test_divide: each set split 80/20 at random
        idx = torch.randperm(len(x), generator=g)
        cut = int(len(x) * TRAIN_RATE)
        parts.append(((x[idx[:cut]], lengths[idx[:cut]]), (x[idx[cut:]], lengths[idx[cut:]])))
    (real_train, real_test), (fake_train, fake_test) = parts
    with torch.random.fork_rng(devices=[]), thread_limit(1):
        torch.manual_seed(seed)
        model = _Discriminator(real.shape[2])
        opt = torch.optim.Adam(model.parameters())  # lr 1e-3, as tf.train.AdamOptimizer()
        bce = nn.functional.binary_cross_entropy_with_logits
        for _ in range(iterations):
            i, j = _batch(len(real_train[0]), batch_size, g), _batch(len(fake_train[0]), batch_size, g)
            x = torch.cat([real_train[0][i], fake_train[0][j]])
            logits = model(x, torch.cat([real_train[1][i], fake_train[1][j]]))
            lo_real, lo_fake = logits[: len(i)], logits[len(i):]
            loss = bce(lo_real, torch.ones_like(lo_real)) + bce(lo_fake, torch.zeros_like(lo_fake))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.inference_mode():
            correct = (model(*real_test) > 0).sum() + (model(*fake_test) <= 0).sum()  # sigmoid > 0.5
    accuracy = correct.item() / (len(real_test[0]) + len(fake_test[0]))
    return abs(accuracy - 0.5)


def predictive_score(real, fake, lengths_real=None, lengths_fake=None, iterations: int = 5000,
                     batch_size: int = 128, seed: int = 0) -> float:
    """MAE on all real sequences of a GRU trained on the fake ones to predict the last feature one step
    ahead from the other features (train on synthetic, test on real; lower is better).

    As in the reference, predictions pass through a sigmoid, which suits TimeGAN's data (min-max
    scaled to [0, 1]); scale the data to [0, 1] first, or the score is floored by the values outside.
    The score is the mean over real sequences of each one's MAE over its valid steps (L - 1 targets).
    """
    real, lr, fake, lf = _pair(real, fake, lengths_real, lengths_fake)
    f = real.shape[2]
    if f < 2:
        raise GankitError(f"predictive_score needs >= 2 features (inputs and a target); got shape {list(real.shape)}")
    if min(lr.min(), lf.min()) < 2:
        raise GankitError("predictive_score needs every sequence to have >= 2 valid steps")
    g = torch.Generator().manual_seed(seed)

    def split(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Inputs x[:, :-1, :F-1], targets x[:, 1:, F-1], and which of the T-1 targets are valid."""
        return x[:, :-1, : f - 1], x[:, 1:, f - 1], _mask(lengths - 1, x.shape[1] - 1)

    fx, fy, fm = split(fake, lf)
    with torch.random.fork_rng(devices=[]), thread_limit(1):
        torch.manual_seed(seed)
        model = _Predictor(f)
        opt = torch.optim.Adam(model.parameters())
        for _ in range(iterations):
            i = _batch(len(fx), batch_size, g)
            m = fm[i]
            loss = ((model(fx[i]) - fy[i]).abs() * m).sum() / m.sum()  # MAE over valid steps
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rx, ry, rm = split(real, lr)
        with torch.inference_mode():
            err = (model(rx) - ry).abs() * rm
    per_sequence = err.double().sum(1) / (lr - 1)
    return per_sequence.mean().item()


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def _repeated(pairs: Callable[[int], tuple], repeats: int, seed: int, iterations: tuple[int, int],
              progress: bool) -> dict:
    """Both scores on ``pairs(seed + r)`` for r < repeats, each with seed + r."""
    if repeats < 1:
        raise GankitError(f"repeats must be >= 1; got {repeats}")
    disc, pred = [], []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=repeats, desc="sequence scores", unit="repeat")
    try:
        for r in range(repeats):
            real, fake, lr, lf = pairs(seed + r)
            disc.append(discriminative_score(real, fake, lr, lf, iterations=iterations[0], seed=seed + r))
            pred.append(predictive_score(real, fake, lr, lf, iterations=iterations[1], seed=seed + r))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"discriminative": _summary(disc), "predictive": _summary(pred)}


def scores(real, fake, lengths_real=None, lengths_fake=None, repeats: int = 10, seed: int = 0,
           iterations: tuple[int, int] = (2000, 5000), progress: bool = False) -> dict:
    """Discriminative and predictive scores ``repeats`` times (seeds seed, seed + 1, ...):
    {"discriminative": {"mean", "std", "values"}, "predictive": {...}}. ``iterations``: (disc, pred)."""
    real, lr, fake, lf = _pair(real, fake, lengths_real, lengths_fake)
    return _repeated(lambda s: (real, fake, lr, lf), repeats, seed, iterations, progress)


def real_floor(real, lengths=None, repeats: int = 10, seed: int = 0, iterations: tuple[int, int] = (2000, 5000),
               progress: bool = False) -> dict:
    """``scores`` of real against real: each repeat splits the data into two random halves and scores
    one ("fake") against the other; what a perfect generator would reach. Same dict as ``scores``."""
    real, lengths = _as_sequences(real, lengths, "real")
    if len(real) < 4:
        raise GankitError(f"real_floor needs >= 4 sequences to split in halves; got shape {list(real.shape)}")

    def halves(s: int) -> tuple:
        idx = torch.randperm(len(real), generator=torch.Generator().manual_seed(s))
        a, b = idx[: len(real) // 2], idx[len(real) // 2:]
        return real[a], real[b], lengths[a], lengths[b]

    return _repeated(halves, repeats, seed, iterations, progress)


def _valid_values(x: Tensor, lengths: Tensor) -> np.ndarray:
    """[sum of lengths, F] float64: every valid step's feature vector."""
    return x[_mask(lengths, x.shape[1])].double().numpy()


def marginal_ks(real, fake, lengths_real=None, lengths_fake=None) -> list[float]:
    """Per feature, the two-sample Kolmogorov-Smirnov statistic between all valid steps' values."""
    from scipy.stats import ks_2samp

    real, lr, fake, lf = _pair(real, fake, lengths_real, lengths_fake)
    a, b = _valid_values(real, lr), _valid_values(fake, lf)
    return [float(ks_2samp(a[:, k], b[:, k]).statistic) for k in range(a.shape[1])]


def autocorrelations(x, lengths=None, max_lag: int | None = None) -> np.ndarray:
    """[max_lag, F]: at lag k (row k-1) and feature f, the mean over sequences of the per-sequence sample
    autocorrelation  sum_{t<L-k} d_t d_{t+k} / sum_{t<L} d_t^2,  d_t = x_t - mean(x_0..x_{L-1})  (the
    standard biased estimator, statsmodels' ``acf``). A constant sequence counts as 0."""
    x, lengths = _as_sequences(x, lengths, "x")
    return _acf(x, lengths, _check_lag(max_lag, int(lengths.min())))


def _check_lag(max_lag: int | None, shortest: int) -> int:
    if max_lag is None:
        max_lag = shortest - 1
    if not 1 <= max_lag <= shortest - 1:
        raise GankitError(f"max_lag must lie in 1..{shortest - 1} (the shortest sequence has {shortest} steps); "
                          f"got {max_lag}")
    return max_lag


def _acf(x: Tensor, lengths: Tensor, max_lag: int) -> np.ndarray:
    x64 = x.double()  # padding is already 0
    mean = x64.sum(1, keepdim=True) / lengths.double()[:, None, None]
    d = torch.where(_mask(lengths, x.shape[1])[..., None], x64 - mean, 0.0)  # [N, T, F], zero past L
    var = (d * d).sum(1)  # [N, F]
    rows = []
    for k in range(1, max_lag + 1):
        cov = (d[:, :-k] * d[:, k:]).sum(1)
        rows.append(torch.where(var > 0, cov / var.clamp_min(torch.finfo(torch.float64).tiny), 0.0).mean(0))
    return torch.stack(rows).numpy()


def autocorrelation_difference(real, fake, max_lag: int | None = None, lengths_real=None,
                               lengths_fake=None) -> float:
    """Mean over features and lags 1..max_lag of |ACF_real - ACF_fake|, each ACF the mean over its set of
    the per-sequence autocorrelations (``autocorrelations``). Default max_lag: shortest length - 1."""
    real, lr, fake, lf = _pair(real, fake, lengths_real, lengths_fake)
    lag = _check_lag(max_lag, int(min(lr.min(), lf.min())))
    return float(np.abs(_acf(real, lr, lag) - _acf(fake, lf, lag)).mean())


__all__ = ["autocorrelation_difference", "autocorrelations", "discriminative_score", "marginal_ks",
           "predictive_score", "real_floor", "scores"]
