"""gankit export / gankit.load / gankit serve of an anomaly scorer: the run's scores from safetensors and from a
checked ONNX twin, the manifest, and POST /v1/score with JSON, PNG and .npy bodies and the errors a client meets."""

from __future__ import annotations

import asyncio
import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import gankit
import gankit.product_loader
from gankit.anomaly_scores import scores_of, threshold
from gankit.cli import main
from gankit.config import Config, DataConfig, GameConfig, ModelConfig, TrainConfig
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.export import MANIFEST, export, load
from gankit.product_loader import load_scorer
from gankit.products import ScorerProduct
from gankit.runs import RunDir
from gankit.scorer_export import CHECK_BATCHES, ONNX_MODEL, PIXELS, WEIGHTS, ExportedScorer

pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from gankit.serve import ServeSettings, _app  # noqa: E402  (needs fastapi)

from conftest import npy, png
from test_export import RING  # noqa: E402  (a tiny generator, for /v1/score's refusal)
from test_serve import start_server, stop  # noqa: E402  (the same loopback servers)

NPY = "application/x-npy"
TRAIN = TrainConfig(steps=8, log_every=4, checkpoint_every=8, plot_every=1000)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"images": EGBAD on 8x8 digits (normal class 0), "rows": GANomaly on breast_cancer (normal benign)}."""
    root = tmp_path_factory.mktemp("scorers")
    images = Config(data=DataConfig(name="digits", normal_class="0", normal_holdout=0.1, batch_size=32),
                    model=ModelConfig(family="dcgan", z_dim=8, g_hidden=16, d_hidden=16), train=TRAIN,
                    game=GameConfig(name="bigan"))
    rows = Config(data=DataConfig(name="breast-cancer", normal_class="benign", normal_holdout=0.1, batch_size=32),
                  model=ModelConfig(z_dim=8, g_hidden=32, d_hidden=32), train=TRAIN, game=GameConfig(name="ganomaly"))
    return {name: gankit.train(config, run_dir=root / name, progress=False).run_dir
            for name, config in (("images", images), ("rows", rows))}


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """{name: (export folder, ExportResult)}, each with its checked ONNX model (the rows' by the CLI)."""
    out = tmp_path_factory.mktemp("exports")
    assert main(["export", str(runs["rows"]), "--out", str(out / "rows"), "--format", "safetensors,onnx"]) == 0
    return {"images": (out / "images", export(runs["images"], out / "images", ["safetensors", "onnx"])),
            "rows": (out / "rows", None)}


def run_test_inputs(run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the run's labelled test inputs in the user's units -- pixels in [0, 1] or rows in the data's units --,
    the run's own scores of them, their anomaly labels)."""
    scorer, meta, shift, scale = load_scorer(run)
    config = RunDir(run).config()
    anomaly = load_data(config.data, config.seed).anomaly
    want = scores_of(scorer, anomaly.test_x)[0]
    x = anomaly.test_x  # [T, *shape] in the networks' units
    inputs = (x + 1) / 2 if x.dim() == 4 else x * scale + shift
    return inputs.numpy(), want, anomaly.test_y.numpy()


def test_the_manifest_describes_the_scorer(exports, runs):
    out, result = exports["images"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS, ONNX_MODEL])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == "gankit-generator/1" and manifest["gankit_version"] == gankit.__version__
    assert manifest["files"] == {"weights": WEIGHTS, "onnx": ONNX_MODEL}
    scorer, meta, shift, scale = load_scorer(runs["images"])
    product = ScorerProduct((1, 8, 8), meta["model"]["scorer"], 0.05)
    assert manifest["product"] == {"kind": "scorer", "inputs": product.inputs(), "outputs": product.outputs()}
    assert manifest["family"] == "bigan" and manifest["architecture"] == {"scorer": scorer.settings()}
    record = threshold(runs["images"])
    assert manifest["anomaly"] == {"normal": "0", "class_names": [str(d) for d in range(10)], "fpr": 0.05,
                                   "threshold": record["threshold"], "held": record["held"],
                                   "held_fpr": record["held_fpr"], "flag": "score > threshold",
                                   "score": "higher = more anomalous"}
    put = manifest["input"]
    assert put["kind"] == "image" and put["shape"] == [1, 8, 8] and put["units"] == "pixels"
    assert put["to_network"] == PIXELS and put["normalize"] == "minmax"
    assert put["shift"] == shift.flatten().tolist() == [8.0] and put["scale"] == scale.flatten().tolist() == [8.0]
    assert list(manifest["onnx"]["inputs"]) == ["x"] and list(manifest["onnx"]["outputs"]) == ["score",
                                                                                            "reconstruction"]
    assert manifest["onnx"]["max_abs_diff"] == result.onnx_max_abs_diff <= 1e-4
    assert manifest["source"]["run"] == str(runs["images"].resolve()) and manifest["source"]["step"] == 8
    weights = load_file(out / WEIGHTS)  # the players the score uses: G, E and D, nothing else
    assert weights.keys() == scorer.state_dict().keys() and {k.split(".")[0] for k in weights} == {"G", "E", "D"}
    assert all(torch.equal(weights[k], v) for k, v in scorer.state_dict().items())
    rows = load(exports["rows"][0]).manifest
    assert rows["family"] == "ganomaly" and rows["anomaly"]["normal"] == "benign"
    assert rows["anomaly"]["class_names"] == ["malignant", "benign"] and rows["input"]["units"] == "data"
    assert rows["input"]["columns"][0] == "mean radius" and len(rows["input"]["shift"]) == 30


@pytest.mark.parametrize("name", ["images", "rows"])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_export_gives_the_runs_scores_and_flags(exports, runs, name, backend):
    inputs, want, labels = run_test_inputs(runs[name])
    model = load(exports[name][0])
    assert isinstance(model, ExportedScorer) and model.kind == "scorer"
    scores, flags = model.score(inputs, backend=backend, batch_size=50)
    assert scores.dtype == np.float32 and scores.shape == want.shape == labels.shape
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-5)
    t = threshold(runs[name])["threshold"]
    assert np.array_equal(flags, want > t) and 0 < flags.sum() < len(flags)
    middle = np.sort(want)[len(want) // 2:][:2]
    median = float(middle.mean())  # between two scores (not on one), overriding the run's threshold
    assert np.array_equal(model.score(inputs, backend=backend, threshold=median)[1], want > median)
    if backend == "torch":  # a run folder loads as the same scorer, with the same threshold
        from_run = load(runs[name])
        assert isinstance(from_run, ExportedScorer) and from_run.manifest["anomaly"] == model.manifest["anomaly"]
        assert np.array_equal(from_run.score(inputs)[0], scores)


def test_images_as_uint8_or_without_the_channel_axis(exports):
    model = load(exports["images"][0])
    pixels = np.random.default_rng(0).integers(0, 256, (5, 1, 8, 8)).astype(np.uint8)
    want = model.score(pixels.astype(np.float32) / 255)[0]
    assert np.allclose(model.score(pixels)[0], want, rtol=1e-6)
    assert np.allclose(model.score(pixels[:, 0].astype(np.float64) / 255)[0], want, rtol=1e-6)


def test_onnx_has_a_dynamic_batch_and_a_twin_that_disagrees_is_not_written(exports, runs, tmp_path, monkeypatch):
    out, result = exports["images"]
    assert result.checked == list(CHECK_BATCHES) and result.onnx_max_abs_diff <= 1e-4
    model = load(out)
    x = model.check_input(13, seed=5)
    for ours, theirs in zip(model.run(x), model.run(x, backend="onnx")):
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1e-4 * max(1, np.abs(ours).max())
    real = ExportedScorer.run

    def off(self, x, backend="torch"):  # PyTorch's side of the check, its scores 1% off
        score, rec = real(self, x, backend)
        return score * 1.01, rec
    monkeypatch.setattr(ExportedScorer, "run", off)
    with pytest.raises(GankitError) as e:
        export(runs["images"], tmp_path / "out", ["safetensors", "onnx"])
    assert "no ONNX model was written" in str(e.value) and "score differs from PyTorch" in str(e.value)
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_load_reads_no_pickle_and_needs_no_run_folder(exports, monkeypatch):
    x = np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32)
    want = load(exports["images"][0]).score(x)[0]

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling or reading the run")
    for module, attr in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, attr, refuse)
    monkeypatch.setattr(gankit.product_loader, "load_checkpoint", refuse)
    assert np.array_equal(load(exports["images"][0]).score(x)[0], want)


@pytest.mark.parametrize("name,bad,message", [
    ("images", np.zeros((2, 3, 8, 8)), r"inputs of shape \[2, 3, 8, 8\]: this scorer takes images \[N, 1, 8, 8\] "
                                       r"or \[N, 8, 8\] of pixels in \[0, 1\]"),
    ("images", np.full((1, 8, 8), 1.5), r"pixel values in \[1.5, 1.5\]: expected pixels in \[0, 1\]"),
    ("images", np.full((1, 8, 8), np.nan), r"inputs\[0, 0, 0, 0\] = nan: expected finite numbers"),
    ("rows", np.zeros((2, 29)), r"this scorer takes rows \[N, 30\] in the data's units"),
    ("rows", np.zeros((0, 30)), r"inputs of shape \[0, 30\]"),
    ("rows", np.array([["a"] * 30]), r"inputs of dtype <U1: expected numbers"),
])
def test_score_refuses_the_wrong_inputs(exports, name, bad, message):
    with pytest.raises(GankitError, match=message):
        load(exports[name][0]).score(bad)


# ------------------------------------------------------------------------------------------------ POST /v1/score


@pytest.fixture(scope="module")
def servers(exports):
    """Real loopback servers, as ``gankit serve`` starts them: the image scorer on PyTorch, the rows' on ONNX."""
    started = {"images": start_server(exports["images"][0]),
               "rows": start_server(exports["rows"][0], "--backend", "onnx", "--max-body", "4000")}
    clients = {name: httpx.Client(base_url=url, timeout=60) for name, (_, url) in started.items()}
    yield clients
    for name, (process, _) in started.items():
        clients[name].close()
        log = stop(process)
        assert "Traceback" not in log, log  # no request, good or bad, made a server fail


def post(client, body: bytes, content_type: str | None) -> httpx.Response:
    return client.post("/v1/score", content=body, headers={"content-type": content_type} if content_type else {})


def test_json_rows_and_an_npy_of_rows_get_the_exports_scores(servers, exports, runs):
    inputs, _, _ = run_test_inputs(runs["rows"])
    model = load(exports["rows"][0])
    scores, flags = model.score(inputs[:6])
    r = servers["rows"].post("/v1/score", json={"inputs": inputs[:6].tolist()})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    answer = r.json()
    assert set(answer) == {"scores", "flags", "threshold"} and answer["threshold"] == model.threshold
    assert np.abs(np.array(answer["scores"]) - scores).max() <= 1e-5 * max(1, np.abs(scores).max())
    assert answer["flags"] == flags.tolist()
    r = post(servers["rows"], npy(inputs[:20].astype(np.float64)), NPY)  # 4,928 bytes: over --max-body, still fine
    assert r.status_code == 200 and len(r.json()["scores"]) == 20
    assert servers["rows"].get("/v1/model").json() == model.manifest


def test_a_png_an_npy_and_json_images_get_the_exports_scores(servers, exports):
    model = load(exports["images"][0])
    pixels = np.random.default_rng(2).integers(0, 256, (4, 1, 8, 8)).astype(np.uint8)
    want = model.score(pixels)[0]
    r = post(servers["images"], png(pixels[0, 0]), "image/png")
    assert r.status_code == 200 and np.isclose(r.json()["scores"][0], want[0], rtol=1e-5)
    rgb = np.stack([pixels[1, 0]] * 3, axis=-1)  # grey as RGB: converted to the model's one channel
    assert np.isclose(post(servers["images"], png(rgb), "image/png").json()["scores"][0], want[1], rtol=1e-5)
    for body in (npy(pixels), npy(pixels[:, 0]), npy(pixels.astype(np.float32) / 255)):
        r = post(servers["images"], body, "application/octet-stream")
        assert r.status_code == 200 and np.allclose(r.json()["scores"], want, rtol=1e-5)
    r = servers["images"].post("/v1/score", json={"inputs": (pixels[:, 0] / 255).tolist()})  # [N, H, W]
    assert r.status_code == 200 and np.allclose(r.json()["scores"], want, rtol=1e-5)
    assert r.json()["flags"] == (np.array(r.json()["scores"]) > model.threshold).tolist()
    assert servers["images"].get("/health").json()["requests"] == 6


LONG = b'{"inputs": [[' + b"0.125, " * 800 + b'0]]}'
BAD = [
    ("images", png(np.zeros((9, 8), np.uint8)), "image/png", 422, "a PNG of 8x9 pixels: this scorer takes 8x8 images"),
    ("images", b"not an image", "image/png", 422, "the body is not a PNG"),
    ("images", npy(np.zeros((2, 3, 8, 8), np.float32)), NPY, 422, "inputs of shape [2, 3, 8, 8]: this scorer takes"),
    ("images", npy(np.full((1, 8, 8), 2.0, np.float32)), NPY, 422, "expected pixels in [0, 1]"),
    ("images", npy(np.array([{"a": 1}], dtype=object)), NPY, 422, "an array of dtype object: expected numbers"),
    ("images", npy(np.zeros((4, 1, 8, 8), np.float32))[:-10], NPY, 422, "the .npy is truncated"),
    ("images", b"not an array", NPY, 422, "the body is not an .npy array"),
    ("images", b'{"inputs": [[1, 2], [3]]}', "application/json", 422, "inputs: nested lists of different lengths"),
    ("images", b'{"inputs": [["a"]]}', "application/json", 422, "inputs: expected numbers only (found strings)"),
    ("images", b'{"inputs": [], "n": 1}', "application/json", 422, "n: unknown key"),
    ("images", b'{"inputs": [0.5', "application/json", 400, "the body is not JSON"),
    ("images", b"x,y\n1,2\n", "text/csv", 415, "Content-Type text/csv: send application/json"),
    ("rows", png(np.zeros((8, 8), np.uint8)), "image/png", 415, "this scorer takes rows [N, 30] in the data's units"),
    ("rows", b'{"inputs": [[1, 2, 3]]}', "application/json", 422, "inputs of shape [1, 3]: this scorer takes rows"),
    ("rows", LONG, "application/json", 413,
     f"a JSON body of {len(LONG)} bytes; the limit is 4000 (--max-body): send more inputs as an .npy"),
]


@pytest.mark.parametrize("name,body,media,status,message", BAD, ids=[m[-1][:30] for m in BAD])
def test_bad_bodies_get_a_one_line_json_problem(servers, name, body, media, status, message):
    r = post(servers[name], body, media)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert message in error and "\n" not in error, error


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    """One request to the ASGI app, in process."""
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gankit") as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(go())


def test_the_schema_shows_score_alone(exports):
    app = _app(exports["rows"][0], "latest", ServeSettings())
    schema = call(app, "GET", "/openapi.json").json()
    assert schema["info"]["title"] == "gankit scorer" and "/v1/generate" not in schema["paths"]
    assert set(schema["paths"]["/v1/score"]["post"]["requestBody"]["content"]) == {
        "application/json", "image/png", NPY, "application/octet-stream"}
    assert call(app, "GET", "/health").json()["status"] == "ok"


def test_the_wrong_endpoints_point_to_the_right_ones(servers, tmp_path):
    for path in ("/v1/generate", "/v1/apply"):
        r = servers["images"].post(path, json={"n": 1})
        assert r.status_code == 404 and "it makes no samples: POST" in r.json()["error"]
        assert "to /v1/score" in r.json()["error"]
    gankit.train(None, overrides=RING, run_dir=tmp_path / "ring", progress=False)
    r = call(_app(tmp_path / "ring", "latest", ServeSettings()), "POST", "/v1/score", json={"inputs": [[0, 0]]})
    assert r.status_code == 404 and "it scores no samples: POST JSON such as {\"n\": 4} to /v1/generate" \
        in r.json()["error"]
