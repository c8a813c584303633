"""gankit export / gankit.load of a table run: the network, its decoder, and the rows sample_table gives."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import gankit
import gankit.product_loader
from gankit.cli import main
from gankit.errors import GankitError
from gankit.export import MANIFEST, ONNX_MODEL, WEIGHTS, export, load
from gankit.onnx_export import onnx_session
from gankit.table_export import TABLE_STATE, TABLE_TENSORS, ExportedTable

pytest.importorskip("onnxruntime")

COLUMNS = ["kind", "x", "count", "when", "flag"]


def table_frame(n: int = 400) -> pd.DataFrame:
    """Every kind a record can hold: a category, decimals with missing cells, integers, dates, booleans."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, n).round(3)
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"kind": rng.choice(["a", "b", "c"], n, p=[.6, .3, .1]), "x": x,
                         "count": rng.integers(0, 1000, n), "when": pd.date_range("2020-01-01", periods=n, freq="D"),
                         "flag": rng.random(n) < .3})


def train_table_run(run_dir):
    cfg = gankit.load_config(gankit.recipe("seattle-weather"), ["train.steps=30", "data.batch_size=100",
                                                                "data.holdout=0"])
    gankit.train(cfg, data=gankit.from_dataframe(table_frame()), run_dir=run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    return train_table_run(tmp_path_factory.mktemp("table") / "run")


@pytest.fixture(scope="module")
def table_export(table_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("table-export") / "export"
    return out, export(table_run, out, ["safetensors", "onnx"])


def test_export_writes_network_decoder_and_a_table_manifest(table_export):
    out, result = table_export
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS, ONNX_MODEL, TABLE_STATE, TABLE_TENSORS])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"] == {"weights": WEIGHTS, "onnx": ONNX_MODEL, "decoder": TABLE_STATE,
                                 "decoder_tensors": TABLE_TENSORS}
    assert manifest["product"]["kind"] == "table" and manifest["family"] == "tabular"
    assert [i["name"] for i in manifest["product"]["inputs"]] == ["z", "cond"]
    output = manifest["output"]
    assert output["kind"] == "table" and "decode" in output and "records" in output
    columns = {c["name"]: c for c in output["columns"]}
    assert list(columns) == COLUMNS
    assert {k: c["kind"] for k, c in columns.items()} == {"kind": "categorical", "x": "continuous",
                                                          "count": "integer", "when": "datetime", "flag": "boolean"}
    assert columns["kind"]["categories"] == ["a", "b", "c"] and columns["flag"]["categories"] == ["False", "True"]
    assert columns["when"]["date_format"] == "%Y-%m-%d" and columns["x"]["decimals"] == 3
    assert 0.05 < columns["x"]["missing"] < 0.15
    width = output["encoded"]["width"]
    assert output["shape"] == [width] and sum(s[2] for s in output["encoded"]["spans"]) == width
    conditions = manifest["conditions"]
    assert [b["column"] for b in conditions["columns"]] == ["kind", "flag"]
    assert conditions["cond_dim"] == sum(len(b["frequencies"]) for b in conditions["columns"])
    assert set(manifest["onnx"]["inputs"]) == {"z", "cond"} and list(manifest["onnx"]["outputs"]) == ["x"]
    assert 0 <= result.onnx_max_abs_diff <= 1e-4 and result.checked == [1, 7, 64]
    decoder = json.loads((out / TABLE_STATE).read_text())  # the transformer's state: JSON and safetensors
    assert decoder["format"] == "gankit.table_transform/1" and [c["name"] for c in decoder["columns"]] == COLUMNS
    assert all(k.startswith("mixture.") for k in load_file(out / TABLE_TENSORS))


WHERES = [(None, 25), (["kind=b"], 25), (["kind=c", "flag=True"], 25), ("when=2020-01-01", 10),
          ({"flag": True, "count": "common"}, 2), ({"kind": "a", "x": "common"}, 2)]


def common(model, where):
    """``where`` with "common" for the value the generator makes most often (an exact number is rare), as a float."""
    if not isinstance(where, dict):
        return where
    rows = model.generate(500, seed=0)
    return {k: float(rows[k].mode()[0]) if v == "common" else v for k, v in where.items()}


@pytest.mark.parametrize("where,n", WHERES, ids=[json.dumps(w) for w, _ in WHERES])
def test_loaded_export_gives_sample_tables_rows_on_either_backend(table_export, table_run, where, n):
    model = load(table_export[0])
    assert isinstance(model, ExportedTable)
    where = common(model, where)
    ours = model.generate(n, seed=4, where=where)
    want = gankit.sample_table(table_run, n, seed=4, where=model.where_items(where))
    pd.testing.assert_frame_equal(ours, want)
    assert ours.attrs["draws"] == want.attrs["draws"] >= n
    assert list(ours.columns) == COLUMNS and str(ours["when"].dtype).startswith("datetime64")
    onnx = model.generate(n, seed=4, where=where, backend="onnx")
    pd.testing.assert_frame_equal(onnx, want)
    assert onnx.attrs["draws"] == want.attrs["draws"]
    for item in model.where_items(where):
        column, value = item.split("=")
        if column in ("kind", "flag"):
            assert (ours[column] == value).all()
        elif column == "when":
            assert (ours[column] == pd.Timestamp(value)).all()
        else:
            assert np.allclose(ours[column].astype(float), float(value))


@pytest.mark.parametrize("batch", [1, 5, 300])
def test_onnx_matches_pytorch_on_seeded_inputs_at_any_batch_size(table_export, batch):
    out, _ = table_export
    model = load(out)
    z, cond = model.inputs(batch, seed=batch)
    theirs = onnx_session(out / ONNX_MODEL).run(None, {"z": z, "cond": cond})[0]
    with torch.no_grad():
        ours = model.G(torch.from_numpy(z), torch.from_numpy(cond)).numpy()
    assert theirs.shape == (batch, model.G.width) and np.abs(theirs - ours).max() <= 1e-4


def test_load_reads_no_pickle_and_needs_no_run_folder(table_export, tmp_path, monkeypatch):
    copy = tmp_path / "copied"
    shutil.copytree(table_export[0], copy)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling")
    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(gankit.product_loader, "load_checkpoint", refuse)  # nothing of the run is read
    frame = load(copy).generate(5, seed=1, where={"kind": "c"})
    assert len(frame) == 5 and (frame["kind"] == "c").all()


def test_a_run_folder_loads_as_the_same_table(table_export, table_run):
    pd.testing.assert_frame_equal(load(table_run).generate(10, seed=2), load(table_export[0]).generate(10, seed=2))


def test_records_have_the_sources_types_and_null_for_missing(table_export):
    model = load(table_export[0])
    frame = model.generate(40, seed=3)
    frame.loc[0, "x"], frame.loc[1, "count"], frame.loc[2, "when"], frame.loc[3, "kind"] = np.nan, np.nan, pd.NaT, None
    records = model.records(frame)
    assert len(records) == 40 and all(list(r) == COLUMNS for r in records)
    assert records[0]["x"] is None and records[1]["count"] is None and records[2]["when"] is None
    assert records[3]["kind"] is None
    for r in records[4:]:
        assert r["kind"] in ("a", "b", "c") and r["flag"] in ("False", "True")
        assert r["x"] is None or type(r["x"]) is float
        assert type(r["count"]) is int and 0 <= r["count"] <= 999
        assert pd.Timestamp(r["when"]).strftime("%Y-%m-%d") == r["when"]
    assert json.loads(json.dumps(records)) == records  # JSON as it is


BAD_WHERE = [(["nope=1"], "no column 'nope' in the samples"), ({"kind": "z"}, "column 'kind' has no category 'z'"),
             ({"x": "abc"}, "column 'x' holds numbers; 'abc' is not one"), (["when=yesterday"], "is not a date"),
             (["kind"], "expected column=value")]


@pytest.mark.parametrize("where,message", BAD_WHERE, ids=[m for _, m in BAD_WHERE])
def test_bad_where_is_a_one_line_error(table_export, where, message):
    with pytest.raises(GankitError, match=message) as e:
        load(table_export[0]).generate(3, where=where)
    assert "\n" not in str(e.value)


def test_cli_export_of_a_table_and_no_stale_decoder_after_another_export(table_run, tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["export", str(table_run), "--out", str(out), "--format", "safetensors,onnx"]) == 0
    printed = capsys.readouterr().out
    assert "table.json" in printed and "ONNX check: onnxruntime vs PyTorch max abs difference" in printed
    ring = tmp_path / "ring"
    gankit.train(None, overrides=["data.name=ring8", "data.n=500", "model.g_hidden=8", "model.d_hidden=8",
                                  "train.steps=2", "train.plot_every=1000", "eval.every=0"], run_dir=ring,
                 progress=False)
    export(ring, out)  # a table's decoder would not belong to these weights
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, WEIGHTS])
    assert not isinstance(load(out), ExportedTable)
