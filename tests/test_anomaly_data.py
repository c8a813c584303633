"""Anomaly detection's data (gankit.data.anomaly) and the inputs ``gankit score`` reads (gankit.anomaly_inputs):
the fixed splits of each kind of data, the held-out share, normalisation by the training samples alone, and every
way a setting or an input can be wrong."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from gankit.anomaly_inputs import read_inputs
from gankit.config import Config, DataConfig, apply_overrides
from gankit.data import idx, load_data
from gankit.errors import GankitError

FASHION = all((idx.FASHION_DIR / name).is_file() for name in idx.FILES)
needs_fashion = pytest.mark.skipif(not FASHION, reason=f"Fashion-MNIST is not in {idx.FASHION_DIR}: apt-get "
                                   f"install dataset-fashion-mnist")
DIGITS_PER_CLASS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # sklearn's 1,797 digits


def error(config: DataConfig) -> str:
    with pytest.raises(GankitError) as info:
        load_data(config)
    message = str(info.value)
    assert "\n" not in message
    return message


def raw_of(data, x: torch.Tensor) -> torch.Tensor:
    """Samples in the networks' units back in the data's own units, rounded (pixels and digits are integers)."""
    return data.to_raw(x).round()


def rows_as_tuples(x: torch.Tensor) -> list[tuple]:
    return [tuple(row) for row in x.flatten(1).tolist()]


@pytest.fixture
def no_cache(monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", "0")  # image folders are decoded, never written to the user's cache


# --------------------------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture(scope="module")
def sneakers():
    return load_data(DataConfig(name="fashion-mnist", normal_class="Sneaker", normal_holdout=0.1), seed=3)


@needs_fashion
def test_fashion_mnist_trains_on_the_normal_class_of_the_train_split_and_tests_on_the_test_split(sneakers):
    data, a = sneakers, sneakers.anomaly
    assert data.is_anomaly and data.y is None and data.class_names == ["Sneaker"] and a.normal == "Sneaker"
    assert a.class_names == idx.FASHION_CLASSES
    assert data.x.shape == (5400, 1, 28, 28) and a.held.shape == (600, 1, 28, 28)
    assert a.test_x.shape == (10000, 1, 28, 28)
    assert a.test_classes.tolist() == np.asarray(idx.read_split(idx.FASHION_DIR, "test", "")[1], np.int64).tolist()
    assert torch.equal(a.test_y, (a.test_classes != 7).long()) and int(a.test_y.sum()) == 9000
    train, train_y, _ = idx.read_split(idx.FASHION_DIR, "train", "")
    test, _, _ = idx.read_split(idx.FASHION_DIR, "test", "")
    # every training sneaker once, in x or held; the networks' units are 2p - 1 (minmax over 0..255)
    sneaker_pixels = torch.from_numpy(train[train_y == 7].copy()).float()
    seen = torch.cat([raw_of(data, data.x), raw_of(data, a.held)])[:, 0]
    assert sorted(rows_as_tuples(seen)) == sorted(rows_as_tuples(sneaker_pixels))
    assert torch.equal(raw_of(data, a.test_x)[:, 0], torch.from_numpy(test.copy()).float())
    torch.testing.assert_close(a.test_x[:5], torch.from_numpy(test[:5, None].copy()).float() / 127.5 - 1)


@needs_fashion
def test_fashion_mnist_normal_class_by_index_is_the_same_split(sneakers):
    data = load_data(DataConfig(name="fashion-mnist", normal_class="7", normal_holdout=0.1), seed=0)
    assert torch.equal(data.x, sneakers.x) and torch.equal(data.anomaly.held, sneakers.anomaly.held)


def write_idx(folder, train, train_y, test, test_y):
    """An MNIST-family IDX folder: images [N, H, W] uint8 and labels [N] uint8 of a train and a test split."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, x, y in (("train", train, train_y), ("t10k", test, test_y)):
        for kind, array in (("images-idx3-ubyte", x), ("labels-idx1-ubyte", y)):
            header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (folder / f"{prefix}-{kind}").write_bytes(header + array.astype(np.uint8).tobytes())
    return folder


def test_an_idx_folder_uses_its_own_train_and_test_splits(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (40, 6, 6)), rng.integers(0, 256, (12, 6, 6))
    train_y, test_y = np.arange(40) % 4, np.arange(12) % 3  # the test split lacks class 3: still 4 classes
    folder = write_idx(tmp_path / "idx", train, train_y, test, test_y)
    data = load_data(DataConfig(name="idx", path=str(folder), normal_class="2", normal_holdout=0.2))
    a = data.anomaly
    assert len(data) == 8 and len(a.held) == 2 and a.class_names == ["0", "1", "2", "3"] and a.normal == "2"
    assert torch.equal(raw_of(data, a.test_x)[:, 0], torch.from_numpy(test).float())
    assert a.test_y.tolist() == [int(k != 2) for k in test_y]
    seen = torch.cat([raw_of(data, data.x), raw_of(data, a.held)])[:, 0]
    assert sorted(rows_as_tuples(seen)) == sorted(rows_as_tuples(torch.from_numpy(train[train_y == 2]).float()))
    message = error(DataConfig(name="idx", path=str(folder), normal_class="2", split="test"))
    assert message.startswith("data.split = 'test': anomaly detection and semi-supervised data train on the train")
    assert 'expected "train"' in message


# --------------------------------------------------------------------------------------------- digits


def test_digits_split_two_thirds_of_each_class_to_train_and_a_third_to_test():
    from sklearn.datasets import load_digits

    data = load_data(DataConfig(name="digits", normal_class="3", normal_holdout=0.1), seed=0)
    a = data.anomaly
    train_part = [int(round(2 / 3 * n)) for n in DIGITS_PER_CLASS]
    assert len(data) + len(a.held) == train_part[3] == 122 and len(a.held) == 12  # round(0.1 * 122)
    assert len(a.test_x) == 599 and a.test_classes.bincount().tolist() == [n - t for n, t in
                                                                           zip(DIGITS_PER_CLASS, train_part)]
    assert int((a.test_y == 0).sum()) == 61 and torch.equal(a.test_y, (a.test_classes != 3).long())
    assert data.shape == (1, 8, 8) and data.normalize == "minmax" and a.class_names == [str(k) for k in range(10)]
    bunch = load_digits()
    threes = torch.from_numpy(bunch.images[bunch.target == 3]).float()  # [183, 8, 8]
    seen = torch.cat([raw_of(data, data.x), raw_of(data, a.held), raw_of(data, a.test_x[a.test_y == 0])])[:, 0]
    assert sorted(rows_as_tuples(seen)) == sorted(rows_as_tuples(threes))  # each 3 exactly once
    others = raw_of(data, a.test_x[a.test_y == 1])[:, 0]
    assert set(rows_as_tuples(others)) <= set(rows_as_tuples(torch.from_numpy(bunch.images[bunch.target != 3]).float()))


def test_the_split_does_not_depend_on_the_seed():
    for config in (DataConfig(name="digits", normal_class="0", normal_holdout=0.2),
                   DataConfig(name="breast-cancer", normal_class="benign", normal_holdout=0.1)):
        one, other = load_data(config, seed=0), load_data(config, seed=17)
        for a, b in ((one.x, other.x), (one.anomaly.held, other.anomaly.held),
                     (one.anomaly.test_x, other.anomaly.test_x), (one.anomaly.test_y, other.anomaly.test_y)):
            assert torch.equal(a, b)


def test_the_held_share_is_the_rounded_share_of_the_normal_training_samples():
    everything = None
    for share in (0.0, 0.05, 0.1, 0.5, 0.85):
        data = load_data(DataConfig(name="digits", normal_class="8", normal_holdout=share))
        held = len(data.anomaly.held)
        assert held == int(round(share * 116)) and len(data) == 116 - held  # 116 = round(2/3 * 174) eights
        assert data.anomaly.held.shape == (held, 1, 8, 8) and len(data.anomaly.test_x) == 599
        seen = sorted(rows_as_tuples(torch.cat([raw_of(data, data.x), raw_of(data, data.anomaly.held)])))
        everything = everything or seen  # share 0: all 116 train; every share splits the same 116
        assert seen == everything


# --------------------------------------------------------------------------------------------- breast cancer


def test_breast_cancer_is_rows_with_60_percent_of_benign_to_train_and_the_rest_to_test():
    from sklearn.datasets import load_breast_cancer

    data = load_data(DataConfig(name="breast-cancer", normal_class="benign", normal_holdout=0.1))
    a = data.anomaly
    assert len(data) + len(a.held) == 214 and len(a.held) == 21  # round(0.6 * 357), round(0.1 * 214)
    assert len(a.test_x) == 355 and a.test_classes.bincount().tolist() == [212, 143]  # malignant = 0, benign = 1
    assert int(a.test_y.sum()) == 212 and torch.equal(a.test_y, (a.test_classes == 0).long())
    assert data.shape == (30,) and data.normalize == "standard" and not data.is_table and data.y is None
    assert a.class_names == ["malignant", "benign"] and data.class_names == ["benign"]
    bunch = load_breast_cancer()
    assert data.columns == list(bunch.feature_names)
    rows = torch.from_numpy(bunch.data).float()
    seen = torch.cat([data.to_raw(data.x), data.to_raw(a.held), data.to_raw(a.test_x)])
    # each of the 569 rows once: match every row to its nearest source row
    nearest = torch.cdist(seen.double(), rows.double()).argmin(1)
    assert sorted(nearest.tolist()) == list(range(569))
    torch.testing.assert_close(seen, rows[nearest], rtol=1e-5, atol=1e-3)
    assert (torch.from_numpy(bunch.target)[nearest[:len(data) + len(a.held)]] == 1).all()  # training is benign


def test_normalisation_comes_from_the_training_rows_alone():
    from sklearn.datasets import load_breast_cancer

    data = load_data(DataConfig(name="breast-cancer", normal_class="benign", normal_holdout=0.1))
    train = data.to_raw(data.x)
    torch.testing.assert_close(data.shift, train.mean(0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(data.scale, train.std(0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(data.x.mean(0), torch.zeros(30), rtol=0, atol=1e-4)
    malignant = torch.from_numpy(load_breast_cancer().data[load_breast_cancer().target == 0]).float()
    test = data.to_raw(data.anomaly.test_x[data.anomaly.test_y == 1])
    torch.testing.assert_close(test.mean(0), malignant.mean(0), rtol=1e-4, atol=1e-3)
    assert data.anomaly.test_x[data.anomaly.test_y == 1].mean() > 0.5  # malignant cells are larger than benign


def test_minmax_bounds_are_the_training_rows_so_anomalies_fall_outside(tmp_path):
    rows = [[float(i % 7), float(i % 5), 0] for i in range(60)] + [[50.0 + i, -30.0, 1] for i in range(30)]
    path = tmp_path / "parts.csv"
    path.write_text("a,b,label\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n")
    data = load_data(DataConfig(name="file", path=str(path), label_column="label", normal_class="0",
                                normal_holdout=0.25, normalize="minmax"))
    a = data.anomaly
    assert len(data) == 30 and len(a.held) == 10 and len(a.test_x) == 20 + 10  # 40 of 60 normal, 20 of 30 anomalous
    assert data.x.min() >= -1 and data.x.max() <= 1 and data.columns == ["a", "b"]
    assert (a.test_x[a.test_y == 1, 0] > 10).all() and (a.test_x[a.test_y == 1, 1] < -10).all()
    assert a.held.abs().max() <= 1 + 1e-6  # normal rows share the training rows' range


# --------------------------------------------------------------------------------------------- unlabelled data


def test_unlabelled_rows_hold_out_the_last_share_of_a_fixed_permutation(tmp_path):
    values = np.arange(200, dtype=np.float64).reshape(100, 2)
    np.save(tmp_path / "normal.npy", values)
    config = DataConfig(name="file", path=str(tmp_path / "normal.npy"), normal_holdout=0.25)
    data, again = load_data(config, seed=0), load_data(config, seed=9)
    a = data.anomaly
    assert len(data) == 75 and a.held.shape == (25, 2) and a.test_x is None and a.test_y is None
    assert a.test_classes is None and a.normal == "" and a.class_names == [] and data.class_names == []
    seen = torch.cat([data.to_raw(data.x), data.to_raw(a.held)]).round()
    assert sorted(rows_as_tuples(seen)) == sorted(rows_as_tuples(torch.from_numpy(values).float()))
    first = data.to_raw(data.x)[:, 0].round()
    assert (first[1:] > first[:-1]).all()  # the training rows keep the file's order
    assert torch.equal(data.x, again.x) and torch.equal(a.held, again.anomaly.held)
    torch.testing.assert_close(data.shift, data.to_raw(data.x).mean(0))  # standardised by the 75 alone


def write_images(folder, count: int, side: int = 8, start: int = 0, mode: str = "L"):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        value = 10 * (start + i)
        pixels = np.full((side, side) + ((3,) if mode == "RGB" else ()), value, np.uint8)
        Image.fromarray(pixels, mode).save(folder / f"{start + i:03d}.png")


def test_an_unlabelled_image_folder_with_image_size_resizes_the_held_images_too(tmp_path, no_cache):
    write_images(tmp_path / "parts", 10, side=12)
    data = load_data(DataConfig(name="images", path=str(tmp_path / "parts"), normal_holdout=0.2, image_size=6))
    assert data.x.shape == (8, 1, 6, 6) and data.anomaly.held.shape == (2, 1, 6, 6) and data.anomaly.test_x is None
    levels = sorted(set(torch.cat([raw_of(data, data.x), raw_of(data, data.anomaly.held)]).flatten().tolist()))
    assert levels == [10.0 * i for i in range(10)]


def test_an_image_folder_of_classes_is_split_stratified(tmp_path, no_cache):
    write_images(tmp_path / "photos" / "good", 9)
    write_images(tmp_path / "photos" / "scratched", 6, start=10)
    data = load_data(DataConfig(name="images", path=str(tmp_path / "photos"), normal_class="good",
                                normal_holdout=0.2))
    a = data.anomaly
    assert len(data) + len(a.held) == 6 and len(a.held) == 1 and len(a.test_x) == 3 + 2
    assert a.class_names == ["good", "scratched"] and a.test_y.tolist().count(1) == 2
    assert set(raw_of(data, a.test_x[a.test_y == 1]).flatten().tolist()) <= {10.0 * i for i in range(10, 16)}


# --------------------------------------------------------------------------------------------- errors


def test_each_mistake_is_refused_on_one_line(tmp_path):
    assert "has no class labels" in error(DataConfig(name="ring8", n=500, normal_class="1"))
    message = error(DataConfig(name="digits", normal_class="eleven"))
    assert message.startswith("data.normal_class = 'eleven': not a class of 'digits'; expected one of: 0, 1, 2")
    assert "or an index 0..9" in message
    message = error(DataConfig(name="digits", normal_holdout=0.1))
    assert message.startswith("data.normal_holdout = 0.1: data set 'digits' is labelled; set data.normal_class")
    assert "set data.normal_class to the normal class, one of: malignant, benign" in error(
        DataConfig(name="breast-cancer", normal_holdout=0.1))
    assert "holds a table of mixed columns" in error(DataConfig(name="wine", normal_class="class_0"))
    assert "holds sequences" in error(DataConfig(name="sines", normal_holdout=0.1))
    np.save(tmp_path / "one.npy", np.c_[np.arange(8.0), np.zeros(8)])
    message = error(DataConfig(name="file", path=str(tmp_path / "one.npy"), label_column="1", normal_class="0"))
    assert "has one class (0); expected at least 2" in message
    np.save(tmp_path / "few.npy", np.arange(6.0))
    message = error(DataConfig(name="file", path=str(tmp_path / "few.npy"), normal_holdout=0.05))
    assert "holds out 0 and leaves 6 to train on; expected at least 1 held out" in message
    message = error(DataConfig(name="file", path=str(tmp_path / "few.npy"), normal_holdout=0.8))
    assert "holds out 5 and leaves 1 to train on" in message


@pytest.mark.parametrize("setting, expected", [
    ("data.normal_holdout=0.9", "data.normal_holdout = 0.9: expected a share in [0, 0.9), e.g. 0.1"),
    ("data.normal_holdout=-0.1", "data.normal_holdout = -0.1: expected a share in [0, 0.9)"),
])
def test_config_refuses_a_share_outside_0_to_0_9(setting, expected):
    with pytest.raises(GankitError) as info:
        apply_overrides(Config(), [setting])
    assert str(info.value).startswith(f"--set: {expected}")


def test_config_reads_the_normal_class_as_text_and_refuses_what_the_split_replaces():
    config = apply_overrides(Config(), ["data.name=fashion-mnist", "data.normal_class=3", "data.normal_holdout=0.1"])
    assert config.data.normal_class == "3" and config.data.normal_holdout == 0.1
    with pytest.raises(GankitError, match=r"data\.split = 'test': with data\.normal_class set.*expected \"train\""):
        apply_overrides(config, ["data.split=test"])
    with pytest.raises(GankitError, match=r"data\.holdout = 0\.2 .*cannot be combined with data\.normal_class"):
        apply_overrides(config, ["data.holdout=0.2"])
    assert apply_overrides(Config(), ["data.split=test", "data.holdout=0.2"]).data.holdout == 0.2  # off: no rule


# --------------------------------------------------------------------------------------------- read_inputs


def meta(shape, normalize="minmax", columns=()):
    return {"model": {"shape": list(shape)}, "data": {"normalize": normalize, "columns": list(columns)}}


def refused(path, meta_, shift=0.0, scale=1.0) -> str:
    with pytest.raises(GankitError) as info:
        read_inputs(path, meta_, torch.tensor(shift), torch.tensor(scale))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_an_image_folder_is_read_in_file_name_order_as_the_runs_channels_and_size(tmp_path):
    from PIL import Image

    folder = tmp_path / "inputs"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(folder / "b.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "a.png")  # resized to the run's 8x8
    Image.fromarray(np.full((8, 12, 3), 51, np.uint8)).save(folder / "c.jpeg")  # RGB, wide: centre square, grey
    x, names = read_inputs(folder, meta([1, 8, 8]), torch.full((1, 1, 1), 8.0), torch.full((1, 1, 1), 8.0))
    assert names == ["a.png", "b.png", "c.jpeg"] and x.shape == (3, 1, 8, 8) and x.dtype == torch.float32
    assert (x[0] == -1).all() and (x[1] == 1).all()
    torch.testing.assert_close(x[2], torch.full((1, 8, 8), 51 / 127.5 - 1), atol=2 / 255, rtol=0)
    rgb, _ = read_inputs(folder, meta([3, 8, 8]), torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
    assert rgb.shape == (3, 3, 8, 8) and (rgb[1] == 1).all()


def test_image_folder_problems(tmp_path):
    from PIL import Image

    (tmp_path / "empty").mkdir()
    assert "no images found" in refused(tmp_path / "empty", meta([1, 8, 8]))
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 10), np.uint8)).save(folder / "wide.png")
    message = refused(folder, meta([1, 8, 6]))  # a run on 6x8 (width x height) images: no resizing
    assert message.endswith("wide.png: is 10x8 pixels; this run's images are 6x8 (width x height)")
    (folder / "broken.png").write_bytes(b"not a png at all")
    assert "broken.png: cannot be decoded as an image" in refused(folder, meta([1, 8, 8]))
    assert "this run scores rows of 4 numbers" in refused(folder, meta([4], "standard"))
    assert "data.normalize is 'standard'" in refused(folder, meta([1, 8, 8], "standard"))


def test_an_npy_of_images_is_pixels_as_apply_and_serve_take_them(tmp_path):
    grey = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)  # [N, H, W] for a one-channel run
    np.save(tmp_path / "grey.npy", grey)
    x, names = read_inputs(tmp_path / "grey.npy", meta([1, 4, 4]), torch.full((1, 1, 1), 8.0),
                           torch.full((1, 1, 1), 8.0))
    assert names == ["0", "1"] and x.shape == (2, 1, 4, 4)
    torch.testing.assert_close(x[:, 0], torch.from_numpy(grey) * 2 - 1)  # 2p - 1, whatever the data's own units
    np.save(tmp_path / "pixels.npy", np.full((3, 1, 4, 4), 255, np.uint8))
    x, _ = read_inputs(tmp_path / "pixels.npy", meta([1, 4, 4]), torch.full((1, 1, 1), 8.0),
                       torch.full((1, 1, 1), 8.0))
    assert (x == 1).all()  # white
    assert "has shape (2, 4, 4); this run scores images of [3, 4, 4]" in refused(tmp_path / "grey.npy",
                                                                                  meta([3, 4, 4]))
    np.save(tmp_path / "nan.npy", np.full((1, 1, 4, 4), np.nan, np.float32))
    assert "image 0 holds nan; expected pixels in [0, 1]" in refused(tmp_path / "nan.npy", meta([1, 4, 4]))
    np.save(tmp_path / "big.npy", np.full((1, 1, 4, 4), 16.0, np.float32))
    assert "image 0 holds 16.0; expected pixels in [0, 1]" in refused(tmp_path / "big.npy", meta([1, 4, 4]))
    assert "data.normalize is 'none'" in refused(tmp_path / "pixels.npy", meta([1, 4, 4], "none"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "not a valid .npy file of numbers" in refused(tmp_path / "objects.npy", meta([1, 4, 4]))


def test_rows_from_an_npy_and_a_csv_match_the_datasets_own_test_rows(tmp_path):
    data = load_data(DataConfig(name="breast-cancer", normal_class="benign", normal_holdout=0.1))
    rows = data.to_raw(data.anomaly.test_x[:20]).double().numpy()
    m = meta([30], "standard", data.columns)
    np.save(tmp_path / "rows.npy", rows)
    x, names = read_inputs(tmp_path / "rows.npy", m, data.shift, data.scale)
    torch.testing.assert_close(x, data.anomaly.test_x[:20], rtol=1e-4, atol=1e-4)
    assert names == [str(i) for i in range(20)]
    # a CSV with a header in another order and an extra column: the run's columns, by name
    header = ["diagnosis"] + data.columns[::-1]
    lines = [",".join(header)] + [",".join(["1"] + [repr(float(v)) for v in row[::-1]]) for row in rows]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    x, _ = read_inputs(tmp_path / "rows.csv", m, data.shift, data.scale)
    torch.testing.assert_close(x, data.anomaly.test_x[:20], rtol=1e-4, atol=1e-4)
    (tmp_path / "plain.csv").write_text("\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    x, names = read_inputs(tmp_path / "plain.csv", m, data.shift, data.scale)
    torch.testing.assert_close(x, data.anomaly.test_x[:20], rtol=1e-4, atol=1e-4)
    assert len(names) == 20 and x.dtype == torch.float32


def test_row_input_problems(tmp_path):
    m = meta([3], "standard", ["a", "b", "c"])
    (tmp_path / "two.csv").write_text("1,2\n3,4\n")
    assert refused(tmp_path / "two.csv", m).endswith("two.csv: has 2 columns; this run scores rows of 3 numbers "
                                                     "(a, b, c)")
    (tmp_path / "word.csv").write_text("a,b,c\n1,x,3\n")
    assert "line 2, column 'b': 'x' is not a number" in refused(tmp_path / "word.csv", m)
    (tmp_path / "empty.csv").write_text("\n")
    assert "empty.csv: is empty" in refused(tmp_path / "empty.csv", m)
    (tmp_path / "inf.csv").write_text("1,2,inf\n")
    assert "is not a finite number" in refused(tmp_path / "inf.csv", m)
    np.save(tmp_path / "wide.npy", np.zeros((4, 5)))
    assert "has shape (4, 5); this run scores rows of 3 numbers: expected [N, 3]" in refused(tmp_path / "wide.npy", m)
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan, 2.0]]))
    assert "row 0, column 1 is nan; expected finite numbers" in refused(tmp_path / "nan.npy", m)
    assert "this run scores images of [1, 4, 4]" in refused(tmp_path / "two.csv", meta([1, 4, 4]))
    assert "not found" in refused(tmp_path / "missing.csv", m)
    (tmp_path / "rows.txt").write_text("1,2,3\n")
    assert "unsupported input '.txt'" in refused(tmp_path / "rows.txt", m)
