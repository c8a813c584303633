"""The recurrent family (model.family = "rnn"): G and D's shapes and contracts, and short classic-game runs on
sequences and on text that train, repeat themselves and resume exactly."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import gankit
from conftest import StopAt
from gankit.checkpoint import load_checkpoint
from gankit.data.text import decode
from gankit.errors import GankitError
from gankit.models.rnn import RNNDiscriminator, RNNGenerator


def normal(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------------- G


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_generator_shapes_and_noise_layout(cell):
    """z_dim = 1 + T * per_step (per_step = the noise per step, plus V Gumbel coordinates for text); x is [B, T, F]."""
    G = RNNGenerator(3, (6, 4), hidden=8, depth=2, cell=cell, out_activation="tanh")
    assert G.per_step == 3 and G.z_dim == 1 + 6 * 3
    x = G(normal(5, G.z_dim))
    assert x.shape == (5, 6, 4) and x.abs().max() <= 1  # tanh
    text = RNNGenerator(3, (6, 4), hidden=8, depth=2, cell=cell, out_activation="gumbel")
    assert text.per_step == 3 + 4 and text.z_dim == 1 + 6 * 7
    assert text(normal(5, text.z_dim)).shape == (5, 6, 4)


@pytest.mark.parametrize("activation", ["none", "gumbel"])
def test_conditional_generator_reads_its_labels(activation):
    """A conditional G's output depends on y (same z, other labels: other samples); without y it refuses."""
    G = RNNGenerator(2, (5, 6), hidden=8, depth=1, num_classes=3, embed_dim=4, out_activation=activation)
    z = normal(64, G.z_dim)
    a, b = G(z, torch.zeros(64, dtype=torch.long)), G(z, torch.full((64,), 2, dtype=torch.long))
    assert a.shape == b.shape == (64, 5, 6) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="conditional .3 classes. and needs labels y"):
        G(z)


def test_fit_lengths_draws_the_datas_lengths_and_zeroes_the_rest():
    """After fit_lengths, Phi(z_0) draws lengths with the data's frequencies (20k draws, 4-5 sigma), and every
    step past a sample's length is exactly zero while its last valid step is not; unfitted, every length is T."""
    T = 6
    G = RNNGenerator(2, (T, 3), hidden=8, depth=1, out_activation="none")
    z = normal(20_000, G.z_dim, seed=1)
    assert (G.lengths(z) == T).all()
    probs = torch.tensor([0.05, 0.10, 0.15, 0.0, 0.40, 0.30])  # a length of 4 never occurs
    data_lengths = 1 + torch.multinomial(probs, 2000, replacement=True, generator=torch.Generator().manual_seed(2))
    G.fit_lengths(data_lengths)
    expected = torch.bincount(data_lengths - 1, minlength=T).double() / len(data_lengths)
    drawn = G.lengths(z)
    observed = torch.bincount(drawn - 1, minlength=T).double() / len(z)
    assert observed[3] == 0 and (observed - expected).abs().max() < 0.015, (observed, expected)
    chi2 = (len(z) * (observed - expected).square() / expected.clamp_min(1e-12))[expected > 0].sum()
    assert chi2 < 20.5  # chi-square, 4 degrees of freedom: p < 0.0005 by chance
    x = G(z[:500])
    steps = torch.arange(T)[None, :]
    lengths = drawn[:500]
    assert (x[steps.expand(500, -1) >= lengths[:, None]] == 0).all()
    assert (x[torch.arange(500), lengths - 1].abs().sum(1) > 0).all()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_text_generator_emits_one_hots_that_end_once(cell):
    """Text G: every step is one-hot or all zero; each item has exactly one end symbol (vocab index 0), at the
    latest at the last step of its drawn length, and nothing after it, like the data's items."""
    T, V = 7, 5
    G = RNNGenerator(2, (T, V), hidden=8, depth=2, cell=cell, out_activation="gumbel")
    G.fit_lengths(torch.tensor([2, 3, 3, 4, 7, 7]))
    z = normal(2000, G.z_dim, seed=3)
    with torch.no_grad():
        x = G(z)
    assert set(x.unique().tolist()) <= {0.0, 1.0} and set(x.sum(-1).unique().tolist()) <= {0.0, 1.0}
    ends = x[..., 0] == 1  # [B, T]
    assert (ends.sum(1) == 1).all()
    first = ends.float().argmax(1)
    assert (first < G.lengths(z)).all()
    after = torch.arange(T)[None, :] > first[:, None]
    before = torch.arange(T)[None, :] < first[:, None]
    assert (x[after] == 0).all() and (x[before].sum(-1) == 1).all() and (x[before][:, 0] == 0).all()
    assert (first < G.lengths(z) - 1).any()  # some items end by G's own end symbol, before the drawn length


def test_text_generator_is_a_function_of_z_and_passes_gradients_straight_through():
    """Same z, same items (no global RNG drawn); D's loss on G's one-hot items reaches G's weights (the softmax's
    gradient, straight through the one-hot sample)."""
    G = RNNGenerator(2, (6, 5), hidden=8, depth=1, out_activation="gumbel")
    D = RNNDiscriminator((6, 5), hidden=8)
    z = normal(32, G.z_dim, seed=4)
    rng = torch.get_rng_state()
    a, b = G(z), G(z.clone())
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), rng)
    assert not torch.equal(a, G(normal(32, G.z_dim, seed=5)))
    D(a).mean().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------------------------------------------- D


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("judge", ["sequence", "step"])
def test_discriminator_shapes_features_and_batch_independence(cell, bidirectional, judge):
    """D judges a sequence ([B] logits) or every step ([B * T]); features() is as wide as the head's input; a
    sample's logits do not depend on the rest of the batch (D declares batch_independent)."""
    T, F = 6, 3
    D = RNNDiscriminator((T, F), hidden=8, depth=2, cell=cell, bidirectional=bidirectional, judge=judge)
    x = torch.randn(10, T, F, generator=torch.Generator().manual_seed(6))
    out = D(x)
    assert out.shape == ((10,) if judge == "sequence" else (10 * T,))
    assert D.features(x).shape == (10, D.head.in_features) and D.head.in_features == 8 * (2 if bidirectional else 1)
    assert D.batch_independent
    torch.testing.assert_close(torch.cat([D(x[:4]), D(x[4:])]), out, rtol=1e-5, atol=1e-6)


def test_bidirectional_discriminator_reads_the_sequence_both_ways():
    """With bidirectional = true the final state sees the first step through the backward direction: changing the
    first step changes the backward half of the features."""
    D = RNNDiscriminator((6, 3), hidden=8, bidirectional=True)
    x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(7))
    y = x.clone()
    y[:, -1] += 1.0  # the last step: the backward direction's first input
    a, b = D.features(x), D.features(y)
    assert not torch.allclose(a[:, :8], b[:, :8]) and not torch.allclose(a[:, 8:], b[:, 8:])


def test_conditional_discriminator_reads_its_labels():
    D = RNNDiscriminator((6, 3), hidden=8, num_classes=2, embed_dim=4)
    x = torch.randn(8, 6, 3, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(D(x, torch.zeros(8, dtype=torch.long)), D(x, torch.ones(8, dtype=torch.long)))
    with pytest.raises(ValueError, match="needs labels y"):
        D(x)


def test_rnn_family_refuses_data_that_are_not_sequences(tmp_path):
    with pytest.raises(GankitError, match=r'model.family = "rnn" reads sequences \[T, F\]'):
        gankit.train(None, run_dir=tmp_path / "r", steps=1, progress=False, overrides=["model.family=rnn"])


# ------------------------------------------------------------------------------------------------- training

SINES = ["data.name=sines", "data.n=256", "data.window=12", "data.batch_size=32", "model.family=rnn",
         "model.z_dim=2", "model.g_hidden=8", "model.d_hidden=8", "model.g_depth=1", "model.d_depth=1",
         "train.log_every=2", "train.checkpoint_every=3", "train.plot_every=1000", "eval.every=0"]


def train_sines(path, steps=6, extra=(), **kwargs):
    return gankit.train(None, run_dir=path, steps=steps, progress=False, overrides=[*SINES, *extra], **kwargs)


def tensors_of(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "latest.safetensors")[0]


@pytest.mark.parametrize("extra", [(), ("model.cell=lstm", "model.d_judge=step", "model.d_bidirectional=true")])
def test_classic_game_on_sines_trains_and_repeats_itself(tmp_path, extra):
    """A classic run of the rnn family on sines [N, 12, 5]: finite losses, G samples [n, 12, 5] in the data's
    [0, 1], and a second run with the same seed writes a bit-identical checkpoint."""
    first = train_sines(tmp_path / "a", extra=extra)
    assert first.step == 6 and all(np.isfinite(first.record[k]) for k in ("d_loss", "g_loss"))
    assert isinstance(first.trainer.players["G"], RNNGenerator) and first.trainer.players["G"].z_dim == 1 + 12 * 2
    x, _ = gankit.sample(tmp_path / "a", n=16)
    assert x.shape == (16, 12, 5) and x.min() >= -1e-6 and x.max() <= 1 + 1e-6
    train_sines(tmp_path / "b", extra=extra)
    a, b = tensors_of(tmp_path / "a"), tensors_of(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_classic_game_on_sines_resumes_exactly(tmp_path):
    """8 steps straight == 4 steps, stopped, then resumed to 8: bit-identical weights and optimizer states."""
    assert train_sines(tmp_path / "full", steps=8).step == 8
    part = train_sines(tmp_path / "part", steps=8, callbacks=[StopAt(4)])
    assert part.step == 4
    resumed = gankit.train(run_dir=tmp_path / "part", resume=True, steps=8, progress=False)
    assert resumed.step == 8
    a, b = tensors_of(tmp_path / "full"), tensors_of(tmp_path / "part")
    assert a.keys() == b.keys() and any(k.startswith("opt_g.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_text_run_trains_and_samples_words_over_a_to_z(tmp_path):
    """words (at most 6 letters) with the rnn family: a few finite steps; samples are one-hot items with one end
    symbol each and decode to strings of a-z of at most 6 letters."""
    result = gankit.train(None, run_dir=tmp_path / "w", steps=4, progress=False, overrides=[
        "data.name=words", "data.max_length=6", "data.batch_size=32", "model.family=rnn", "model.z_dim=2",
        "model.g_hidden=8", "model.d_hidden=8", "model.g_depth=1", "model.d_depth=1", "train.log_every=2",
        "train.plot_every=1000", "eval.every=0"])
    assert result.step == 4 and np.isfinite(result.record["d_loss"]) and np.isfinite(result.record["g_loss"])
    _, meta = load_checkpoint(tmp_path / "w" / "checkpoints" / "latest.safetensors")
    vocab = meta["data"]["vocab"]
    assert vocab[0] == "\n" and "".join(vocab[1:]) == "abcdefghijklmnopqrstuvwxyz"
    x, _ = gankit.sample(tmp_path / "w", n=200)
    assert x.shape == (200, 7, 27) and set(np.unique(x).tolist()) <= {0.0, 1.0}
    assert (x[..., 0].sum(1) == 1).all()  # one end symbol per item
    items = decode(torch.from_numpy(x), vocab)
    assert all(re.fullmatch(r"[a-z]{0,6}", item) for item in items), items[:10]
    assert len(set(items)) > 1
