"""Tables end to end: a CSV of mixed columns (numbers, integers, categories, a date, a boolean, an id, missing
cells) through gankit train / sample / eval, and a DataFrame through the API: the schema written and printed, the
samples' columns, types and formats, --where, the scores, and one-line errors."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pandas as pd
import pytest

import gankit
from gankit.cli import main

TINY = ["--set", "data.batch_size=100", "--set", "train.log_every=10"]


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """kind (3 categories, one rare), size (depends on kind), count (integers), day (dates), flag (booleans), an id,
    and missing cells in size (10%) and kind (5%)."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["red", "green", "blue"], n, p=[0.6, 0.3, 0.1])
    size = np.where(kind == "red", rng.normal(10, 1, n), rng.normal(20, 2, n)).round(2)
    frame = pd.DataFrame({
        "row_id": np.arange(1000, 1000 + n),
        "kind": kind,
        "size": size,
        "count": rng.integers(0, 500, n),
        "day": pd.date_range("2021-03-01", periods=n, freq="D").strftime("%d/%m/%Y"),
        "flag": np.where(rng.random(n) < 0.3, "yes", "no"),
    })
    frame.loc[rng.random(n) < 0.10, "size"] = np.nan
    frame.loc[rng.random(n) < 0.05, "kind"] = ""
    return frame


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A table trained from a CSV with the CLI (few steps: the tests check plumbing, not quality)."""
    folder = tmp_path_factory.mktemp("table")
    path = folder / "things.csv"
    mixed_frame().to_csv(path, index=False)
    run = folder / "run"
    assert main(["train", "--data", str(path), "--steps", "40", "--run-dir", str(run), "--quiet",
                 "--set", "data.holdout=0.2", "--set", "eval.target=kind", *TINY]) == 0
    return path, run


def test_train_detects_the_schema_and_writes_it_with_pictures(table_run):
    path, run = table_run
    schema = json.loads((run / "schema.json").read_text())
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    assert kinds == {"row_id": "id", "kind": "categorical", "size": "continuous", "count": "integer",
                     "day": "datetime", "flag": "boolean"}
    day = next(c for c in schema["columns"] if c["name"] == "day")
    assert day["date_format"] == "%d/%m/%Y"
    config = (run / "config.toml").read_text()
    assert 'name = "table"' in config and 'name = "ctgan"' in config
    for picture in ("columns.png", "correlations.png"):
        assert (run / "samples" / picture).stat().st_size > 10_000
    assert "columns.png" in (run / "report.html").read_text()


def test_sample_writes_the_source_columns_types_and_formats(table_run, tmp_path):
    _, run = table_run
    out = tmp_path / "synth.csv"
    assert main(["sample", str(run), "--n", "300", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["kind", "size", "count", "day", "flag"]  # the id is left out, the order kept
    assert {r["kind"] for r in rows} <= {"red", "green", "blue", ""}
    assert {r["flag"] for r in rows} <= {"yes", "no"}
    assert all(re.fullmatch(r"\d{2}/\d{2}/\d{4}", r["day"]) for r in rows)
    assert all(re.fullmatch(r"-?\d+", r["count"]) for r in rows)  # integers without ".0"
    assert all(r["size"] == "" or re.fullmatch(r"-?\d+(\.\d{1,2})?", r["size"]) for r in rows)  # 2 decimals at most
    again = tmp_path / "again.csv"
    main(["sample", str(run), "--n", "300", "--out", str(again)])
    assert again.read_bytes() == out.read_bytes()  # the same seed, the same rows


def test_where_returns_only_matching_rows_and_says_how_many_draws(table_run, tmp_path, capsys):
    _, run = table_run
    out = tmp_path / "blue.csv"
    assert main(["sample", str(run), "--n", "40", "--where", "kind=blue", "--where", "flag=yes",
                 "--out", str(out)]) == 0
    assert re.search(r"wrote 40 rows .*\(\d[\d,]* draws for kind=blue and flag=yes\)", capsys.readouterr().out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and all(r["kind"] == "blue" and r["flag"] == "yes" for r in rows)


@pytest.mark.parametrize("args, message", [
    (["--where", "colour=red"], "no column 'colour' in the samples; columns: kind, size"),
    (["--where", "kind=purple"], "column 'kind' has no category 'purple'; categories:"),
    (["--where", "size=big"], "column 'size' holds numbers; 'big' is not one"),
    (["--where", "kind"], "expected column=value"),
    (["--label", "red"], "a table run is conditioned with --where COLUMN=VALUE"),
])
def test_sample_mistakes_are_one_line(table_run, tmp_path, capsys, args, message):
    _, run = table_run
    assert main(["sample", str(run), "--n", "5", *args, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_table_run_writes_csv_or_parquet_only(table_run, tmp_path, capsys):
    _, run = table_run
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 2
    assert "a table run's samples go to a .csv or .parquet file" in capsys.readouterr().err


def test_eval_scores_quality_efficacy_and_privacy(table_run, tmp_path):
    path, run = table_run
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    quality = result["quality"]
    assert 0 < quality["score"] <= 1 and quality["score"] == pytest.approx(
        (quality["column_shapes"] + quality["column_pair_trends"]) / 2)
    assert result["ml_efficacy"]["target"] == "kind" and result["ml_efficacy"]["task"] == "classification"
    assert 0 <= result["privacy"]["score"] <= 1
    assert result["how"]["holdout"] == "80 held-out rows" and result["how"]["real"] == "320 training rows"
    synth = tmp_path / "synth.csv"
    main(["sample", str(run), "--n", "400", "--out", str(synth)])
    assert main(["eval", "--real", str(path), "--fake", str(synth), "--target", "flag", "--out", str(out)]) == 0
    compared = json.loads(out.read_text())
    assert 0 < compared["quality"]["score"] <= 1 and compared["ml_efficacy"]["target"] == "flag"


def test_the_real_table_scores_itself_perfectly(tmp_path):
    path = tmp_path / "t.csv"
    mixed_frame().to_csv(path, index=False)
    result = gankit.compare(path, path)
    assert result["quality"]["score"] == pytest.approx(1.0)


def test_a_column_kind_can_be_set_in_the_config(tmp_path):
    path = tmp_path / "t.csv"
    mixed_frame().to_csv(path, index=False)
    run = tmp_path / "run"
    assert main(["train", "--data", str(path), "--steps", "2", "--run-dir", str(run), "--quiet",
                 "--set", "data.columns.count=categorical", *TINY]) == 0
    kinds = {c["name"]: c["kind"] for c in json.loads((run / "schema.json").read_text())["columns"]}
    assert kinds["count"] == "categorical"


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,x\n2,y,3\n", "line 3"),
    ("a,b\n1,x\n2,y\nthree,z\n4,w\n5,v\n", "column 'a'"),
])
def test_bad_tables_are_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert main(["train", "--data", str(path), "--steps", "2", "--run-dir", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_dataframe_trains_and_samples_a_dataframe_that_keeps_missing_values(tmp_path):
    """A short training on a DataFrame reproduces the missing share of each column roughly, and sample_table gives
    the same frame for the same seed."""
    frame = mixed_frame(600, seed=1)
    config = gankit.load_config(gankit.recipe("seattle-weather"), ["train.steps=300", "data.batch_size=100",
                                                                  "data.holdout=0", "eval.target="])
    result = gankit.train(config, data=gankit.from_dataframe(frame), run_dir=tmp_path / "run", progress=False)
    synth = gankit.sample_table(result.run_dir, n=2000, seed=4)
    assert list(synth.columns) == ["kind", "size", "count", "day", "flag"]
    assert pd.api.types.is_datetime64_any_dtype(synth["day"]) and synth["size"].dtype == float
    assert abs(synth["size"].isna().mean() - 0.10) < 0.06  # 10% of the real sizes are missing
    assert synth["count"].dropna().between(0, 499).all()
    pd.testing.assert_frame_equal(synth, gankit.sample_table(result.run_dir, n=2000, seed=4))
    assert synth.attrs["draws"] == 2000


def test_missing_cells_follow_the_other_columns(tmp_path):
    """size is missing exactly when kind is blue: after a short training the synthetic rows miss size far more
    often for blue than for the other kinds (measured 0.66 against 0.15-0.17 at 300 steps)."""
    rng = np.random.default_rng(0)
    n = 600
    kind = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    size = np.where(kind == "red", rng.normal(10, 1, n), rng.normal(20, 2, n)).round(2)
    size[kind == "blue"] = np.nan
    frame = pd.DataFrame({"kind": kind, "size": size, "count": rng.integers(0, 50, n)})
    config = gankit.load_config(gankit.recipe("seattle-weather"), ["train.steps=300", "data.batch_size=100",
                                                                  "data.holdout=0", "eval.target="])
    result = gankit.train(config, data=gankit.from_dataframe(frame), run_dir=tmp_path / "run", progress=False)
    synth = gankit.sample_table(result.run_dir, n=3000, seed=0)
    missing = synth.groupby("kind")["size"].apply(lambda v: v.isna().mean())
    assert missing["blue"] > 0.4 and missing["blue"] > 2.5 * max(missing["red"], missing["green"])
