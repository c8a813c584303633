"""gankit export / gankit.load: a self-contained generator folder, its ONNX twin, and what they must reproduce."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch

import gankit
import gankit.product_loader
from gankit.cli import main
from gankit.errors import GankitError
from gankit.export import MANIFEST, ONNX_MODEL, WEIGHTS, export, load
from gankit.onnx_export import onnx_session
from gankit.sampling import seeded_inputs, truncate

pytest.importorskip("onnxruntime")

DIGITS = ["train.steps=12", "train.log_every=4", "train.checkpoint_every=12", "train.plot_every=1000",
          "eval.every=0", "model.g_hidden=8", "model.d_hidden=8", "train.ema=0.9"]
RING = ["data.name=ring8", "data.n=2000", "data.batch_size=64", "model.g_hidden=16", "model.d_hidden=16",
        "model.z_dim=4", "model.latent_classes=8", "train.steps=10", "train.log_every=5", "train.plot_every=1000",
        "eval.every=0"]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A conditional DCGAN on digits with a moving average of G: labels, images and --ema all apply."""
    run = tmp_path_factory.mktemp("digits") / "run"
    gankit.train("digits-dcgan", overrides=DIGITS, run_dir=run, progress=False)
    return run


@pytest.fixture(scope="session")
def ring_run(tmp_path_factory):
    """An unconditional MLP on ring8 with the discrete latent (erf, one-hot) that ONNX must also express."""
    run = tmp_path_factory.mktemp("ring") / "run"
    gankit.train(None, overrides=RING, run_dir=run, progress=False)
    return run


@pytest.fixture(scope="session")
def digits_export(digits_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("digits-export") / "export"
    return out, export(digits_run, out, ["safetensors", "onnx"])


def test_export_writes_weights_manifest_and_a_checked_onnx_model(digits_export, digits_run):
    out, result = digits_export
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS, ONNX_MODEL])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == "gankit-generator/1" and manifest["gankit_version"] == gankit.__version__
    assert manifest["family"] == "dcgan" and manifest["latent"]["z_dim"] == 32
    assert manifest["labels"]["names"] == [str(k) for k in range(10)]
    assert [i["name"] for i in manifest["product"]["inputs"]] == ["z", "y"]  # named for whatever reads it
    assert manifest["product"]["inputs"][0]["shape"] == ["n", 32] and manifest["product"]["kind"] == "generator"
    assert math.isclose(sum(manifest["labels"]["frequencies"]), 1.0, rel_tol=1e-6)
    output = manifest["output"]
    assert output["kind"] == "image" and output["shape"] == [1, 16, 16] and output["network_range"] == [-1.0, 1.0]
    # digits' grey levels 0..16 are minmax-normalised: x * 8 + 8 brings them back
    assert output["shift"] == [8.0] and output["scale"] == [8.0]
    assert manifest["source"]["generator"] == "G_ema" == result.generator and manifest["source"]["step"] == 12
    assert 0 <= result.onnx_max_abs_diff <= 1e-4 and manifest["onnx"]["max_abs_diff"] == result.onnx_max_abs_diff
    assert set(manifest["onnx"]["inputs"]) == {"z", "y"}


@pytest.mark.parametrize("batch", [1, 5, 33])
def test_onnx_matches_pytorch_on_random_inputs_at_any_batch_size(digits_export, batch):
    out, _ = digits_export
    model = load(out)
    rng = np.random.default_rng(batch)
    z = rng.standard_normal((batch, model.z_dim), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    theirs = onnx_session(out / ONNX_MODEL).run(None, {"z": z, "y": y})[0]
    with torch.no_grad():
        ours = model.G(torch.from_numpy(z), torch.from_numpy(y)).numpy()
    assert theirs.shape == (batch, 1, 16, 16)
    assert np.abs(theirs - ours).max() <= 1e-4


def test_onnx_of_an_mlp_with_the_discrete_latent(ring_run, tmp_path):
    result = export(ring_run, tmp_path / "e", ["onnx"])  # safetensors comes with it
    assert result.onnx_max_abs_diff <= 1e-4 and (tmp_path / "e" / WEIGHTS).is_file()
    model = load(tmp_path / "e")
    torch_x, _ = model.generate(500, seed=4)
    onnx_x, _ = model.generate(500, seed=4, backend="onnx")
    assert np.abs(torch_x - onnx_x).max() <= 1e-4
    assert model.manifest["output"]["kind"] == "rows" and model.manifest["output"]["to_pixels"] is None


def test_loaded_export_draws_what_gankit_sample_draws(digits_export, digits_run):
    model = load(digits_export[0])
    x, y = model.generate(40, seed=7)
    want_x, want_y = gankit.sample(digits_run, 40, seed=7)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_allclose(x, want_x, rtol=0, atol=1e-5)
    pixels, _ = model.images(40, seed=7)
    want_pixels, _ = gankit.sample_images(digits_run, 40, seed=7)
    assert np.abs(pixels.astype(int) - want_pixels).max() <= 1


def test_load_reads_no_pickle_and_needs_no_run_folder(digits_export, digits_run, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copied"
    shutil.copytree(digits_export[0], copy)
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling")
    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(gankit.product_loader, "load_checkpoint", refuse)  # nothing of the run is read
    x, _ = load(copy).generate(3, seed=1, labels="7")
    assert x.shape == (3, 1, 16, 16)


def test_labels_by_name_index_or_one_per_sample(digits_export):
    model = load(digits_export[0])
    assert model.generate(4, labels="3")[1].tolist() == [3, 3, 3, 3]
    assert model.generate(3, labels=[1, "2", 9])[1].tolist() == [1, 2, 9]
    a, _ = model.generate(3, seed=2, labels=5)
    b, _ = model.generate(3, seed=2, labels="5")
    np.testing.assert_array_equal(a, b)
    for bad, message in (("cat", "unknown label 'cat'"), ([1, 2], "2 given for 3 samples"), (10, "unknown label '10'")):
        with pytest.raises(GankitError, match=message):
            model.generate(3, labels=bad)


def test_ema_choice(digits_run, ring_run, tmp_path):
    export(digits_run, tmp_path / "ema")
    raw_result = export(digits_run, tmp_path / "raw", ema=False)
    ema, raw = load(tmp_path / "ema"), load(tmp_path / "raw")
    assert raw_result.generator == "G" and ema.manifest["source"]["generator"] == "G_ema"
    assert any(not torch.equal(p, q) for p, q in zip(raw.G.state_dict().values(), ema.G.state_dict().values()))
    with pytest.raises(GankitError, match="kept no moving average"):
        export(ring_run, tmp_path / "no-ema", ema=True)


def test_truncation_bounds_z_and_follows_the_truncated_normal():
    z, _ = seeded_inputs(20000, 8, seed=0)
    zt, _ = seeded_inputs(20000, 8, seed=0, truncation=0.5)
    inside = z.abs() <= 0.5
    assert zt.abs().max() <= 0.5 and torch.equal(zt[inside], z[inside])  # only the outliers are redrawn
    t = 0.5  # E|Z| for Z ~ N(0, 1) restricted to [-t, t]: sqrt(2/pi) (1 - exp(-t^2/2)) / (2 Phi(t) - 1)
    expected = math.sqrt(2 / math.pi) * (1 - math.exp(-t * t / 2)) / math.erf(t / math.sqrt(2))
    assert abs(zt.abs().mean().item() - expected) < 0.005
    tiny = truncate(torch.randn(1000, 4, generator=torch.Generator().manual_seed(1)), 1e-3)
    assert tiny.abs().max() <= 1e-3


def test_export_refuses_an_onnx_model_that_disagrees_and_writes_nothing(digits_run, tmp_path):
    with pytest.raises(GankitError, match="differs from PyTorch"):
        export(digits_run, tmp_path / "e", ["safetensors", "onnx"], tolerance=-1.0)
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


def test_bad_exports_and_flags_are_one_line_errors(digits_export, tmp_path, capsys):
    with pytest.raises(GankitError, match="not a gankit export"):
        load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MANIFEST).write_text('{"format": "something-else"}')
    with pytest.raises(GankitError, match="format 'something-else'"):
        load(broken)
    manifest = json.loads((digits_export[0] / MANIFEST).read_text())
    manifest["architecture"]["model"]["g_hidden"] = 9  # weights no longer fit
    (broken / MANIFEST).write_text(json.dumps(manifest))
    (broken / WEIGHTS).write_bytes((digits_export[0] / WEIGHTS).read_bytes())
    with pytest.raises(GankitError, match="do not fit the manifest"):
        load(broken)
    (broken / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(GankitError, match="cannot read the weights"):
        load(broken)
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert main(["export", str(digits_export[0]), "--out", str(tmp_path / "o"), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert "--format tflite: expected one or more of safetensors, onnx" in err
    assert all(line.startswith("gankit: error: ") for line in err.strip().splitlines())


def test_cli_export_reports_the_onnx_check(ring_run, tmp_path, capsys):
    assert main(["export", str(ring_run), "--out", str(tmp_path / "e"), "--format", "safetensors,onnx"]) == 0
    out = capsys.readouterr().out
    assert "exported G of" in out and "ONNX check: onnxruntime vs PyTorch max abs difference" in out
    assert "on batches of 1, 7, 64" in out


def test_exporting_over_an_earlier_export_leaves_no_stale_onnx_model(digits_run, ring_run, tmp_path):
    """safetensors only, into a folder that held another run's ONNX model: that model goes (it would not match
    the new weights: the onnx backend failed with onnxruntime's missing-input error, serve with a plain 500)."""
    out = tmp_path / "x"
    gankit.export(digits_run, out, formats=["safetensors", "onnx"])
    gankit.export(ring_run, out)
    assert not (out / "generator.onnx").exists()
    assert "onnx" not in json.loads((out / "manifest.json").read_text())["files"]
    with pytest.raises(GankitError, match="no generator.onnx; export with --format onnx"):
        gankit.load(out).generate(2, seed=1, backend="onnx")
