"""gankit serve of a table export: typed JSON records, where conditions, and 4xx for a bad one, over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import gankit
from gankit.export import export

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from test_serve import start_server, stop  # noqa: E402  (the same loopback servers)
from test_table_export import COLUMNS, train_table_run  # noqa: E402  (the same tiny table run)


@pytest.fixture(scope="module")
def table_server(tmp_path_factory):
    """A table generator, exported with its ONNX model, served on PyTorch."""
    root = tmp_path_factory.mktemp("serve-table")
    train_table_run(root / "run")
    export(root / "run", root / "export", ["safetensors", "onnx"])
    process, url = start_server(root / "export", "--max-n", "64")
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client, root / "export"
    log = stop(process)
    assert "Traceback" not in log, log  # no request, good or bad, made the server fail


def generate(client, **body):
    return client.post("/v1/generate", json=body)


def test_model_and_schema_describe_the_table(table_server):
    client, path = table_server
    manifest = client.get("/v1/model").json()
    assert manifest["output"]["kind"] == "table" and [c["name"] for c in manifest["output"]["columns"]] == COLUMNS
    body = client.get("/openapi.json").json()["components"]["schemas"]["GenerateRequest"]["properties"]
    assert "{column: value}" in body["where"]["description"]


def test_records_have_the_sources_names_and_types(table_server):
    client, path = table_server
    r = generate(client, n=30, seed=8)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["x-seed"] == "8" and r.headers["x-draws"] == "30"
    body = r.json()
    assert body["seed"] == 8 and body["n"] == 30 and body["draws"] == 30 and body["columns"] == COLUMNS
    model = gankit.load(path)
    assert body["records"] == model.records(model.generate(30, seed=8))  # the export's rows, exactly
    for record in body["records"]:
        assert list(record) == COLUMNS
        assert record["kind"] in ("a", "b", "c") and record["flag"] in ("False", "True")
        assert record["x"] is None or type(record["x"]) is float
        assert type(record["count"]) is int and len(record["when"]) == 10 and record["when"][4] == "-"


def test_where_is_met_and_says_how_many_draws(table_server):
    client, path = table_server
    where = {"kind": "b", "flag": True}
    body = generate(client, n=20, seed=2, where=where).json()
    assert all(r["kind"] == "b" and r["flag"] == "True" for r in body["records"]) and len(body["records"]) == 20
    model = gankit.load(path)
    want = model.generate(20, seed=2, where=where)
    assert body["draws"] == want.attrs["draws"] >= 20 and body["records"] == model.records(want)
    date = generate(client, n=2, seed=1, where={"when": body["records"][0]["when"]}).json()
    assert {r["when"] for r in date["records"]} == {body["records"][0]["when"]}


def test_concurrent_table_requests_get_their_own_rows(table_server):
    client, path = table_server
    model = gankit.load(path)
    seeds = list(range(10, 18))

    def call(seed):
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            return c.post("/v1/generate", json={"n": 5, "seed": seed, "where": {"kind": "a"}}).json()["records"]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, seeds))
    for seed, records in zip(seeds, results):
        assert records == model.records(model.generate(5, seed=seed, where={"kind": "a"}))


BAD = [({"where": {"nope": 1}}, "where: nope=1: no column 'nope' in the samples"),
       ({"where": {"kind": "z"}}, "column 'kind' has no category 'z'"),
       ({"where": {"x": "abc"}}, "column 'x' holds numbers; 'abc' is not one"),
       ({"where": {"when": "yesterday"}}, "is not a date"),
       ({"n": 1, "where": {"x": 1e300}}, "rows matched after"),
       ({"where": ["kind=a"]}, "where: Input should be a valid dictionary"),
       ({"where": {"kind": ["a"]}}, "where.kind"),
       ({"labels": "a"}, "labels: this model makes table rows of 5 columns"),
       ({"truncation": 0.5}, "truncation: this model makes table rows"),
       ({"format": "npy"}, "format: this model makes table rows"),
       ({"format": "png"}, "format: this model makes table rows")]


@pytest.mark.parametrize("body,message", BAD, ids=[json.dumps(b) for b, _ in BAD])
def test_bad_requests_get_a_one_line_4xx(table_server, body, message):
    client, _ = table_server
    r = client.post("/v1/generate", json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert message in error and "\n" not in error, error


def test_onnx_backend_serves_the_same_records(table_server):
    _, path = table_server
    process, url = start_server(path, "--backend", "onnx")
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/health").json()["backend"] == "onnx"
            body = generate(client, n=12, seed=6, where={"kind": "c"}).json()
    finally:
        log = stop(process)
    assert "Traceback" not in log, log
    model = gankit.load(path)
    assert body["records"] == model.records(model.generate(12, seed=6, where={"kind": "c"}, backend="onnx"))


def test_fuzzing_the_table_api_from_its_own_schema_finds_no_server_error(table_server, tmp_path):
    """schemathesis on a table server: where's columns and values are fuzzed too; never a 5xx."""
    pytest.importorskip("schemathesis")
    client, _ = table_server
    st = Path(sys.executable).parent / "st"
    r = subprocess.run([str(st), "run", f"{client.base_url}/openapi.json", "--checks", "all",
                        "--exclude-checks", "positive_data_acceptance",  # columns and values: not in a schema
                        "--max-examples", "60", "--generation-deterministic", "--continue-on-failure"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "No issues found" in r.stdout
