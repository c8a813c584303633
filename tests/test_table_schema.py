"""Column kinds, the errors and warnings of detection, typed frames, and writing samples as the file was."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gankit.data.table_io import read_csv_table, write_table
from gankit.data.table_cells import MISSING
from gankit.data.table_schema import TableSchema, detect_schema, typed_frame
from gankit.errors import GankitError


def kinds(schema: TableSchema) -> dict[str, str]:
    return {c.name: c.kind for c in schema.columns}


def mixed_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "height": rng.normal(170, 10, n).round(1),
        "visits": rng.integers(0, 500, n),
        "stars": rng.integers(1, 4, n),
        "member": rng.random(n) > 0.5,
        "day": pd.date_range("2021-03-01", periods=n, freq="D"),
        "colour": pd.Categorical(rng.choice(["red", "blue"], n)),
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        "row": np.arange(n),
        "name": [f"person {i}" for i in range(n)],
    })


def write_csv(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_kinds_of_a_typed_frame():
    schema = detect_schema(mixed_frame())
    assert kinds(schema) == {"height": "continuous", "visits": "integer", "stars": "categorical",
                             "member": "boolean", "day": "datetime", "colour": "categorical",
                             "city": "categorical", "row": "id", "name": "id"}
    assert schema.column("stars").note == "3 distinct integers"
    assert schema.column("stars").categories == ("1", "2", "3")
    assert schema.column("member").categories == ("False", "True")
    assert schema.column("day").date_format == "%Y-%m-%d"
    assert schema.column("height").decimals == 1
    assert schema.source == "dataframe"
    assert [c.name for c in schema.modelled()] == ["height", "visits", "stars", "member", "day", "colour", "city"]
    assert schema.sdtypes()["visits"] == "numerical" and schema.sdtypes()["member"] == "boolean"


def test_kinds_of_a_csv_read_as_text(tmp_path, capsys):
    rows = ["id,price,count,flag,when,size,note,const,blank"]
    for i in range(30):
        rows.append(f"{i + 100},{i * 1.25:.2f},{(i * 37) % 101},{'Yes' if i % 3 else 'no'},"
                    f"{1 + i % 28:02d}.0{1 + i % 9}.2020,{'SML'[i % 3]},word{i},7,")
    path = write_csv(tmp_path, "\n".join(rows) + "\n")
    frame = read_csv_table(path)
    assert all(isinstance(v, str) for v in frame["price"])  # every cell as text
    schema = detect_schema(frame)
    assert schema.source == str(path)
    assert kinds(schema) == {"id": "id", "price": "continuous", "count": "integer", "flag": "boolean",
                             "when": "datetime", "size": "categorical", "note": "id", "const": "constant",
                             "blank": "empty"}
    assert schema.column("price").decimals == 2
    assert schema.column("when").date_format == "%d.%m.%Y"
    assert schema.column("flag").categories == ("Yes", "no")  # the file's own spelling
    assert schema.column("const").categories == ("7",)
    assert schema.column("blank").missing == 1.0
    err = capsys.readouterr().err.splitlines()
    assert sum(line.startswith("gankit: warning: ") for line in err) == 4  # id, note, const, blank: once each
    assert any("'const'" in line and "constant" in line for line in err)
    assert any("'blank'" in line and "missing" in line for line in err)
    assert [c.name for c in schema.written()] == ["price", "count", "flag", "when", "size", "const"]


@pytest.mark.parametrize("cells, fmt", [
    (["2020-01-31", "2021-12-01"], "%Y-%m-%d"),
    (["2020-01-31 10:00:00", "2021-12-01 23:59:59"], "%Y-%m-%d %H:%M:%S"),
    (["2020-01-31T10:00:00", "2021-12-01T00:00:01"], "%Y-%m-%dT%H:%M:%S"),
    (["2020/01/31", "2021/12/01"], "%Y/%m/%d"),
    (["31/01/2020", "01/12/2021"], "%d/%m/%Y"),
    (["01/31/2020", "12/01/2021"], "%m/%d/%Y"),
    (["01/02/2020", "03/04/2021"], "%d/%m/%Y"),  # both parse: the first format in the list wins
    (["31-01-2020", "01-12-2021"], "%d-%m-%Y"),
])
def test_date_formats(cells, fmt):
    schema = detect_schema(pd.DataFrame({"d": cells * 3}))
    assert schema.column("d").kind == "datetime" and schema.column("d").date_format == fmt


def test_booleans_integers_and_ids_by_name():
    n = 40
    frame = pd.DataFrame({
        "ok": ["TRUE", "false", "True", "FALSE"] * (n // 4),
        "few": [3, 1, 2, 3] * (n // 4),  # 3 distinct of 40: categories
        "many": np.arange(n) * 3,  # unique, not consecutive: integers
        "user_id": np.random.default_rng(1).permutation(n) * 7,  # unique and named as an id
        "code": [f"{i % 12:02d}" for i in range(n)],  # leading zeros: text, not integers
    })
    schema = detect_schema(frame)
    assert kinds(schema) == {"ok": "boolean", "few": "categorical", "many": "integer", "user_id": "id",
                             "code": "categorical"}
    assert "leading zeros" in schema.column("code").note and schema.column("code").categories[0] == "00"


def test_missing_tokens_and_share():
    cells = list(MISSING) + ["1.5", "2.5", "3.5"] * 3
    schema = detect_schema(pd.DataFrame({"x": cells, "y": [None, np.nan] + [1.0, 2.25] * 8}))
    assert schema.column("x").kind == "continuous"
    assert schema.column("x").missing == pytest.approx(len(MISSING) / len(cells))
    assert schema.column("y").missing == pytest.approx(2 / 18)
    typed = typed_frame(pd.DataFrame({"x": cells, "y": [None, np.nan] + [1.0, 2.25] * 8}), schema)
    assert typed["x"].isna().sum() == len(MISSING) and typed["x"].dtype == np.float64


def test_numbers_among_text_name_the_cell_and_line(tmp_path):
    rows = ["age,city"] + [f"{20 + i % 50},x" for i in range(40)]
    rows[13] = "unknown,x"  # line 14 of the file
    path = write_csv(tmp_path, "\n".join(rows))
    with pytest.raises(GankitError) as e:
        detect_schema(read_csv_table(path))
    message = str(e.value)
    assert "column 'age'" in message and "'unknown' on line 14" in message and "(1 of 40 cells)" in message
    assert '[data.columns] age = "categorical"' in message and "\n" not in message
    schema = detect_schema(read_csv_table(path), {"age": "categorical"})  # the fix the message names
    assert schema.column("age").kind == "categorical" and schema.column("age").note == "set in config"


def test_line_numbers_follow_blank_lines_and_quoted_breaks(tmp_path):
    rows = ["n,t", "1.5,\"two\nlines\"", ""] + [f"{i}.5,a" for i in range(10)] + ["oops,a"]
    path = write_csv(tmp_path, "\n".join(rows))
    with pytest.raises(GankitError, match=r"'oops' on line 15 "):
        detect_schema(read_csv_table(path))


def test_dates_with_a_bad_cell():
    cells = [f"2020-01-{d:02d}" for d in range(1, 29)] + ["2020-02-30"]
    with pytest.raises(GankitError, match=r"column 'when': '2020-02-30' in row 28 is not a date like the others "
                                          r"\(28 of 29 cells are dates %Y-%m-%d\)"):
        detect_schema(pd.DataFrame({"when": cells}))


def test_file_errors(tmp_path):
    cases = {
        "empty.csv": ("", "is empty"),
        "header.csv": ("a,b\n", r"has a header \(a, b\) but no rows"),
        "ragged.csv": ("a,b\n1,2\n3,4,5\n", "line 3 has 3 cells; expected 2"),
        "numbers.csv": ("1,2\n3,4\n", "line 1 holds numbers"),
        "twice.csv": ("a,a\n1,2\n", "names column 'a' twice"),
    }
    for name, (text, expected) in cases.items():
        with pytest.raises(GankitError, match=expected):
            read_csv_table(write_csv(tmp_path, text, name))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b\n1,2\ncaf\u00e9,3\n".encode("latin-1"))
    with pytest.raises(GankitError, match=r"line 3 is not UTF-8 text \(byte 0xe9\)"):
        read_csv_table(latin)
    with pytest.raises(GankitError, match="not found"):
        read_csv_table(tmp_path / "nowhere.csv")


def test_override_errors():
    frame = pd.DataFrame({"a": ["x", "y", "z1"] * 4, "b": [1.5, 2.5, 3.0] * 4})
    with pytest.raises(GankitError, match=r"\[data.columns\] c = 'integer': no such column; columns are a, b"):
        detect_schema(frame, {"c": "integer"})
    with pytest.raises(GankitError, match=r"unknown kind; expected one of continuous, integer, categorical"):
        detect_schema(frame, {"a": "number"})
    with pytest.raises(GankitError, match=r"column 'a': 'x' in row 0 is not a number"):
        detect_schema(frame, {"a": "continuous"})
    with pytest.raises(GankitError, match=r"column 'b': 1.5 in row 0 is not a whole number"):
        detect_schema(frame, {"b": "integer"})
    with pytest.raises(GankitError, match=r"column 'a': 'z1' in row 2 is a third value"):
        detect_schema(frame, {"a": "boolean"})
    with pytest.raises(GankitError, match=r"column 'a': 'x' in row 0 is not a date"):
        detect_schema(frame, {"a": "datetime"})


def test_overrides_that_hold():
    frame = pd.DataFrame({"zip": [10115, 20095, 10115, 80331] * 5, "x": [1, 2, 3, 4] * 5, "d": ["5"] * 20})
    schema = detect_schema(frame, {"zip": "categorical", "x": "continuous", "d": "id"})
    assert kinds(schema) == {"zip": "categorical", "x": "continuous", "d": "id"}
    assert schema.column("zip").categories == ("10115", "20095", "80331")
    assert schema.column("x").decimals == 0


def test_typed_frame_and_json_round_trip():
    frame = mixed_frame()
    schema = detect_schema(frame)
    typed = typed_frame(frame, schema)
    assert list(typed.columns) == [c.name for c in schema.written()]
    assert typed["visits"].dtype == np.float64 and typed["day"].dtype == "datetime64[ns]"
    assert typed["member"].dtype == object and set(typed["member"]) == {"True", "False"}
    assert TableSchema.from_json(json.loads(json.dumps(schema.to_json()))) == schema
    lines = schema.summary().splitlines()
    assert len(lines) == len(schema.columns) and lines[0].startswith("height") and "continuous" in lines[0]
    with pytest.raises(GankitError, match="unknown column 'nope'; columns are height, visits"):
        schema.column("nope")


def test_write_table_gives_back_the_file_text(tmp_path):
    rows = ["n,price,when,flag,kind,stamp"]
    for i in range(24):
        price = "" if i == 5 else f"{i * 0.75:.2f}"
        rows.append(f"{1000 + i * 13},{price},{2020 + i % 3}/0{1 + i % 9}/1{i % 10},{'yes' if i % 2 else 'No'},"
                    f"{'ab'[i % 2]},2021-05-0{1 + i % 9} 0{i % 10}:1{i % 6}")
    source = write_csv(tmp_path, "\n".join(rows) + "\n")
    frame = read_csv_table(source)
    schema = detect_schema(frame)
    assert schema.column("stamp").date_format == "%Y-%m-%d %H:%M"
    out = tmp_path / "out.csv"
    write_table(typed_frame(frame, schema), schema, out)
    assert out.read_text() == source.read_text()  # integers, decimals, dates, booleans, missing: as written


def test_write_parquet_and_refusals(tmp_path, monkeypatch):
    frame = mixed_frame(20)
    schema = detect_schema(frame)
    typed = typed_frame(frame, schema)
    pytest.importorskip("pyarrow")
    write_table(typed, schema, tmp_path / "s.parquet")
    back = pd.read_parquet(tmp_path / "s.parquet")
    assert list(back.columns) == list(typed.columns) and str(back["visits"].dtype) == "Int64"
    assert (back["day"] == typed["day"]).all()
    with pytest.raises(GankitError, match="expected .csv or .parquet"):
        write_table(typed, schema, tmp_path / "s.xlsx")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(GankitError, match="pip install pyarrow"):
        write_table(typed, schema, tmp_path / "t.parquet")


def test_real_tables():
    from sklearn.datasets import load_wine

    wine = detect_schema(load_wine(as_frame=True).frame)
    assert wine.column("target").kind == "categorical" and wine.column("target").note == "3 distinct integers"
    assert wine.column("alcohol").kind == "continuous" and wine.column("alcohol").decimals == 2
    assert wine.column("proline").kind == "integer"  # floats, all whole, many distinct

    pytest.importorskip("vega_datasets")
    from vega_datasets import data, local_data

    expected = {"date": "datetime", "precipitation": "continuous", "temp_max": "continuous",
                "temp_min": "continuous", "wind": "continuous", "weather": "categorical"}
    typed = detect_schema(data.seattle_weather())  # the package parses the dates
    assert kinds(typed) == expected and typed.column("date").date_format == "%Y-%m-%d"
    assert typed.column("weather").categories == ("drizzle", "fog", "rain", "snow", "sun")
    path = local_data.seattle_weather.filepath
    assert str(path).endswith("seattle-weather.csv")
    text = detect_schema(read_csv_table(path))  # the file itself writes 2012/01/01
    assert kinds(text) == expected and text.column("date").date_format == "%Y/%m/%d"
    assert len(text.column("weather").categories) == 5 and text.column("precipitation").decimals == 1
