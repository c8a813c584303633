"""Pictures of a synthetic table: the column panels and the correlation matrices, their values and their bytes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gankit import table_pictures
from gankit.errors import GankitError
from gankit.table_pictures import (
    association_matrix,
    category_shares,
    column_pictures,
    correlation_pictures,
    cramers_v,
)

SDTYPES = {"height": "numerical", "weight": "numerical", "city": "categorical", "member": "boolean",
           "joined": "datetime", "visits": "numerical"}


def table(n: int, seed: int, missing: float = 0.0) -> pd.DataFrame:
    """A typed table as gankit.data.table_schema.typed_frame gives it: float64 with NaN, datetime64 with NaT,
    text with None."""
    r = np.random.default_rng(seed)
    height = r.normal(170, 10, n)
    frame = pd.DataFrame({
        "height": height,
        "weight": 0.9 * (height - 100) + r.normal(0, 5, n),
        "city": r.choice(["Oslo", "Lima", "Pune", "Kyiv"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "member": np.where(r.random(n) < 0.3, "True", "False").astype(object),
        "joined": pd.Timestamp("2019-01-01") + pd.to_timedelta(r.integers(0, 900, n), unit="D"),
        "visits": r.poisson(3, n).astype(np.float64),
    })
    holes = r.random((n, len(frame.columns))) < missing
    for j, name in enumerate(frame.columns):
        frame[name] = frame[name].mask(holes[:, j])
        if frame[name].dtype == object:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
        return im.size


@pytest.fixture(scope="module")
def pair():
    return table(2000, 0), table(1500, 1, missing=0.1)


def test_both_pictures_are_pngs_of_a_sensible_size_with_the_same_bytes_each_time(pair, tmp_path):
    real, fake = pair
    for draw, name in ((column_pictures, "columns.png"), (correlation_pictures, "correlations.png")):
        a, b = draw(real, fake, SDTYPES, tmp_path / f"a-{name}"), draw(real, fake, SDTYPES, tmp_path / f"b-{name}")
        width, height = png_size(a)
        assert 600 <= width <= 3000 and 300 <= height <= 3000, (name, width, height)
        assert a.read_bytes() == b.read_bytes(), name  # no timestamp in the file
    assert png_size(tmp_path / "a-columns.png") == (1400, 695)  # 4 panels a row, 2 rows
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left


def test_column_panels_follow_max_columns(pair, tmp_path):
    real, fake = pair
    one = column_pictures(real, fake, SDTYPES, tmp_path / "one.png", max_columns=1)
    assert png_size(one)[0] < png_size(column_pictures(real, fake, SDTYPES, tmp_path / "all.png"))[0]


def test_category_shares_top_other_and_missing():
    real = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + [None] * 2, dtype=object)
    fake = pd.Series(["a"] * 2 + ["z"] * 2, dtype=object)  # "z": a category the real data lacks
    labels, r, f = category_shares(real, fake, top=2)
    assert labels == ["a", "b", "(other)", "(missing)"]
    np.testing.assert_allclose(r, [5 / 12, 3 / 12, 2 / 12, 2 / 12])
    np.testing.assert_allclose(f, [0.5, 0.0, 0.5, 0.0])
    labels, r, f = category_shares(pd.Series([True, False, True], dtype=object), pd.Series(["True"] * 2, dtype=object))
    assert labels == ["True", "False"] and f.tolist() == [1.0, 0.0]  # booleans and their text are one category


def test_associations_are_pearson_between_numbers_and_cramers_v_with_categories(pair):
    real, _ = pair
    m = association_matrix(real, SDTYPES, list(SDTYPES))
    numeric = ["height", "weight", "visits"]
    index = [list(SDTYPES).index(n) for n in numeric]
    np.testing.assert_allclose(m[np.ix_(index, index)], np.corrcoef(real[numeric].to_numpy().T), atol=1e-12)
    assert np.allclose(np.diag(m), 1) and np.allclose(m, m.T)
    city, member = list(SDTYPES).index("city"), list(SDTYPES).index("member")
    assert 0 <= m[city, member] < 0.05  # drawn independently: bias-corrected V near 0


def test_cramers_v_of_a_perfect_association_is_one_and_of_one_category_undefined():
    a = np.repeat([0, 1, 2], 300)
    assert cramers_v(a, (a + 1) % 3) == pytest.approx(1.0)
    assert math.isnan(cramers_v(a, np.zeros_like(a)))
    r = np.random.default_rng(0)
    assert cramers_v(r.integers(0, 4, 5000), r.integers(0, 3, 5000)) < 0.03


def test_degenerate_columns_draw_without_a_crash(pair, tmp_path):
    real, fake = pair
    fake = fake.copy()
    fake["height"] = np.nan  # all missing in the synthetic table
    fake["city"] = None
    fake["joined"] = pd.NaT
    real = real.assign(member="True")  # a single category
    fake = fake.assign(visits=4.0)  # a constant
    sdtypes = {**SDTYPES, "empty": "numerical"}
    real, fake = real.assign(empty=np.nan), fake.assign(empty=1.0)  # no real values at all
    for draw in (column_pictures, correlation_pictures):
        png_size(draw(real, fake, sdtypes, tmp_path / f"{draw.__name__}.png"))
    m = association_matrix(fake, sdtypes, list(sdtypes), real)
    height = list(sdtypes).index("height")
    assert np.isnan(np.delete(m[height], height)).sum() >= 3  # Pearson with no values: undefined, shown grey


def test_one_column_gives_a_picture_saying_so(tmp_path):
    real, fake = pd.DataFrame({"x": [1.0, 2.0, 3.0]}), pd.DataFrame({"x": [1.0, 1.5, np.nan]})
    _, height = png_size(correlation_pictures(real, fake, {"x": "numerical"}, tmp_path / "c.png"))
    assert height < 200  # a line of text, not a matrix
    png_size(column_pictures(real, fake, {"x": "numerical"}, tmp_path / "p.png"))


def test_an_empty_synthetic_table_draws(pair, tmp_path):
    real, fake = pair
    for draw in (column_pictures, correlation_pictures):
        png_size(draw(real, fake.iloc[:0], SDTYPES, tmp_path / f"{draw.__name__}.png"))


def test_large_tables_are_drawn_from_a_seeded_subset(pair, tmp_path, monkeypatch):
    monkeypatch.setattr(table_pictures, "MAX_ROWS", 300)
    real, fake = pair
    a = column_pictures(real, fake, SDTYPES, tmp_path / "a.png", seed=1).read_bytes()
    assert a == column_pictures(real, fake, SDTYPES, tmp_path / "b.png", seed=1).read_bytes()
    assert a != column_pictures(real, fake, SDTYPES, tmp_path / "c.png", seed=2).read_bytes()


@pytest.mark.parametrize("sdtypes, fake_columns, message", [
    ({}, None, "sdtypes names no columns"),
    ({"height": "float"}, None, "column 'height': sdtype 'float'; expected one of numerical"),
    ({"nope": "numerical"}, None, "column 'nope' is not in the real table"),
    ({"height": "numerical"}, ["weight"], "column 'height' is not in the synthetic table"),
])
def test_mistakes_are_one_line_errors(pair, tmp_path, sdtypes, fake_columns, message):
    real, fake = pair
    fake = fake if fake_columns is None else fake[fake_columns]
    with pytest.raises(GankitError, match=message):
        column_pictures(real, fake, sdtypes, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
