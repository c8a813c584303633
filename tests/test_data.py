"""Data: the generated sets' statistics, digits, the user's .npy/.csv files and every way they can be wrong."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import Dataset, from_arrays, label_index, load_data
from gankit.errors import GankitError

N = 100_000
Z = 5.0  # tolerances are Z standard errors: a false alarm has odds of about 1 in 1.7 million


def generated(name: str, seed: int = 0, n: int = N) -> Dataset:
    return load_data(DataConfig(name=name, n=n), seed)


def nearest_mode_distances(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of each raw sample to its nearest mode, and that mode's index."""
    raw = data.to_raw(data.x).double()
    distances = torch.cdist(raw, data.modes.double())  # [N, M]
    return distances.min(1)


# --------------------------------------------------------------------------------------------- generated sets


def test_gauss1d_is_normal_with_mean_0_and_std_0_1():
    data = generated("gauss1d")
    x = data.to_raw(data.x).double().squeeze(1)
    assert data.x.shape == (N, 1)
    sigma = 0.1
    assert abs(x.mean().item()) < Z * sigma / math.sqrt(N)  # standard error of the mean
    assert abs(x.std().item() - sigma) < Z * sigma / math.sqrt(2 * N)  # standard error of the std (normal data)
    # Normal, not merely the right spread: 68.3% of the mass lies within one std.
    p = 0.6827
    assert abs((x.abs() < sigma).double().mean().item() - p) < Z * math.sqrt(p * (1 - p) / N)


def test_ring8_has_eight_modes_on_the_unit_circle_with_std_0_01():
    data = generated("ring8")
    sigma = 0.01
    assert data.mode_std == sigma and data.modes.shape == (8, 2)
    assert torch.allclose(data.modes.norm(dim=1), torch.ones(8), atol=1e-6)
    angles = torch.atan2(data.modes[:, 1], data.modes[:, 0]).double()
    assert torch.allclose(torch.sort(torch.remainder(angles, 2 * math.pi)).values,
                          torch.arange(8, dtype=torch.float64) * math.pi / 4, atol=1e-6)
    assert_mixture_spread(data, sigma)


def test_grid25_has_modes_on_the_grid_with_std_0_05():
    data = generated("grid25")
    ticks = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert {tuple(m) for m in data.modes.tolist()} == {(a, b) for a in ticks for b in ticks}
    assert data.mode_std == 0.05
    assert_mixture_spread(data, 0.05)


def assert_mixture_spread(data: Dataset, sigma: float):
    """Every sample is one of the modes plus N(0, sigma^2 I) in 2-D, and the modes are used evenly."""
    distance, mode = nearest_mode_distances(data)
    # ||noise||^2 / sigma^2 is chi-squared with 2 degrees of freedom: mean 2, variance 4.
    ratio = (distance.square() / sigma**2).mean().item()
    assert abs(ratio - 2.0) < Z * 2.0 / math.sqrt(N)
    # P(||noise|| > k sigma) = exp(-k^2 / 2): with k = 8 and N samples, about 1e-9 for all of them.
    assert distance.max().item() < 8 * sigma
    # Each of the M modes gets a binomial share N / M.
    m = len(data.modes)
    counts = torch.bincount(mode, minlength=m).double()
    assert (counts - N / m).abs().max().item() < Z * math.sqrt(N * (1 / m) * (1 - 1 / m))


def test_std_setting_replaces_the_standard_spread():
    data = load_data(DataConfig(name="ring8", n=20_000, std=0.05), seed=0)
    assert data.mode_std == 0.05
    distance, _ = nearest_mode_distances(data)
    assert abs((distance.square() / 0.05**2).mean().item() - 2.0) < Z * 2.0 / math.sqrt(20_000)


@pytest.mark.parametrize("name", ["gauss1d", "ring8", "grid25"])
def test_same_seed_same_data_other_seed_other_data(name):
    a, b, c = generated(name, 1, 1000), generated(name, 1, 1000), generated(name, 2, 1000)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, c.x)


# --------------------------------------------------------------------------------------------- digits


def test_digits_are_1797_images_of_8x8_scaled_to_minus_one_one():
    from sklearn.datasets import load_digits

    data = load_data(DataConfig(name="digits"))
    assert data.x.shape == (1797, 1, 8, 8) and data.x.dtype == torch.float32
    assert data.is_image and data.num_features == 64
    assert data.num_classes == 10 and data.class_names == [str(d) for d in range(10)]
    assert torch.equal(torch.unique(data.y), torch.arange(10))
    assert data.normalize == "minmax"
    assert data.x.min().item() == -1.0 and data.x.max().item() == 1.0  # grey levels 0 and 16 both occur
    bunch = load_digits()
    assert torch.equal(data.to_raw(data.x).flatten(1), torch.from_numpy(bunch.data).float())  # exact: 8x + 8
    assert torch.equal(data.y, torch.from_numpy(bunch.target).long())


# --------------------------------------------------------------------------------------------- the user's files


def load_file(path, **settings) -> Dataset:
    return load_data(DataConfig(name="file", path=str(path), **settings))


def write_csv(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


ROWS = np.array([[1.0, 10.0], [2.0, 30.0], [4.0, 20.0], [9.0, 40.0]])


def assert_round_trip(data: Dataset, expected: np.ndarray):
    assert torch.allclose(data.to_raw(data.x).double(), torch.from_numpy(expected), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("array", [ROWS, ROWS[:, 0]], ids=["2-D", "1-D"])
def test_npy_rows_load_standardised_and_invert(tmp_path, array):
    np.save(tmp_path / "x.npy", array)
    data = load_file(tmp_path / "x.npy")
    expected = array.reshape(len(array), -1)
    assert data.x.shape == expected.shape and data.y is None and data.num_classes == 0
    assert data.normalize == "standard"
    assert torch.allclose(data.x.mean(0), torch.zeros(expected.shape[1]), atol=1e-6)
    assert torch.allclose(data.x.std(0), torch.ones(expected.shape[1]), atol=1e-6)
    assert_round_trip(data, expected)
    assert data.name == str(tmp_path / "x.npy")


def test_csv_without_header(tmp_path):
    path = write_csv(tmp_path, "1,10\n2,30\n\n4,20\n9,40\n")  # a blank line is skipped
    data = load_file(path, normalize="none")
    assert torch.equal(data.x, torch.from_numpy(ROWS).float())
    assert data.columns == ["x0", "x1"]


def test_csv_with_header_and_standard_normalisation_inverts(tmp_path):
    path = write_csv(tmp_path, "a, b\n1,10\n2,30\n4,20\n9,40\n")
    data = load_file(path)
    assert data.columns == ["a", "b"] and data.normalize == "standard"
    assert_round_trip(data, ROWS)


LABELLED = "x,label,y\n0.5,7,1\n1.5,3,2\n2.5,7,3\n3.5,5,4\n"


@pytest.mark.parametrize("label_column", ["label", "1", "-2"])
def test_label_column_by_name_or_index_makes_a_conditional_dataset(tmp_path, label_column):
    data = load_file(write_csv(tmp_path, LABELLED), label_column=label_column)
    assert data.class_names == ["3", "5", "7"]  # the file's values, as classes 0..K-1
    assert data.y.tolist() == [2, 0, 2, 1]
    assert [data.class_names[i] for i in data.y] == ["7", "3", "7", "5"]
    assert data.num_classes == 3 and data.columns == ["x", "y"]
    assert_round_trip(data, np.array([[0.5, 1], [1.5, 2], [2.5, 3], [3.5, 4]]))
    assert data.class_frequencies().tolist() == [0.25, 0.25, 0.5]


def test_label_column_in_npy_by_index(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.1, 4], [0.2, 4], [0.3, 0]]))
    data = load_file(tmp_path / "x.npy", label_column="1")
    assert data.class_names == ["0", "4"] and data.y.tolist() == [1, 1, 0]
    assert data.num_features == 1


def load_error(path, **settings) -> str:
    """The message of the GankitError that loading ``path`` raises: one line, naming the file."""
    with pytest.raises(GankitError) as info:
        load_file(path, **settings)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_missing_file(tmp_path):
    assert "not found" in load_error(tmp_path / "nope.csv")


def test_a_directory(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    assert "directory" in load_error(tmp_path / "dir.csv")


@pytest.mark.parametrize("name", ["data.txt", "data.parquet", "data"])
def test_unsupported_suffix(tmp_path, name):
    path = write_csv(tmp_path, "1,2\n", name)
    assert "unsupported file type" in load_error(path)


@pytest.mark.parametrize("text, expected", [
    ("", ["empty"]),
    ("\n \n", ["empty"]),
    ("a,b\n", ["header but no data rows"]),
    ("1,2\n3,x\n", ["line 2", "column 1", "'x'", "not a number"]),
    ("a,b\n1,2\n\n\n3,four\n", ["line 5", "column 'b'", "'four'"]),  # blank lines still count
    ("1,2\n3,\n", ["line 2", "column 1", "empty cell"]),
    ("1,2\n3,nan\n", ["line 2", "column 1", "nan", "not a finite number"]),
    ("1,2\n-inf,4\n", ["line 2", "column 0", "-inf", "not a finite number"]),
    ("1,2\n3,4,5\n", ["line 2", "3 cells", "expected 2"]),
    ("a,b\n1\n", ["line 2", "1 cell;", "expected 2"]),
    ("a,b\n1,2\n", ["holds 1 row", "at least 2 rows"]),
])
def test_bad_csv(tmp_path, text, expected):
    message = load_error(write_csv(tmp_path, text))
    for part in expected:
        assert part in message


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xff\xfe\x00\x81,1\n")
    assert "UTF-8" in load_error(path)


@pytest.mark.parametrize("array, expected", [
    (np.array([[1.0, np.nan]]), "row 0, column 1 is nan"),
    (np.array([[1.0, 2.0], [np.inf, 0.0]]), "row 1, column 0 is inf"),
    (np.zeros((2, 2, 2, 2)), "shape (2, 2, 2, 2)"),
    (np.zeros((0, 3)), "empty"),
    (np.array(["a", "b"]), "dtype"),
    (np.array([[1.0, 2.0]]), "holds 1 row; expected at least 2 rows"),
])
def test_bad_npy(tmp_path, array, expected):
    np.save(tmp_path / "x.npy", array)
    assert expected in load_error(tmp_path / "x.npy")


def test_a_text_file_named_npy(tmp_path):
    path = write_csv(tmp_path, "1,2\n", "x.npy")
    assert "not a .npy file" in load_error(path)


class Payload:
    """Unpickling this creates ``marker``: proof that a loader executed code from the file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_object_npy_is_refused_and_never_unpickled(tmp_path):
    path, marker = tmp_path / "evil.npy", tmp_path / "pwned"
    np.save(path, np.array([Payload(marker), 1.0], dtype=object), allow_pickle=True)
    assert "Python objects" in load_error(path)
    assert not marker.exists()
    # The payload is live: unpickling the same bytes would have run it.
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("bad", ["2.5", "-1"])
def test_label_column_with_a_non_integer_or_negative_value(tmp_path, bad):
    path = write_csv(tmp_path, f"x,label\n0.5,1\n1.5,{bad}\n")
    message = load_error(path, label_column="label")
    assert "'label'" in message and f"holds {bad}" in message and "integer class labels" in message


@pytest.mark.parametrize("label_column, expected", [
    ("lable", "'lable' not found; columns are x, label"),
    ("5", "out of range"),
])
def test_unknown_label_column(tmp_path, label_column, expected):
    path = write_csv(tmp_path, "x,label\n0.5,1\n1.5,0\n")
    assert expected in load_error(path, label_column=label_column)


def test_label_column_name_without_a_header(tmp_path):
    path = write_csv(tmp_path, "0.5,1\n1.5,0\n")
    assert "no header" in load_error(path, label_column="label")


def test_label_column_with_no_feature_beside_it(tmp_path):
    path = write_csv(tmp_path, "label\n1\n0\n")
    assert "only the label column" in load_error(path, label_column="label")


# --------------------------------------------------------------------------------------------- from_arrays, label_index


def test_from_arrays_standardises_and_inverts():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])  # the second column is constant
    data = from_arrays(x)
    assert data.x.shape == (3, 2) and data.y is None and data.num_classes == 0
    assert data.x[:, 0].tolist() == [-1.0, 0.0, 1.0]
    assert data.x[:, 1].tolist() == [0.0, 0.0, 0.0]  # a constant column keeps scale 1, not 0
    assert_round_trip(data, x)
    assert from_arrays(torch.arange(4.0)).x.shape == (4, 1)  # 1-D values become one column


def test_from_arrays_with_labels():
    data = from_arrays(np.zeros((4, 2)), y=np.array([0, 2, 2, 1]), normalize="none")
    assert data.y.dtype == torch.int64 and data.y.tolist() == [0, 2, 2, 1]
    assert data.class_names == ["0", "1", "2"] and data.num_classes == 3
    named = from_arrays(np.zeros((2, 1)), y=[0, 1], class_names=["cat", "dog"])
    assert named.class_names == ["cat", "dog"]
    assert from_arrays(np.zeros((2, 1)), y=np.array([1.0, 0.0])).y.tolist() == [1, 0]  # whole floats are fine


@pytest.mark.parametrize("x, y", [
    (np.zeros((0, 2)), None),
    (np.zeros((2, 2, 2, 2, 2)), None),  # rank 5: neither rows nor images
    (np.array([[1.0, np.nan]]), None),
    (np.zeros((3, 2)), [0, 1]),  # one label short
    (np.zeros((2, 2)), [0, -1]),
    (np.zeros((2, 2)), [0.0, 2.5]),  # never truncated to class 2
])
def test_from_arrays_refuses_bad_input(x, y):
    with pytest.raises(GankitError):
        from_arrays(x, y)


def test_label_index_by_name_then_by_index():
    names = ["3", "5", "7"]
    assert label_index(names, "7") == 2
    assert label_index(names, 7) == 2  # a name first: "7" is a class here
    assert label_index(names, "1") == 1 and label_index(names, 0) == 0
    assert label_index(["cat", "dog"], "dog") == 1 and label_index(["cat", "dog"], 1) == 1
    assert label_index(["T-shirt", "Sneaker"], "sneaker") == 1  # case does not matter where it is unambiguous


@pytest.mark.parametrize("names, label, expected", [
    (["3", "5", "7"], "9", "unknown label '9'; expected one of: 3, 5, 7"),
    (["3", "5", "7"], -1, "unknown label '-1'"),
    (["cat", "dog"], "cow", "unknown label 'cow'"),
    (["Cat", "cat"], "CAT", "unknown label 'CAT'"),  # two classes differ only by case: no guessing
    ([], 0, "no labels"),
])
def test_label_index_refuses_unknown_labels(names, label, expected):
    with pytest.raises(GankitError, match=expected):
        label_index(names, label)


def test_from_arrays_with_fewer_class_names_than_classes():
    with pytest.raises(GankitError, match="class_names: 2 names for labels up to 3; expected at least 4"):
        from_arrays(np.zeros((8, 2)), np.arange(8) % 4, class_names=["a", "b"])


def test_from_arrays_images_are_minmax_so_pixels_do_not_depend_on_the_batch():
    """Images from arrays map back to pixels by the data's range, as the built-in image sets do; with "standard"
    (the old default) gankit.sample_images stretched each batch by its own min and max."""
    images = np.random.default_rng(0).integers(0, 256, size=(20, 1, 8, 8)).astype(np.float32)
    data = from_arrays(images)
    assert data.normalize == "minmax" and data.x.min() >= -1 and data.x.max() <= 1
    assert from_arrays(images.reshape(20, -1)).normalize == "standard"  # rows stay standardised
