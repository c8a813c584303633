"""Pictures of sequence and text runs: real against generated traces, the text table, PCA and t-SNE, the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.data.sequences import from_sequences
from gankit.runs import RunDir
from gankit.sequence_pictures import (TEXT_SHOWN, SequenceEmbedding, SequenceTraces, embedding_points,
                                      generated_lengths, save_figure, text_figure, traces_figure)

TINY = ["data.name=sines", "data.n=300", "model.family=rnn", "train.steps=20", "data.batch_size=32",
        "model.g_hidden=8", "model.d_hidden=8", "eval.every=0", "train.plot_every=10"]


def train(path, overrides=(), data=None, embedding=True):
    run = RunDir(path)
    callbacks = [SequenceTraces(run, 10, seed=0)] + ([SequenceEmbedding(run, n=100, seed=0)] if embedding else [])
    gankit.train(gankit.load_config(None, TINY + list(overrides)), run_dir=path, progress=False,
                 callbacks=callbacks, data=data)
    return run


@pytest.fixture(scope="module")
def sines_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("seq") / "r")


def size(path):
    with Image.open(path) as im:
        return im.size


def test_a_sequence_run_draws_traces_embedding_and_gif_and_the_report_shows_them(sines_run):
    samples = sines_run.samples
    assert [step for step, _ in sines_run.pictures()] == [0, 10, 20]
    for _, path in sines_run.pictures():
        assert size(path) == (1040, 630)  # 4 of sines' 5 features: 2 x 2 panels
    assert size(samples / "embedding.png") == (1040, 460)
    assert (samples / "progress.gif").is_file()
    page = sines_run.report_path.read_text(encoding="utf-8")
    for src in ("samples/step_0000020.png", "samples/progress.gif", "samples/embedding.png"):
        assert f'src="{src}"' in page
    assert "t-SNE" in page


def test_the_pictures_are_deterministic(sines_run, tmp_path):
    again = train(tmp_path / "r")
    for name in ("step_0000000.png", "step_0000020.png", "embedding.png"):
        assert (again.samples / name).read_bytes() == (sines_run.samples / name).read_bytes(), name


def test_traces_are_drawn_over_valid_steps_only():
    real, fake = np.random.rand(3, 10, 2), np.random.rand(2, 10, 2)
    fig = traces_figure(real, fake, [10, 4, 1], [7, 2], columns=["a", "b"], title="t")
    try:
        for ax in fig.axes:
            lengths = [len(line.get_xdata()) for line in ax.get_lines()]
            assert lengths == [10, 4, 1, 7, 2]  # real first, then generated
            for line, n in zip(ax.get_lines(), [10, 4, 1, 7, 2]):
                assert list(line.get_xdata()) == list(range(n))
        assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
        assert fig.axes[0].get_legend() is not None
    finally:
        save_figure(fig, "/dev/null")  # closes it


def test_a_variable_length_run_draws_each_trace_to_its_length(tmp_path, monkeypatch):
    g = np.random.default_rng(0)
    t = np.arange(12)
    x = np.sin(t[None, :, None] * g.uniform(0.2, 0.6, (200, 1, 1))) * 10 + 50  # [200, 12, 1], units ~ 40..60
    data = from_sequences(x, g.integers(3, 13, 200), name="varlen")
    seen = []
    import gankit.sequence_pictures as sp

    real_figure = sp.traces_figure
    monkeypatch.setattr(sp, "traces_figure", lambda *a, **k: seen.append(a) or real_figure(*a, **k))
    run = train(tmp_path / "r", ["data.name=array"], data=data, embedding=False)
    assert size(run.picture_path(20)) == (520, 340)  # one feature: one panel
    real, _, real_lengths, fake_lengths = seen[-1][:4]
    assert 40 < real[0, 0, 0] < 61  # the data's units
    assert min(real_lengths) >= 3 and max(real_lengths) <= 12 and len(set(real_lengths)) > 1
    assert all(1 <= n <= 12 for n in fake_lengths)


def test_generated_lengths():
    x = torch.zeros(3, 5, 2)
    x[0, :5], x[1, :2], x[2, 0, 1] = 1.0, -1.0, 0.5
    assert generated_lengths(torch.nn.Identity(), None, x, varies=True).tolist() == [5, 2, 1]
    assert generated_lengths(torch.nn.Identity(), None, x, varies=False).tolist() == [5, 5, 5]

    class WithLengths(torch.nn.Identity):
        def lengths(self, z):
            return torch.tensor([3, 4, 9])

    assert generated_lengths(WithLengths(), torch.zeros(3, 1), x, varies=True).tolist() == [3, 4, 5]


def test_a_text_run_draws_a_table_and_writes_the_items(tmp_path):
    run = train(tmp_path / "r", ["data.name=words", "data.max_length=8"], embedding=False)
    items = run.picture_path(20).with_suffix(".txt").read_text(encoding="utf-8").split("\n")
    assert len(items) == TEXT_SHOWN + 1 and items[-1] == ""
    assert size(run.picture_path(20)) == size(run.picture_path(0))
    assert "step_0000020.txt" in run.report_path.read_text(encoding="utf-8")


def test_text_table_fits_long_and_empty_items(tmp_path):
    fig = text_figure(["", "x" * 100, "ok"], ["real"], title="t")
    texts = [t.get_text() for t in fig.texts]
    assert "(empty)" in texts and "ok" in texts and "real" in texts
    assert any(t.endswith("…") and len(t) <= 28 for t in texts)
    save_figure(fig, tmp_path / "t.png")
    assert size(tmp_path / "t.png")[0] == 900


def test_embedding_follows_timegan():
    rng = np.random.default_rng(0)
    real, fake = rng.random((50, 8, 3)), rng.random((40, 8, 3)) + 1
    pr, pf, tr, tf = embedding_points(real, fake, seed=0)
    assert pr.shape == (50, 2) and pf.shape == (40, 2) and tr.shape == (50, 2) and tf.shape == (40, 2)
    from sklearn.decomposition import PCA

    expected = PCA(2).fit(real.mean(2)).transform(fake.mean(2))  # mean over features; PCA fit on real
    np.testing.assert_allclose(np.abs(pf), np.abs(expected), atol=1e-8)
    np.testing.assert_allclose(pr.mean(0), 0, atol=1e-8)
    tiny = embedding_points(real[:3], fake[:3])  # perplexity shrinks below the number of points
    assert tiny[2].shape == (3, 2)
