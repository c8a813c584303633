"""Sequence and text runs as products: gankit sample's files, gankit eval's scores, export (ONNX too) and serve."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

import gankit
from gankit.api import evaluate, sample, sample_sequences, sample_text
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data.dataset import DATASETS
from gankit.export import MANIFEST, ONNX_MODEL, export, load
from gankit.product_loader import load_generator
from gankit.sampling import seeded_inputs

TINY = ["model.family=rnn", "model.g_hidden=4", "model.d_hidden=4", "model.g_depth=1", "model.d_depth=1",
        "model.z_dim=2", "train.steps=2", "data.batch_size=16", "train.log_every=1", "train.plot_every=1000",
        "eval.every=0"]
WORDS = ["cat", "dog", "ox", "emu", "ant", "bee", "cow", "eel", "elk", "fox", "gnu", "hen", "pig", "rat", "yak", "owl",
         "bat", "ape", "asp", "boa", "cod", "doe", "ewe", "jay", "kit", "koi", "ram", "sow", "tit", "yew", "auk", "gar"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("sequence-outputs")


@pytest.fixture(scope="module")
def sines_run(root):
    """Sines of one length (6 steps, 5 features in [0, 1])."""
    run = root / "sines"
    gankit.train(None, overrides=["data.name=sines", "data.n=64", "data.window=6", *TINY], run_dir=run, progress=False)
    return run


@pytest.fixture(scope="module")
def varying_run(root):
    """Sequences of 2..7 steps with labels, from an .npz: the third feature lives around 10, far from [0, 1]."""
    rng = np.random.default_rng(0)
    n, steps = 64, 7
    lengths = rng.integers(2, steps + 1, n)
    t = np.arange(steps)
    x = np.stack([np.sin(0.5 * t[None] + rng.uniform(size=(n, 1))), np.cos(0.3 * t[None]).repeat(n, 0),
                  10 + rng.normal(size=(n, steps))], axis=2)
    x[t[None, :] >= lengths[:, None]] = 0
    np.savez(root / "varying.npz", x=x, lengths=lengths, y=rng.integers(0, 2, n))
    run = root / "varying"
    gankit.train(None, overrides=["data.name=file", f'data.path="{root / "varying.npz"}"', *TINY], run_dir=run,
                 progress=False)
    return run


@pytest.fixture(scope="module")
def text_run(root):
    """Three-letter animals from a text file (data.name = lines), one-hot over the end symbol and their letters."""
    (root / "animals.txt").write_text("\n".join(WORDS) + "\n")
    run = root / "text"
    gankit.train(None, overrides=["data.name=lines", f'data.path="{root / "animals.txt"}"', *TINY], run_dir=run,
                 progress=False)
    return run


def test_fixed_length_samples_are_in_the_datas_units(sines_run, capsys):
    x, y = sample(sines_run, 9, seed=4)
    assert x.shape == (9, 6, 5) and y is None
    G, meta, shift, scale = load_generator(sines_run)
    z, _ = seeded_inputs(9, meta["model"]["z_dim"], 4)
    with torch.no_grad():
        want = (G(z) * scale + shift).numpy()
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-6)
    assert 0 <= x.min() and x.max() <= 1  # tanh in the networks' space: the sines' own [0, 1]
    xs, lengths, _ = sample_sequences(sines_run, 9, seed=4)
    assert lengths is None and np.array_equal(xs, x)
    assert main(["sample", str(sines_run), "--n", "9", "--seed", "4", "--out", str(sines_run / "s.npy")]) == 0
    assert np.array_equal(np.load(sines_run / "s.npy"), x)
    assert main(["sample", str(sines_run), "--out", str(sines_run / "s.txt")]) == 2
    assert "a .txt file holds text; this run generates sequences" in capsys.readouterr().err


def test_varying_lengths_pad_with_zeros_and_go_to_npz_and_long_csv(varying_run, capsys):
    x, lengths, y = sample_sequences(varying_run, 40, seed=1)
    assert x.shape == (40, 7, 3) and lengths.shape == (40,) and y.shape == (40,)
    G, meta, _, _ = load_generator(varying_run)
    z, _ = seeded_inputs(40, meta["model"]["z_dim"], 1, meta["data"]["class_frequencies"])
    assert np.array_equal(lengths, G.lengths(z).numpy()) and len(set(lengths.tolist())) > 1
    padding = np.arange(7)[None, :] >= lengths[:, None]
    assert (x[padding] == 0).all() and (x[~padding][:, 2] > 5).all()  # zero padding, not the shift (~10)
    assert np.array_equal(sample(varying_run, 40, seed=1)[0], x)

    assert main(["sample", str(varying_run), "--n", "40", "--seed", "1", "--out", str(varying_run / "v.npy")]) == 2
    assert "vary in length" in capsys.readouterr().err and not (varying_run / "v.npy").exists()
    assert main(["sample", str(varying_run), "--n", "40", "--seed", "1", "--out", str(varying_run / "v.npz")]) == 0
    with np.load(varying_run / "v.npz") as saved:
        assert sorted(saved.files) == ["lengths", "x", "y"]
        assert np.array_equal(saved["x"], x) and np.array_equal(saved["lengths"], lengths)
        classes = [int(name) for name in meta["data"]["class_names"]]
        assert np.array_equal(saved["y"], np.array(classes)[y])

    csv = varying_run / "v.csv"
    assert main(["sample", str(varying_run), "--n", "40", "--seed", "1", "--out", str(csv)]) == 0
    assert csv.read_text().splitlines()[0] == "id,time,x0,x1,x2,label"
    back = DATASETS.get("file")(DataConfig(name="file", path=str(csv), label_column="label"), 0)
    np.testing.assert_allclose(back.x.numpy(), x, rtol=1e-6, atol=1e-6)  # "%.7g"
    assert np.array_equal(back.lengths.numpy(), lengths)
    assert np.array_equal(np.array([int(back.class_names[k]) for k in back.y]), np.array(classes)[y])


def test_text_runs_write_items_and_refuse_arrays(text_run, capsys):
    items = sample_text(text_run, 30, seed=2)
    vocab = load_generator(text_run)[1]["data"]["vocab"]
    assert len(items) == 30 and all(len(item) <= 3 and set(item) <= set(vocab[1:]) for item in items)
    x, lengths, _ = sample_sequences(text_run, 30, seed=2)
    assert x.shape == (30, 4, len(vocab)) and np.array_equal(lengths, [len(item) + 1 for item in items])
    np.testing.assert_allclose(x.sum(2), np.arange(4)[None] < lengths[:, None], atol=1e-6)  # one-hot to the end
    out = text_run / "words.txt"
    assert main(["sample", str(text_run), "--n", "30", "--seed", "2", "--out", str(out)]) == 0
    assert out.read_text().split("\n") == items + [""]
    assert main(["sample", str(text_run), "--out", str(text_run / "w.npy")]) == 2
    assert "this run generates text; expected a .txt file" in capsys.readouterr().err


def test_eval_of_a_sequence_run_writes_the_timegan_scores_and_their_floor(varying_run, capsys):
    assert main(["eval", str(varying_run), "--repeats", "2", "--iterations", "3,3"]) == 0
    result = json.loads((varying_run / "eval.json").read_text())
    assert json.loads(capsys.readouterr().out) == result
    m = result["metrics"]
    for key in ("discriminative", "predictive", "floor_discriminative", "floor_predictive"):
        assert m[f"{key}_std"] >= 0 and np.isfinite(m[f"{key}_mean"])
    assert 0 <= m["discriminative_mean"] <= 0.5 and len(result["scores"]["predictive"]["values"]) == 2
    assert len(result["real_floor"]["discriminative"]["values"]) == 2
    assert 0 <= m["floor_ks_mean"] <= m["ks_max"] <= 1 and set(result["ks"]) == {"x0", "x1", "x2"}
    assert m["acf_diff"] >= 0 and m["floor_acf_diff"] >= 0
    assert result["how"]["n_real"] == result["how"]["n_fake"] == 64 and result["how"]["lengths"] == "variable"
    assert main(["eval", str(varying_run), "--metrics", "fid"]) == 2
    assert "--metrics fid: a sequence run is scored by its own metrics" in capsys.readouterr().err


def test_eval_of_a_text_run_scores_items_against_the_splits(text_run):
    result = evaluate(text_run, n=300, write=False)
    assert set(result["metrics"]) == {"valid", "novel", "unique", "bigram_jsd", "length_distance"}
    assert 0 <= result["metrics"]["valid"] <= 1 and 0 < result["metrics"]["bigram_jsd"] <= 1
    how = result["how"]
    assert how["n_fake"] == 300 and how["n_reference"] == len(WORDS) and 0 < how["n_held_out"] < len(WORDS)
    assert how["n_train"] + how["n_held_out"] == len(WORDS)
    assert result["examples"] == sample_text(text_run, 20)


@pytest.fixture(scope="module")
def exports(root, varying_run, text_run):
    pytest.importorskip("onnxruntime")
    return {name: (root / f"{name}-export", export(run, root / f"{name}-export", ["safetensors", "onnx"]))
            for name, run in (("varying", varying_run), ("text", text_run))}


def test_export_of_sequences_and_text_with_a_checked_onnx_model(exports, varying_run, text_run):
    out, result = exports["varying"]
    assert result.onnx_max_abs_diff <= 1e-4 and (out / ONNX_MODEL).is_file()
    output = json.loads((out / MANIFEST).read_text())["output"]
    assert output["kind"] == "sequence" and output["shape"] == [7, 3] and output["lengths"]["variable"]
    assert len(output["lengths"]["cdf"]) == 7 and output["lengths"]["cdf"][-1] == 1.0
    model = load(out)
    want = sample_sequences(varying_run, 25, seed=3)
    for backend in ("torch", "onnx"):
        x, lengths, y = model.sequences(25, seed=3, backend=backend)
        assert np.array_equal(lengths, want[1]) and np.array_equal(y, want[2])
        np.testing.assert_allclose(x, want[0], rtol=0, atol=1e-4)
        assert (x[np.arange(7)[None] >= lengths[:, None]] == 0).all()

    out, result = exports["text"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["output"]["kind"] == "text" and manifest["output"]["vocab"][0] == "\n"
    assert "stop at vocab[0]" in manifest["output"]["decode"]
    model = load(out)
    for backend in ("torch", "onnx"):
        assert model.texts(25, seed=3, backend=backend)[0] == sample_text(text_run, 25, seed=3)


def test_serve_answers_sequences_and_strings(exports, text_run):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from test_serve import start_server, stop

    path = exports["varying"][0]
    x, lengths, y = load(path).sequences(6, seed=5)
    process, url = start_server(path)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = client.post("/v1/generate", json={"n": 6, "seed": 5}).json()
            assert body["shape"] == [7, 3] and body["lengths"] == lengths.tolist()
            for sample_i, x_i, length in zip(body["samples"], x, lengths):
                assert len(sample_i) == length
                np.testing.assert_allclose(np.array(sample_i), x_i[:length], rtol=0, atol=1e-5)
            r = client.post("/v1/generate", json={"n": 6, "seed": 5, "format": "npy"})
            np.testing.assert_allclose(np.load(io.BytesIO(r.content)), x, rtol=0, atol=1e-5)
            assert r.headers["x-lengths"] == ",".join(map(str, lengths.tolist()))
            r = client.post("/v1/generate", json={"n": 2, "format": "png"})
            assert r.status_code == 422 and "this one makes sequences [7, 3]" in r.json()["error"]
    finally:
        assert "Traceback" not in stop(process)

    process, url = start_server(exports["text"][0], "--backend", "onnx")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = client.post("/v1/generate", json={"n": 8, "seed": 5}).json()
            assert body["samples"] == sample_text(text_run, 8, seed=5)
            r = client.post("/v1/generate", json={"n": 2, "format": "npy"})
            assert r.status_code == 422 and "this model makes text" in r.json()["error"]
    finally:
        assert "Traceback" not in stop(process)
