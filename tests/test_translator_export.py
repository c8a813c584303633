"""gankit export / gankit.load / gankit serve of an image translator: the run's translations from safetensors,
an ONNX twin checked at two sizes, and POST /v1/apply with PNG and .npy bodies and the errors a client meets."""

from __future__ import annotations

import asyncio
import io
import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import gankit
import gankit.product_loader
from gankit.cli import main
from gankit.errors import GankitError
from gankit.export import MANIFEST, ONNX_MODEL, WEIGHTS, export, load
from gankit.products import TranslatorProduct
from gankit.translate import load_translator, translate
from gankit.onnx_export import EXPORTERS, onnx_session
from gankit.translator_export import ONNX_INPUT, ONNX_OUTPUT, ExportedTranslator

from test_translation_games import config_of, paired_folder

pytest.importorskip("onnxruntime")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from gankit.serve import ServeSettings, _app  # noqa: E402  (needs fastapi)

from conftest import npy, png
from test_export import RING  # noqa: E402  (a tiny generator, for /v1/apply's refusal)
from test_serve import start_server, stop  # noqa: E402  (the same loopback servers)

NPY = "application/x-npy"


def train_run(root, game: str, factor: int):
    """A 10-step run on 32 pairs of 16x16 grey images (SR: 8x8 -> 16x16)."""
    data = paired_folder(root / "pairs", n=32, factor=factor)
    return gankit.train(None, run_dir=root / "run", progress=False,
                        overrides=config_of(game, data, "train.steps=10")).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"sr": an SRGAN run (SRResNet, factor 2, PixelShuffle), "unet": a pix2pix run (U-Net, multiple 4)}."""
    return {"sr": train_run(tmp_path_factory.mktemp("sr"), "srgan", 2),
            "unet": train_run(tmp_path_factory.mktemp("unet"), "pix2pix", 1)}


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """{name: (export folder, ExportResult)}, each with its checked ONNX model."""
    out = tmp_path_factory.mktemp("exports")
    return {name: (out / name, export(run, out / name, ["safetensors", "onnx"])) for name, run in runs.items()}


def pixels(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_the_manifest_describes_the_translator(exports, runs):
    out, result = exports["sr"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS, ONNX_MODEL])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == "gankit-generator/1" and manifest["gankit_version"] == gankit.__version__
    assert manifest["files"] == {"weights": WEIGHTS, "onnx": ONNX_MODEL}
    product = TranslatorProduct(1, 1, factor=2, multiple=1)
    assert manifest["product"] == {"kind": "translator", "inputs": product.inputs(), "outputs": product.outputs()}
    assert manifest["family"] == "srresnet"
    G, meta = load_translator(runs["sr"])
    assert manifest["architecture"]["kwargs"] == meta["model"]["kwargs"] == G.config()
    assert manifest["translation"] == {"task": "sr", "paired": True, "domains": ["A", "B"], "source_shape": [1, 8, 8]}
    assert manifest["input"]["channels"] == 1 and manifest["input"]["multiple"] == 1
    assert manifest["input"]["to_network"] == "x = 2 * pixels - 1 (pixels in [0, 1])"
    assert manifest["output"] == {"kind": "image", "channels": 1, "factor": 2, "shape": [1, "2h", "2w"],
                                  "to_pixels": "pixels = clip((y + 1) / 2, 0, 1)"}
    onnx = manifest["onnx"]
    assert list(onnx["inputs"]) == [ONNX_INPUT] and list(onnx["outputs"]) == [ONNX_OUTPUT]
    assert onnx["inputs"][ONNX_INPUT][:4] == ["batch", 1, "height", "width"]
    assert onnx["outputs"][ONNX_OUTPUT][:4] == ["batch", 1, "2 height", "2 width"]
    assert onnx["exporter"] in EXPORTERS and list(onnx["checks"]) == result.checked
    assert onnx["max_abs_diff"] == result.onnx_max_abs_diff == max(onnx["checks"].values())
    assert manifest["source"]["run"] == str(runs["sr"].resolve()) and manifest["source"]["step"] == 10
    weights = load_file(out / WEIGHTS)  # plain tensors: G's state, nothing else
    assert weights.keys() == G.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in G.state_dict().items())


@pytest.mark.parametrize("name", ["sr", "unet"])
def test_safetensors_reload_translates_exactly_as_the_run(exports, runs, name):
    """Batched, padded to the multiple (13x21 does not divide by 4) and tiled (a side over 256) alike."""
    model = load(exports[name][0])
    assert isinstance(model, ExportedTranslator) and model.kind == "translator"
    G, _ = load_translator(runs[name])
    from_run = load(runs[name])  # a run folder loads as the same translator
    assert isinstance(from_run, ExportedTranslator) and from_run.manifest["product"] == model.manifest["product"]
    for i, shape in enumerate([(5, 1, 16, 16), (2, 1, 13, 21), (1, 1, 300, 12)]):
        x = pixels(shape, seed=i)
        want = translate(G, torch.from_numpy(x)).numpy()
        ours = model.apply(x)
        assert ours.dtype == np.float32 and ours.shape == (shape[0], 1, shape[2] * G.factor, shape[3] * G.factor)
        assert np.array_equal(ours, want)
        assert np.array_equal(from_run.apply(x), want)
    uint8 = (pixels((2, 1, 8, 8)) * 255).astype(np.uint8)
    assert np.array_equal(model.apply(uint8), translate(G, torch.from_numpy(uint8).float().div_(255.0)).numpy())


@pytest.mark.parametrize("name", ["sr", "unet"])
def test_onnx_agrees_with_pytorch_at_the_training_size_and_a_larger_non_square_one(exports, runs, name):
    out, result = exports[name]
    model = load(out)
    G, meta = load_translator(runs[name])
    (n1, h1, w1), (n2, h2, w2) = model.check_sizes()
    assert (h1, w1) == tuple(meta["data"]["translation"]["source_shape"][1:])  # the training input size
    assert h2 > h1 and w2 > w1 and h2 != w2 and n1 != n2
    assert all(s % G.multiple == 0 for s in (h1, w1, h2, w2))
    assert result.checked == [f"{n1}x1x{h1}x{w1}", f"{n2}x1x{h2}x{w2}"] and result.onnx_max_abs_diff <= 1e-4
    session = onnx_session(out / ONNX_MODEL)
    for i, (n, h, w) in enumerate([(n1, h1, w1), (n2, h2, w2), (4, 3 * G.multiple, 7 * G.multiple)]):
        x = pixels((n, 1, h, w), seed=i) * 2 - 1
        with torch.no_grad():
            want = G(torch.from_numpy(x)).numpy()
        got = session.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
        assert got.shape == want.shape == (n, 1, h * G.factor, w * G.factor)
        assert np.abs(got - want).max() <= 1e-4
    x = pixels((2, 1, 13, 21))  # padded and cropped around the ONNX model as around G
    assert np.abs(model.apply(x, backend="onnx") - model.apply(x)).max() <= 1e-4


def test_an_onnx_model_that_disagrees_is_not_written_and_the_size_is_named(runs, tmp_path, monkeypatch):
    real = ExportedTranslator.run

    def off_when_large(self, x, backend="torch"):  # PyTorch's side of the check, wrong at the larger size only
        y = real(self, x, backend)
        return y + 1e-3 if x.shape[-1] > 16 else y
    monkeypatch.setattr(ExportedTranslator, "run", off_when_large)
    with pytest.raises(GankitError) as e:
        export(runs["unet"], tmp_path / "out", ["safetensors", "onnx"])
    message = str(e.value)
    assert "no ONNX model was written" in message and "\n" not in message
    for exporter in EXPORTERS:  # each exporter was tried and failed at the same size
        assert f"{exporter} exporter: at input [3, 1, 32, 24] onnxruntime differs from PyTorch by up to 0.001" \
               in message
    assert not (tmp_path / "out").exists()


def test_a_cyclegan_run_exports_both_ways_with_reflection_padding_and_instance_norm(tmp_path):
    data = paired_folder(tmp_path / "pairs", n=32)
    run = gankit.train(None, run_dir=tmp_path / "run", progress=False, overrides=config_of(
        "cyclegan", data, "data.name=unpaired", f"data.path_a={data / 'A'}", f"data.path_b={data / 'B'}",
        "game.history=8", "train.steps=4")).run_dir
    result = export(run, tmp_path / "out", ["safetensors", "onnx"])
    model = load(tmp_path / "out")
    assert model.manifest["family"] == "resnet" and model.manifest["architecture"]["kwargs"]["norm"] == "instance"
    assert result.onnx_max_abs_diff <= 1e-4 and len(result.checked) == 2
    x = pixels((2, 1, 13, 18))
    assert np.abs(model.apply(x, backend="onnx") - model.apply(x)).max() <= 1e-4
    F = ExportedTranslator.from_run(run, reverse=True)  # CycleGAN's F: B -> A
    assert F.manifest["translation"]["domains"] == ["B", "A"] and F.manifest["source"]["generator"].startswith("F")
    assert np.array_equal(F.apply(x), translate(load_translator(run, reverse=True)[0], torch.from_numpy(x)).numpy())
    assert not np.array_equal(F.apply(x), model.apply(x))
    data_bytes, worst, checked = F.onnx_model(1e-4)
    assert len(data_bytes) > 1000 and worst <= 1e-4 and checked == result.checked


def test_cli_export_with_onnx_and_the_onnx_backend(runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["export", str(runs["unet"]), "--out", str(out), "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert "exported G of" in printed and "ONNX check: onnxruntime vs PyTorch max abs difference" in printed
    assert "1x1x16x16, 3x1x32x24" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS, ONNX_MODEL])
    model = load(out)
    x = pixels((3, 1, 20, 28))
    assert np.abs(model.apply(x, backend="onnx") - model.apply(x)).max() <= 1e-4


def test_load_reads_no_pickle_and_needs_no_run_folder(exports, tmp_path, monkeypatch):
    copy = tmp_path / "copied"
    shutil.copytree(exports["sr"][0], copy)
    want = load(copy).apply(pixels((1, 1, 9, 9)))

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling or reading the run")
    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(gankit.product_loader, "load_checkpoint", refuse)
    assert np.array_equal(load(copy).apply(pixels((1, 1, 9, 9))), want)


def test_apply_refuses_the_wrong_pixels(exports):
    model = load(exports["sr"][0])
    for bad, message in [(pixels((1, 3, 8, 8)), r"pixels of shape \[1, 3, 8, 8\]: this translator takes images \[N, 1"),
                         (pixels((8, 8)), r"pixels of shape \[8, 8\]"),
                         (pixels((1, 1, 4, 4)) + 1, r"in \[0, 1\] \(or uint8 0..255\); got \[1.0\d, 1.9\d\]"),
                         (np.ones((1, 1, 4, 4), np.int64), "dtype int64")]:
        with pytest.raises(GankitError, match=message):
            model.apply(bad)


# ------------------------------------------------------------------------------------------------ POST /v1/apply


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    """One request to the ASGI app, in process."""
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gankit") as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(go())


def post(app, body: bytes, content_type: str | None) -> httpx.Response:
    return call(app, "POST", "/v1/apply", content=body, headers={"content-type": content_type} if content_type else {})


@pytest.fixture(scope="module")
def apps(exports):
    """The served apps, as ``gankit serve`` builds them (body limit included): SR on PyTorch, the U-Net on ONNX."""
    return {"sr": _app(exports["sr"][0], "latest", ServeSettings()),
            "unet": _app(exports["unet"][0], "latest", ServeSettings(backend="onnx"))}


def test_health_model_and_schema(apps, exports):
    app = apps["sr"]
    assert call(app, "GET", "/health").json()["status"] == "ok"
    assert call(app, "GET", "/v1/model").json() == json.loads((exports["sr"][0] / MANIFEST).read_text())
    paths = call(app, "GET", "/openapi.json").json()["paths"]
    assert "/v1/apply" in paths and "/v1/generate" not in paths
    assert set(paths["/v1/apply"]["post"]["requestBody"]["content"]) == {"image/png", NPY, "application/octet-stream"}


def test_a_png_gives_the_png_of_its_translation(apps, exports):
    model = load(exports["sr"][0])
    image = (pixels((11, 14)) * 255).astype(np.uint8)  # grey, non-square
    r = post(apps["sr"], png(image), "image/png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.format == "PNG" and out.mode == "L" and out.size == (28, 22)
        got = np.asarray(out).astype(np.float32) / 255
    want = model.apply(image[None, None].astype(np.float32) / 255)[0, 0]
    assert np.abs(got - want).max() <= 1 / 255
    rgb = np.stack([image, image // 2, 255 - image], axis=-1)  # converted to grey, as gankit apply does
    assert post(apps["sr"], png(rgb), "image/png").status_code == 200


@pytest.mark.parametrize("shape,dtype,media", [((2, 1, 9, 7), np.float32, NPY), ((1, 9, 7), np.float64, NPY),
                                               ((9, 7), np.float32, "application/octet-stream"),
                                               ((3, 1, 6, 6), np.uint8, NPY)])
def test_an_npy_gives_an_npy_of_the_exports_translations(apps, exports, shape, dtype, media):
    model = load(exports["sr"][0])
    x = (pixels(shape) * 255).astype(np.uint8) if dtype == np.uint8 else pixels(shape).astype(dtype)
    r = post(apps["sr"], npy(x), media)
    assert r.status_code == 200 and r.headers["content-type"] == media
    got = np.load(io.BytesIO(r.content), allow_pickle=False)
    full = x.reshape((1,) * (4 - x.ndim) + x.shape)
    assert got.dtype == np.float32 and got.shape == (full.shape[0], 1, 2 * full.shape[2], 2 * full.shape[3])
    assert np.array_equal(got, model.apply(full))


def test_the_onnx_backend_serves_a_u_net_padded_to_its_multiple(apps, exports):
    x = pixels((2, 1, 13, 18))  # neither side divides by 4
    r = post(apps["unet"], npy(x), NPY)
    assert r.status_code == 200
    assert call(apps["unet"], "GET", "/health").json()["backend"] == "onnx"
    got = np.load(io.BytesIO(r.content))
    assert got.shape == x.shape and np.abs(got - load(exports["unet"][0]).apply(x)).max() <= 1e-4


def truncated_npy() -> bytes:
    body = npy(pixels((1, 1, 8, 8)))
    return body[:-10]


def huge_header() -> bytes:
    """An .npy header claiming 10^10 pixels over a body of a few bytes: refused before anything is allocated."""
    body = io.BytesIO()
    np.lib.format.write_array_header_1_0(body, {"descr": "<f4", "fortran_order": False, "shape": (1, 1, 10 ** 5,
                                                                                                   10 ** 5)})
    return body.getvalue() + b"\0" * 16


BAD = [
    (b"not an image", "image/png", 422, "the body is not a PNG"),
    (png((pixels((32, 32)) * 255).astype(np.uint8))[:500], "image/png", 422, "the PNG cannot be decoded"),
    (png(np.zeros((8, 8), np.uint16)), "image/png", 422, "16-bit or float"),
    (png(np.zeros((4097, 4096), np.uint8)), "image/png", 413,
     "1 image of 4097x4096: 16781312 input pixels; the limit is 16777216 (4096x4096)"),
    (b"not an array", NPY, 422, "the body is not an .npy array"),
    (truncated_npy(), NPY, 422, "the .npy is truncated"),
    (huge_header(), NPY, 413, "the limit is 16777216"),
    (npy(pixels((1, 3, 8, 8))), NPY, 422, "an array of shape [1, 3, 8, 8]: images of 3 channels; this model takes 1"),
    (npy(pixels((2, 8, 8))), NPY, 422, "an array of shape [2, 8, 8]: images of 2 channels"),
    (npy(pixels((1, 1, 1, 8, 8))), NPY, 422, "expected images [N, 1, H, W] or [1, H, W] or [H, W]"),
    (npy(pixels((1, 1, 0, 8))), NPY, 422, "no pixels"),
    (npy(pixels((1, 1, 4, 4)) * 2), NPY, 422, "pixel values must be finite and in [0, 1]"),
    (npy(np.full((1, 1, 4, 4), np.nan, np.float32)), NPY, 422, "non-finite"),
    (npy(np.ones((1, 1, 4, 4), np.int64)), NPY, 422, "an array of dtype int64"),
    (npy(np.array([{"a": 1}], dtype=object)), NPY, 422, "an array of dtype object"),
    (b'{"n": 1}', "application/json", 415, "Content-Type application/json: send image/png"),
    (b"\x00", None, 415, "Content-Type (none)"),
]


@pytest.mark.parametrize("body,media,status,message", BAD, ids=[m[:30] for *_, m in BAD])
def test_bad_bodies_get_a_json_problem(apps, body, media, status, message):
    r = post(apps["sr"], body, media)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert message in error and "\n" not in error, error


def test_the_body_limit_and_the_wrong_endpoints(apps, exports, tmp_path):
    small = _app(exports["sr"][0], "latest", ServeSettings(max_image_body=1000))
    r = post(small, npy(pixels((1, 1, 32, 32))), NPY)
    assert r.status_code == 413 and "the limit is 1000" in r.json()["error"]
    assert post(small, npy(pixels((1, 1, 8, 8))), NPY).status_code == 200  # 400 bytes: under it
    r = call(apps["sr"], "POST", "/v1/generate", json={"n": 1})
    assert r.status_code == 404 and "POST a PNG or an .npy of images to /v1/apply" in r.json()["error"]
    gankit.train(None, overrides=RING, run_dir=tmp_path / "ring", progress=False)
    generator = _app(tmp_path / "ring", "latest", ServeSettings())
    r = post(generator, npy(pixels((1, 1, 8, 8))), NPY)
    assert r.status_code == 404 and "translates no images: POST JSON such as {\"n\": 4} to /v1/generate" \
        in r.json()["error"]


def test_gankit_serve_answers_png_and_npy_over_real_http(exports):
    model = load(exports["sr"][0])
    process, url = start_server(exports["sr"][0])
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            image = (pixels((8, 8)) * 255).astype(np.uint8)
            r = client.post("/v1/apply", content=png(image), headers={"content-type": "image/png"})
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            with Image.open(io.BytesIO(r.content)) as out:
                got = np.asarray(out).astype(np.float32) / 255
            assert np.abs(got - model.apply(image[None, None].astype(np.float32) / 255)[0, 0]).max() <= 1 / 255
            x = pixels((2, 1, 80, 90))  # 57.6 kB of float32: over the JSON requests' 64 KiB, under max_image_body
            r = client.post("/v1/apply", content=npy(x), headers={"content-type": NPY})
            assert r.status_code == 200 and np.array_equal(np.load(io.BytesIO(r.content)), model.apply(x))
            assert client.get("/health").json()["requests"] == 2
    finally:
        log = stop(process)
    assert "Traceback" not in log, log
