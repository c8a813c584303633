"""gankit export / gankit.load / gankit serve of a semi-supervised classifier: the run's class probabilities from
safetensors and from a checked ONNX twin without randomness, the manifest, and POST /v1/classify with JSON, PNG
and .npy bodies and the errors a client meets."""

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
from gankit.classifier_export import ONNX_MODEL, WEIGHTS, ExportedClassifier
from gankit.cli import main
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.export import MANIFEST, export, load
from gankit.input_export import CHECK_BATCHES, DATA_UNITS, PIXELS, random_ops
from gankit.product_loader import load_classifier
from gankit.products import ClassifierProduct
from gankit.runs import RunDir

pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from gankit.serve import ServeSettings, _app  # noqa: E402  (needs fastapi)

from conftest import npy, png  # noqa: E402
from test_export import RING  # noqa: E402  (a tiny generator, for /v1/classify's refusal)
from test_serve import start_server, stop  # noqa: E402  (the same loopback servers)

NPY = "application/x-npy"
TINY = ["game.name=ssgan", "data.labels_per_class=10", "train.steps=40", "data.batch_size=50",
        "game.d_widths=[64,32]", "model.z_dim=16", "model.g_hidden=64", "train.checkpoint_every=40",
        "train.log_every=20"]
CENTRES = np.array([[0, 0, 10, 100], [3, 0, 12, 90], [0, 3, 8, 110]], float)  # three blobs, columns of many scales


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"images": a conv D (model.family dcgan) on 8x8 digits, kept as D's moving average; "rows": an MLP D on a
    CSV of 4 columns and 3 classes, the raw D (game.d_ema = 0)}."""
    root = tmp_path_factory.mktemp("classifiers")
    rng = np.random.default_rng(0)
    k = np.arange(300) % 3
    rows = CENTRES[k] + rng.normal(size=(300, 4)) * [0.7, 0.7, 1, 5]
    (root / "blobs.csv").write_text("a,b,c,d,colour\n" + "".join(
        ",".join(f"{v:.4f}" for v in row) + f",{c}\n" for row, c in zip(rows, k)))
    overrides = {"images": ["data.name=digits", "model.family=dcgan", "model.d_hidden=8", "model.g_hidden=8"],
                 "rows": ["data.name=file", f"data.path={root / 'blobs.csv'}", "data.label_column=colour",
                          "game.d_ema=0"]}
    return {name: gankit.train(gankit.load_config(None, TINY + extra), run_dir=root / name, progress=False).run_dir
            for name, extra in overrides.items()}


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """{name: (export folder, ExportResult or None)}, each with its checked ONNX model (the rows' by the CLI)."""
    out = tmp_path_factory.mktemp("exports")
    assert main(["export", str(runs["rows"]), "--out", str(out / "rows"), "--format", "safetensors,onnx"]) == 0
    return {"images": (out / "images", export(runs["images"], out / "images", ["safetensors", "onnx"])),
            "rows": (out / "rows", None)}


def held_out(run) -> tuple[np.ndarray, np.ndarray]:
    """(the run's test inputs in the user's units -- pixels in [0, 1] or rows in the data's units --, the run's
    own probabilities of them, from ``product_loader.load_classifier``)."""
    classifier, meta, shift, scale = load_classifier(run)
    config = RunDir(run).config()
    x = load_data(config.data, config.seed).semisup.test_x  # [T, *shape] in the networks' units
    with torch.no_grad():
        want = classifier(x).numpy()
    inputs = (x + 1) / 2 if x.dim() == 4 else x * scale + shift
    return inputs.numpy(), want



def test_the_manifest_describes_the_classifier(exports, runs):
    out, result = exports["images"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS, ONNX_MODEL])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == "gankit-generator/1" and manifest["gankit_version"] == gankit.__version__
    assert manifest["files"] == {"weights": WEIGHTS, "onnx": ONNX_MODEL}
    classifier, meta, shift, scale = load_classifier(runs["images"])
    names = [str(d) for d in range(10)]
    product = ClassifierProduct((1, 8, 8), meta["model"]["classifier"], tuple(names))
    assert manifest["product"] == {"kind": "classifier", "inputs": product.inputs(), "outputs": product.outputs()}
    assert manifest["family"] == "ssgan" and manifest["architecture"] == {"classifier": meta["model"]["classifier"]}
    assert manifest["architecture"]["classifier"]["family"] == "dcgan"
    assert manifest["classes"]["names"] == names and manifest["classes"]["weights"] == "D_ema"
    put = manifest["input"]
    assert put["kind"] == "image" and put["shape"] == [1, 8, 8] and put["units"] == "pixels"
    assert put["to_network"] == PIXELS and put["normalize"] == "minmax"
    assert put["shift"] == shift.flatten().tolist() == [8.0] and put["scale"] == scale.flatten().tolist() == [8.0]
    assert manifest["onnx"]["outputs"] == {"probabilities": ["batch", 10, "float32, softmax over classes.names"]}
    assert manifest["onnx"]["max_abs_diff"] == result.onnx_max_abs_diff <= 1e-4
    assert result.generator == "classifier" and result.checked == list(CHECK_BATCHES)
    assert manifest["source"]["run"] == str(runs["images"].resolve()) and manifest["source"]["step"] == 40
    weights = load_file(out / WEIGHTS)  # D's moving average, under the classifier's own keys (D.*)
    assert weights.keys() == classifier.state_dict().keys() and {k.split(".")[0] for k in weights} == {"D"}
    assert all(torch.equal(weights[k], v) for k, v in classifier.state_dict().items())
    rows = load(exports["rows"][0]).manifest
    _, meta, shift, scale = load_classifier(runs["rows"])
    assert rows["classes"] == {**rows["classes"], "names": ["0", "1", "2"], "weights": "D"}
    assert rows["input"] == {**rows["input"], "kind": "rows", "units": "data", "to_network": DATA_UNITS,
                             "columns": ["a", "b", "c", "d"], "shift": shift.tolist(), "scale": scale.tolist()}
    assert 0.5 < rows["input"]["shift"][3] / 100 < 1.5 and rows["input"]["scale"][3] > 3  # the data's own units
    assert rows["onnx"]["max_abs_diff"] <= 1e-4 and rows["source"]["classifier"] == "D"


@pytest.mark.parametrize("name", ["images", "rows"])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_export_gives_the_runs_probabilities(exports, runs, name, backend):
    inputs, want = held_out(runs[name])
    model = load(exports[name][0])
    assert isinstance(model, ExportedClassifier) and model.kind == "classifier"
    probabilities, classes = model.classify(inputs, backend=backend, batch_size=16)
    assert probabilities.dtype == np.float32 and probabilities.shape == want.shape
    np.testing.assert_allclose(probabilities, want, rtol=0, atol=1e-4)
    assert classes == [model.class_names[k] for k in probabilities.argmax(1)]
    assert classes == [model.class_names[k] for k in want.argmax(1)]
    assert len(set(classes)) > 1 or name == "images"  # the rows' D has learnt something in 40 steps
    if backend == "torch":  # a run folder loads as the same classifier
        from_run = load(runs[name])
        assert isinstance(from_run, ExportedClassifier) and from_run.manifest["classes"] == model.manifest["classes"]
        assert np.array_equal(from_run.classify(inputs, batch_size=16)[0], probabilities)


def test_images_as_uint8_or_without_the_channel_axis(exports):
    model = load(exports["images"][0])
    pixels = np.random.default_rng(0).integers(0, 256, (5, 1, 8, 8)).astype(np.uint8)
    want = model.classify(pixels.astype(np.float32) / 255)[0]
    assert np.allclose(model.classify(pixels)[0], want, atol=1e-6)
    assert np.allclose(model.classify(pixels[:, 0].astype(np.float64) / 255)[0], want, atol=1e-6)


def test_the_onnx_graph_draws_no_random_numbers(exports, runs, tmp_path):
    out, _ = exports["images"]
    assert random_ops(out / ONNX_MODEL) == []
    model = load(out)
    x = model.check_input(13, seed=5)
    first = model.run(x, backend="onnx")
    assert np.array_equal(first, model.run(x, backend="onnx")) and np.abs(first - model.run(x)).max() <= 1e-4
    from gankit.input_export import _export
    from gankit.onnx_export import quiet

    classifier = load_classifier(runs["images"])[0].train()  # its Gaussian noise on: the guard must see it
    with quiet(), pytest.raises(GankitError, match=r"the graph draws random numbers \(RandomNormalLike"):
        _export(classifier, torch.zeros(2, 1, 8, 8), tmp_path / "noisy.onnx", "dynamo", "x",  # dynamo keeps the
                ("probabilities",))  # module's training mode (the legacy exporter switches to eval on its own)


def test_a_twin_that_disagrees_is_not_written(runs, tmp_path, monkeypatch):
    real = ExportedClassifier.run

    def off(self, x, backend="torch"):  # PyTorch's side of the check, its probabilities 1% off
        return real(self, x, backend) * 1.01
    monkeypatch.setattr(ExportedClassifier, "run", off)
    with pytest.raises(GankitError) as e:
        export(runs["rows"], tmp_path / "out", ["safetensors", "onnx"])
    assert "no ONNX model was written" in str(e.value) and "probabilities differs from PyTorch" in str(e.value)
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_load_reads_no_pickle_and_needs_no_run_folder(exports, monkeypatch):
    x = np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32)
    want = load(exports["images"][0]).classify(x)[0]

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling or reading the run")
    for module, attr in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, attr, refuse)
    monkeypatch.setattr(gankit.product_loader, "load_checkpoint", refuse)
    assert np.array_equal(load(exports["images"][0]).classify(x)[0], want)


@pytest.mark.parametrize("name,bad,message", [
    ("images", np.zeros((2, 3, 8, 8)), r"inputs of shape \[2, 3, 8, 8\]: this classifier takes images "
                                       r"\[N, 1, 8, 8\] or \[N, 8, 8\] of pixels in \[0, 1\]"),
    ("images", np.full((1, 8, 8), 1.5), r"pixel values in \[1.5, 1.5\]: expected pixels in \[0, 1\]"),
    ("rows", np.zeros((2, 5)), r"this classifier takes rows \[N, 4\] in the data's units"),
    ("rows", np.array([[1.0, np.inf, 0, 0]]), r"inputs\[0, 1\] = inf: expected finite numbers"),
    ("rows", np.array([["a"] * 4]), r"inputs of dtype <U1: expected numbers"),
])
def test_classify_refuses_the_wrong_inputs(exports, name, bad, message):
    with pytest.raises(GankitError, match=message):
        load(exports[name][0]).classify(bad)


def test_ema_flags_name_the_classifier_the_run_has(runs, tmp_path):
    with pytest.raises(GankitError, match=r"--ema: .* kept no moving average of D \(game.d_ema = 0\)"):
        export(runs["rows"], tmp_path / "a", ema=True)
    with pytest.raises(GankitError, match=r"--no-ema: .* is classified by D's moving average; leave --ema out"):
        export(runs["images"], tmp_path / "b", ema=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------------------------------------- POST /v1/classify


@pytest.fixture(scope="module")
def server(exports):
    """A real loopback server of the image classifier, as ``gankit serve`` starts one, on onnxruntime."""
    process, url = start_server(exports["images"][0], "--backend", "onnx")
    client = httpx.Client(base_url=url, timeout=60)
    yield client
    client.close()
    log = stop(process)
    assert "Traceback" not in log, log  # no request, good or bad, made the server fail


def post(client, body: bytes, content_type: str, path: str = "/v1/classify") -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": content_type})


def check_answer(r: httpx.Response, probabilities: np.ndarray, names: list[str]) -> None:
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    answer = r.json()
    assert set(answer) == {"classes", "probabilities", "class_names"} and answer["class_names"] == names
    np.testing.assert_allclose(answer["probabilities"], probabilities, rtol=0, atol=1e-4)
    assert answer["classes"] == [names[k] for k in np.argmax(answer["probabilities"], axis=1)]


def test_a_png_an_npy_and_json_images_get_the_runs_classes(server, exports, runs):
    model = load(exports["images"][0])
    inputs, want = held_out(runs["images"])  # pixels in [0, 1], the run's own probabilities
    pixels = np.rint(inputs[:4] * 255).astype(np.uint8)  # [4, 1, 8, 8], exactly as a PNG holds them
    want_pixels = model.classify(pixels)[0]
    check_answer(post(server, png(pixels[0, 0]), "image/png"), want_pixels[:1], model.class_names)
    rgb = np.stack([pixels[1, 0]] * 3, axis=-1)  # grey as RGB: converted to the model's one channel
    check_answer(post(server, png(rgb), "image/png"), want_pixels[1:2], model.class_names)
    for body in (npy(pixels), npy(pixels[:, 0]), npy(pixels.astype(np.float32) / 255)):
        check_answer(post(server, body, "application/octet-stream"), want_pixels, model.class_names)
    r = server.post("/v1/classify", json={"inputs": inputs[:6, 0].tolist()})  # [N, H, W] floats in [0, 1]
    check_answer(r, want[:6], model.class_names)
    assert server.get("/v1/model").json() == model.manifest
    assert server.get("/health").json()["requests"] == 6


BAD = [
    (png(np.zeros((9, 8), np.uint8)), "image/png", 422, "a PNG of 8x9 pixels: this classifier takes 8x8 images"),
    (b"not an image", "image/png", 422, "the body is not a PNG"),
    (npy(np.zeros((2, 3, 8, 8), np.float32)), NPY, 422, "inputs of shape [2, 3, 8, 8]: this classifier takes"),
    (npy(np.full((1, 8, 8), 2.0, np.float32)), NPY, 422, "expected pixels in [0, 1]"),
    (npy(np.array([{"a": 1}], dtype=object)), NPY, 422, "an array of dtype object: expected numbers"),
    (npy(np.zeros((4, 1, 8, 8), np.float32))[:-10], NPY, 422, "the .npy is truncated"),
    (b'{"inputs": [[1, 2], [3]]}', "application/json", 422, "inputs: nested lists of different lengths"),
    (b'{"inputs": [["a"]]}', "application/json", 422, "inputs: expected numbers only (found strings)"),
    (b'{"x": []}', "application/json", 422, 'the body must be a JSON object {"inputs": [...]}'),
    (b'{"inputs": [0.5', "application/json", 400, "the body is not JSON"),
    (b"x,y\n1,2\n", "text/csv", 415, "Content-Type text/csv: send application/json"),
]


@pytest.mark.parametrize("body,media,status,message", BAD, ids=[m[-1][:30] for m in BAD])
def test_bad_bodies_get_a_one_line_json_problem(server, body, media, status, message):
    r = post(server, body, media)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert message in error and "\n" not in error, error


def test_the_other_endpoints_point_to_classify(server):
    for path, reason in (("/v1/generate", "it makes no samples"), ("/v1/apply", "it makes no samples"),
                         ("/v1/score", "it scores no samples")):
        r = server.post(path, json={"n": 1})
        assert r.status_code == 404, path
        error = r.json()["error"]
        assert error.startswith("this server's model gives class probabilities (10 classes) of images")
        assert f'{reason}: POST {{"inputs": [...]}}, a PNG or an .npy to /v1/classify' in error


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    """One request to the ASGI app, in process."""
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gankit") as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(go())


def test_rows_as_json_or_npy_from_a_run_folder(runs):
    app = _app(runs["rows"], "latest", ServeSettings(max_body=2000))  # the run folder itself, on PyTorch
    inputs, want = held_out(runs["rows"])
    names = ["0", "1", "2"]
    check_answer(call(app, "POST", "/v1/classify", json={"inputs": inputs[:5].tolist()}), want[:5], names)
    body = npy(inputs.astype(np.float64))  # over --max-body, which bounds JSON alone
    assert len(body) > 2000
    check_answer(call(app, "POST", "/v1/classify", content=body, headers={"content-type": NPY}), want, names)
    r = call(app, "POST", "/v1/classify", content=png(np.zeros((4, 4), np.uint8)),
             headers={"content-type": "image/png"})
    assert r.status_code == 415 and "this classifier takes rows [N, 4] in the data's units" in r.json()["error"]
    r = call(app, "POST", "/v1/classify", json={"inputs": [[1, 2, 3]]})
    assert r.status_code == 422 and "inputs of shape [1, 3]: this classifier takes rows [N, 4]" in r.json()["error"]
    r = call(app, "POST", "/v1/classify", json={"inputs": inputs[:40].tolist()})
    assert r.status_code == 413 and "(--max-body): send more inputs as an .npy" in r.json()["error"]
    schema = call(app, "GET", "/openapi.json").json()
    assert schema["info"]["title"] == "gankit classifier" and set(schema["paths"]) == {
        "/health", "/v1/model", "/v1/classify"}
    assert set(schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]) == {
        "application/json", "image/png", NPY, "application/octet-stream"}


def test_a_generator_server_points_away_from_classify(tmp_path):
    gankit.train(None, overrides=RING, run_dir=tmp_path / "ring", progress=False)
    app = _app(tmp_path / "ring", "latest", ServeSettings())
    for path, reason in (("/v1/classify", "it classifies no samples"), ("/v1/score", "it scores no samples")):
        r = call(app, "POST", path, json={"inputs": [[0, 0]]})
        assert r.status_code == 404 and f'{reason}: POST JSON such as {{"n": 4}} to /v1/generate' in r.json()["error"]
