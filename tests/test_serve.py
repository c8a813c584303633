"""gankit serve: the real server in a subprocess on a loopback port, called over real HTTP."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import gankit
from gankit.export import MANIFEST, export
from gankit.serve import wait_until_up

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from test_export import DIGITS, RING  # noqa: E402  (the same tiny runs)

MAX_N = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, *flags: str):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    process = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(path), "--port", str(port),
                                "--log-level", "warning", "--threads", "1", *flags],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, timeout=60)
    except TimeoutError:
        process.kill()
        raise AssertionError(process.communicate()[0])
    return process, url


def stop(process) -> str:
    process.terminate()
    try:
        return process.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


@pytest.fixture(scope="module")
def digits_server(tmp_path_factory):
    """A conditional image generator, exported, served on PyTorch."""
    root = tmp_path_factory.mktemp("serve-digits")
    gankit.train("digits-dcgan", overrides=DIGITS, run_dir=root / "run", progress=False)
    export(root / "run", root / "export", ["safetensors"])
    process, url = start_server(root / "export", "--max-n", str(MAX_N))
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, root / "export"
    log = stop(process)
    assert "Traceback" not in log, log  # no request, good or bad, made the server fail


@pytest.fixture(scope="module")
def ring_server(tmp_path_factory):
    """An unconditional rows generator served from its ONNX export on onnxruntime."""
    root = tmp_path_factory.mktemp("serve-ring")
    gankit.train(None, overrides=RING, run_dir=root / "run", progress=False)
    export(root / "run", root / "export", ["safetensors", "onnx"])
    process, url = start_server(root / "export", "--backend", "onnx")
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, root / "export"
    log = stop(process)
    assert "Traceback" not in log, log


def generate(client, **body):
    return client.post("/v1/generate", json=body)


def test_health_model_and_openapi(digits_server):
    client, path = digits_server
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["backend"] == "torch"
    assert client.get("/v1/model").json() == json.loads((path / MANIFEST).read_text())
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/health", "/v1/model", "/v1/generate"}
    body = schema["components"]["schemas"]["GenerateRequest"]["properties"]
    assert body["n"]["maximum"] == MAX_N and set(body["format"]["enum"]) == {"json", "npy", "png", "zip"}


def test_json_samples_are_the_exports_samples(digits_server):
    client, path = digits_server
    r = generate(client, n=5, seed=11, labels="4")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.headers["x-seed"] == "11"
    body = r.json()
    assert body["seed"] == 11 and body["n"] == 5 and body["shape"] == [1, 16, 16] and body["labels"] == ["4"] * 5
    want, _ = gankit.load(path).generate(5, seed=11, labels="4")
    np.testing.assert_allclose(np.array(body["samples"]), want, rtol=0, atol=1e-4)


def test_same_seed_same_samples_and_no_seed_says_which(digits_server):
    client, _ = digits_server
    a = generate(client, n=8, seed=3, format="npy")
    b = generate(client, n=8, seed=3, format="npy")
    c = generate(client, n=8, seed=4, format="npy")
    x = np.load(io.BytesIO(a.content), allow_pickle=False)
    assert x.shape == (8, 1, 16, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.load(io.BytesIO(b.content)), x, rtol=0, atol=1e-5)
    assert np.abs(np.load(io.BytesIO(c.content)) - x).max() > 0.1
    assert a.headers["x-labels"] == b.headers["x-labels"]
    fresh = generate(client, n=4, format="npy")
    again = generate(client, n=4, format="npy", seed=int(fresh.headers["x-seed"]))
    np.testing.assert_allclose(np.load(io.BytesIO(again.content)), np.load(io.BytesIO(fresh.content)), atol=1e-5)


def test_labels_truncation_png_grid_and_zip(digits_server):
    from PIL import Image

    client, _ = digits_server
    per_sample = generate(client, n=3, seed=1, labels=[0, "5", 9], format="npy")
    assert per_sample.headers["x-labels"] == "0,5,9"
    plain = np.array(generate(client, n=6, seed=2).json()["samples"])
    cut = generate(client, n=6, seed=2, truncation=0.5).json()["samples"]
    assert np.abs(np.array(cut) - plain).max() > 1e-3
    np.testing.assert_allclose(generate(client, n=6, seed=2, truncation=0.5).json()["samples"], cut, atol=1e-5)
    grid = generate(client, n=9, seed=0, format="png")
    assert grid.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(grid.content)).size == (3 * 17 + 1, 3 * 17 + 1)  # 3 x 3 images of 16 + padding
    archive = zipfile.ZipFile(io.BytesIO(generate(client, n=4, seed=0, labels="7", format="zip").content))
    names = sorted(archive.namelist())
    assert names == ["labels.csv"] + [f"sample_{i:05d}.png" for i in range(4)]
    assert Image.open(io.BytesIO(archive.read("sample_00002.png"))).size == (16, 16)
    assert archive.read("labels.csv").decode().splitlines()[1] == "sample_00000.png,7"


BAD_REQUESTS = [
    ({"n": 0}, 422, "n: Input should be greater than or equal to 1"),
    ({"n": MAX_N + 1}, 422, f"n: Input should be less than or equal to {MAX_N}"),
    ({"n": "2"}, 422, "n: Input should be a valid integer"),
    ({"n": 2.5}, 422, "n: Input should be a valid integer"),
    ({"seed": -1}, 422, "seed: Input should be greater than or equal to 0"),
    ({"seed": 2 ** 64}, 422, "seed:"),
    ({"labels": "cat"}, 422, "unknown label 'cat'; expected one of: 0, 1, 2"),
    ({"labels": [99]}, 422, "unknown label '99'"),
    ({"n": 3, "labels": [1, 2]}, 422, "labels: 2 given for 3 samples"),
    ({"labels": True}, 422, "labels"),
    ({"truncation": 0}, 422, "truncation: Input should be greater than 0"),
    ({"format": "gif"}, 422, "format: Input should be 'json', 'npy', 'png' or 'zip'"),
    ({"n": 1, "temperature": 2}, 422, "temperature: Extra inputs are not permitted"),
    ({"where": {"label": "3"}}, 422, "where: conditions are for table generators; this one makes images"),
    ([1, 2], 422, "body: Input should be a valid dictionary"),
]


@pytest.mark.parametrize("body,status,message", BAD_REQUESTS, ids=[json.dumps(b) for b, _, _ in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_that_says_what_is_wrong(digits_server, body, status, message):
    client, _ = digits_server
    r = client.post("/v1/generate", json=body)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    assert message in r.json()["error"], r.json()


def test_malformed_and_oversized_bodies(digits_server):
    client, _ = digits_server
    r = client.post("/v1/generate", content=b'{"n": 2', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("the body is not JSON: ") and "character" in \
        r.json()["error"], r.json()
    r = client.post("/v1/generate", content=b"{n: 2}", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "property name" in r.json()["error"], r.json()
    r = client.post("/v1/generate", content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    big = json.dumps({"n": 1, "labels": ["0"] * 40000}).encode()  # ~200 kB, over the 64 KiB limit
    r = client.post("/v1/generate", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit is 65536" in r.json()["error"]

    def chunks():  # no Content-Length: the limit counts what arrives
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]
    r = client.post("/v1/generate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 65536 bytes" in r.json()["error"]
    assert client.get("/health").status_code == 200  # still serving


def test_concurrent_requests_are_batched_without_mixing_them(digits_server):
    client, path = digits_server
    model = gankit.load(path)
    before = client.get("/health").json()
    seeds = list(range(100, 132))

    def call(seed):
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            return np.load(io.BytesIO(c.post("/v1/generate", json={"n": 3, "seed": seed, "format": "npy"}).content))
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, seeds))
    for seed, got in zip(seeds, results):
        np.testing.assert_allclose(got, model.generate(3, seed=seed)[0], rtol=0, atol=1e-4)
    after = client.get("/health").json()
    requests, batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    assert requests == len(seeds) and batches < requests  # several requests shared a model call


def test_onnx_backend_serves_rows_and_refuses_pictures_of_them(ring_server):
    client, path = ring_server
    assert client.get("/health").json()["backend"] == "onnx"
    body = generate(client, n=50, seed=5).json()
    assert body["shape"] == [2] and body["labels"] is None
    want, _ = gankit.load(path).generate(50, seed=5)  # on PyTorch
    np.testing.assert_allclose(np.array(body["samples"]), want, rtol=0, atol=1e-4)
    for fmt in ("png", "zip"):
        r = generate(client, n=2, format=fmt)
        assert r.status_code == 422 and f"format: {fmt} needs an image model" in r.json()["error"]
    r = generate(client, n=2, labels=1)
    assert r.status_code == 422 and "unconditional" in r.json()["error"]


def test_serve_start_errors_are_one_line(digits_server, tmp_path):
    _, path = digits_server  # exported without onnx
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        for args, message in (([str(tmp_path)], "not a gankit export"),
                              ([str(path), "--max-n", "0"], "--max-n 0: expected 1 or more"),
                              ([str(path), "--port", "99999"], "--port 99999: expected 0 to 65535"),
                              ([str(path), "--port", busy], f"--port {busy}: cannot listen there"),
                              ([str(path), "--backend", "onnx"], "export with --format onnx"),
                              ([str(path.parent / "run"), "--backend", "onnx"], "is a run folder, which holds no ONNX")):
            port = [] if "--port" in args else ["--port", str(free_port())]
            r = subprocess.run([sys.executable, "-m", "gankit", "serve", *args, *port], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}, timeout=60)
            assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_fuzzing_the_api_from_its_own_schema_finds_no_server_error(digits_server, tmp_path):
    """schemathesis generates valid and invalid requests from /openapi.json; every answer must be a documented
    status, never a 5xx, with the documented content type and schema."""
    pytest.importorskip("schemathesis")
    client, _ = digits_server
    st = Path(sys.executable).parent / "st"
    r = subprocess.run([str(st), "run", f"{client.base_url}/openapi.json", "--checks", "all",
                        "--exclude-checks", "positive_data_acceptance",  # labels must exist and fit n: not in a schema
                        "--max-examples", "150", "--generation-deterministic", "--continue-on-failure"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "No issues found" in r.stdout


def test_several_worker_processes_serve_the_same_samples(ring_server):
    _, path = ring_server
    process, url = start_server(path, "--workers", "2")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:  # new connections: uvicorn spreads them
            bodies = []
            for _ in range(6):
                with httpx.Client(base_url=url, timeout=30) as c:
                    bodies.append(c.post("/v1/generate", json={"n": 20, "seed": 9}).json()["samples"])
            assert client.get("/health").status_code == 200
        for body in bodies[1:]:
            np.testing.assert_allclose(body, bodies[0], rtol=0, atol=1e-5)
        workers = [d for d in Path("/proc").iterdir() if d.name.isdigit() and _parent(d) == process.pid]
        assert len([w for w in workers if "spawn_main" in _cmdline(w)]) == 2  # two uvicorn worker processes
    finally:
        log = stop(process)
    assert "Traceback" not in log, log


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
