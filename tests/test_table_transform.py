"""CTGAN's mode-specific normalisation: the mixture against sklearn, encode/decode round trips, state."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from gankit.data.table_mixture import compress, fit_mixture
from gankit.data.table_schema import detect_schema, typed_frame
from gankit.data.table_transform import TableTransformer
from gankit.errors import GankitError


def two_gaussians(n: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.0, 1.0, n // 2), rng.normal(10.0, 2.0, n - n // 2)])


def mixed_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x": two_gaussians(n, seed).round(3),
        "age": rng.integers(18, 90, n),
        "level": rng.integers(1, 4, n),
        "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        "member": rng.choice(["yes", "no"], n),
        "day": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "site": "north",
    })
    frame["x"] = frame["x"].mask(rng.random(n) < 0.1)
    frame["colour"] = frame["colour"].mask(rng.random(n) < 0.05)
    frame["site"] = frame["site"].mask(rng.random(n) < 0.2)
    return frame


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the constant column's warning
        frame = mixed_table()
        schema = detect_schema(frame)
    typed = typed_frame(frame, schema)
    return schema, typed, TableTransformer.fit(typed, schema, seed=0)


def test_mixture_is_sklearns_bayesian_gaussian_mixture():
    from sklearn.mixture import BayesianGaussianMixture

    x = np.sort(two_gaussians(1000, seed=1))  # distinct values: compress keeps them, in this order
    ours = fit_mixture(*compress(x), n_components=10, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its 100 iterations rarely meet the tolerance, as in CTGAN
        theirs = BayesianGaussianMixture(n_components=10, weight_concentration_prior_type="dirichlet_process",
                                         weight_concentration_prior=0.001, n_init=1, random_state=3).fit(x[:, None])
    np.testing.assert_allclose(ours.weights, theirs.weights_, atol=1e-9)
    np.testing.assert_allclose(ours.means, theirs.means_[:, 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.stds, np.sqrt(theirs.covariances_[:, 0, 0]), rtol=1e-9)
    np.testing.assert_allclose(ours.posterior(x), theirs.predict_proba(x[:, None]), atol=1e-9)


def test_compress_keeps_counts():
    points, counts = compress(np.array([3.0, 1.0, 3.0, 2.0, 3.0]))
    assert points.tolist() == [1.0, 2.0, 3.0] and counts.tolist() == [1.0, 1.0, 3.0]
    x = two_gaussians(10000)
    points, counts = compress(x, max_points=500)  # runs of equal-count rows: same total and mean
    assert len(points) == 500 and counts.sum() == len(x)
    assert points @ counts / len(x) == pytest.approx(x.mean(), rel=1e-12)


def test_two_gaussians_keep_both_modes_and_round_trip():
    frame = pd.DataFrame({"v": two_gaussians()})
    schema = detect_schema(frame)
    typed = typed_frame(frame, schema)
    table = TableTransformer.fit(typed, schema, seed=0)
    kept = table._mixtures["v"].means[table._kept["v"]]
    weights = table._mixtures["v"].weights[table._kept["v"]]
    assert weights[np.abs(kept) < 3].sum() == pytest.approx(0.5, abs=0.05)  # the mode at 0 ...
    assert weights[np.abs(kept - 10) < 4].sum() == pytest.approx(0.5, abs=0.05)  # ... and the one at 10
    matrix = table.encode(typed, seed=0)
    assert matrix.dtype == np.float32 and np.abs(matrix[:, 0]).max() <= 0.99
    decoded = table.decode(matrix)["v"]
    assert decoded.mean() == pytest.approx(typed["v"].mean(), rel=0.02)
    assert decoded.std() == pytest.approx(typed["v"].std(), rel=0.02)
    assert np.median(np.abs(decoded - typed["v"])) < 1e-6


def test_layout(fitted):
    table = fitted[2]
    roles = [(s.column, s.role, s.activation) for s in table.spans]
    assert roles[:2] == [("x", "value", "tanh"), ("x", "mode", "softmax")]
    assert ("site", "category", "softmax") not in roles  # a constant takes no features
    assert [s.column for s in table.discrete] == ["level", "colour", "member"]
    widths = {s.column: s.width for s in table.discrete}
    assert widths == {"level": 3, "colour": 4, "member": 2}  # colour has a "missing" category
    x_mode = table.spans[1]
    assert x_mode.width == len(table._kept["x"]) + 1  # and x a "missing" mode
    assert sum(s.width for s in table.spans) == table.width
    assert all(a.start + a.width == b.start for a, b in zip(table.spans, table.spans[1:]))
    assert table.category("colour", "green") == (1, 1)  # categories sorted: blue, green, red
    assert table.category("member", "YES") == (2, 1)
    assert table.category("colour", None) == (1, 3)
    with pytest.raises(GankitError, match="column 'colour' has no value 'pink'; expected one of blue, green, red"):
        table.category("colour", "pink")
    with pytest.raises(GankitError, match="column 'x' is continuous; a condition needs a categorical"):
        table.category("x", 1)
    with pytest.raises(GankitError, match="unknown column 'nope'"):
        table.category("nope", 1)


def test_round_trip_of_a_mixed_table(fitted):
    schema, typed, table = fitted
    matrix = table.encode(typed, seed=0)
    assert matrix.shape == (len(typed), table.width)
    decoded = table.decode(matrix, seed=0)
    assert list(decoded.columns) == [c.name for c in schema.written()]
    for name in ("level", "colour", "member"):
        assert decoded[name].fillna("<missing>").equals(typed[name].fillna("<missing>"))
    assert decoded["x"].isna().equals(typed["x"].isna())  # missing cells exactly where they were
    exact = np.isclose(decoded["x"], typed["x"]) | typed["x"].isna()
    assert exact.mean() > 0.99  # rows drawn into a far mode are clipped at 4 sigma (as CTGAN)
    assert (decoded["age"] == typed["age"]).mean() > 0.99 and (decoded["age"] % 1 == 0).all()
    assert (decoded["day"] == typed["day"]).mean() > 0.99 and decoded["day"].dtype == "datetime64[ns]"
    assert set(decoded["site"].dropna()) == {"north"}
    assert decoded["site"].isna().mean() == pytest.approx(typed["site"].isna().mean(), abs=0.03)


def test_decode_of_any_matrix_stays_in_range(fitted):
    _, typed, table = fitted
    rng = np.random.default_rng(0)
    decoded = table.decode(rng.normal(0, 3, (500, table.width)).astype(np.float32))
    assert decoded["age"].between(typed["age"].min(), typed["age"].max()).all()
    assert (decoded["age"] % 1 == 0).all()
    assert np.allclose(decoded["x"].dropna(), decoded["x"].dropna().round(3))  # the file's decimals
    assert decoded["day"].dropna().between(typed["day"].min(), typed["day"].max()).all()
    assert (decoded["day"].dropna() == decoded["day"].dropna().dt.normalize()).all()  # dates, no time of day
    assert set(decoded["colour"].dropna()) <= {"blue", "green", "red"}


def test_encode_is_seeded(fitted):
    _, typed, table = fitted
    a, b = table.encode(typed, seed=0), table.encode(typed, seed=0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, table.encode(typed, seed=1))  # other modes drawn ...
    assert (table.decode(table.encode(typed, seed=1))["level"] == typed["level"]).all()  # ... same values
    five, six = table.decode(a, seed=5), table.decode(a, seed=6)  # the seed draws the constant's missing cells
    assert five.equals(table.decode(a, seed=5)) and not five["site"].equals(six["site"])
    assert five.drop(columns="site").equals(six.drop(columns="site"))


def test_state_round_trip_is_bit_identical(fitted):
    _, typed, table = fitted
    meta, tensors = table.state()
    meta = json.loads(json.dumps(meta))
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    again = TableTransformer.from_state(meta, {k: v.clone() for k, v in tensors.items()})
    matrix = table.encode(typed, seed=3)
    assert again.spans == table.spans and again.width == table.width
    pd.testing.assert_frame_equal(again.decode(matrix, seed=2), table.decode(matrix, seed=2))
    assert np.array_equal(again.encode(typed, seed=3), matrix)
    with pytest.raises(GankitError, match="lacks tensor 'mixture.0.means'"):
        TableTransformer.from_state(meta, {k: v for k, v in tensors.items() if k != "mixture.0.means"})


def test_few_distinct_values_and_unknown_categories():
    frame = pd.DataFrame({"n": [1, 2, 3, 4] * 2, "c": list("abcdabcd")})  # 4 distinct of 8: integers, not categories
    schema = detect_schema(frame, {"c": "categorical"})
    assert schema.column("n").kind == "integer"
    typed = typed_frame(frame, schema)
    table = TableTransformer.fit(typed, schema, seed=0, max_modes=10)
    assert len(table._mixtures["n"].weights) == 4  # n_components capped at the distinct values
    assert table.decode(table.encode(typed))["n"].tolist() == typed["n"].tolist()
    typed.loc[2, "c"] = "z"
    with pytest.raises(GankitError, match="column 'c': 'z' in row 2 is not one of its categories"):
        table.encode(typed)
    typed.loc[2, "c"] = None
    with pytest.raises(GankitError, match="column 'c': 1 missing cells, but the data"):
        table.encode(typed)
