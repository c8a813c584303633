"""Semi-supervised data (gankit.data.semisup and the loaders' unlabelled samples): the balanced labelled subsets of
the built-in sets and their splits, the user's partly labelled CSV, .npy and image folders, every refusal (settings
and data), and a few steps of the ssgan game on each kind of the user's data."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import gankit
from gankit.config import DataConfig
from gankit.data import idx, load_data
from gankit.data.dataset import DATASETS
from gankit.data.semisup import UNLABELLED, kept_labels
from gankit.errors import GankitError

FASHION = all((idx.FASHION_DIR / name).is_file() for name in idx.FILES)
needs_fashion = pytest.mark.skipif(not FASHION, reason=f"Fashion-MNIST is not in {idx.FASHION_DIR}: apt-get "
                                   f"install dataset-fashion-mnist")
DIGITS_PER_CLASS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # sklearn's 1,797 digits
DIGITS_TRAIN = sum(round(2 * n / 3) for n in DIGITS_PER_CLASS)  # the stratified split's 2/3 of each class: 1,198


def error(config: DataConfig) -> str:
    """The one-line message of the GankitError that loading ``config`` raises."""
    with pytest.raises(GankitError) as info:
        load_data(config)
    message = str(info.value)
    assert "\n" not in message
    return message


def config_error(*overrides: str) -> str:
    with pytest.raises(GankitError) as info:
        gankit.load_config(None, list(overrides))
    return str(info.value)


def keys(x: torch.Tensor) -> list[bytes]:
    """Each sample's exact bytes: the same sample in the same units has the same key."""
    return [row.tobytes() for row in x.flatten(1).numpy()]


def assert_among(part: torch.Tensor, whole: torch.Tensor) -> None:
    assert set(keys(part)) <= set(keys(whole))


def per_class(y: torch.Tensor, k: int) -> list[int]:
    return torch.bincount(y, minlength=k).tolist()


@pytest.fixture
def no_cache(monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", "0")  # image folders are decoded, never written to the user's cache


# --------------------------------------------------------------------------------------------- the built-in sets


@needs_fashion
def test_fashion_mnist_keeps_ten_labels_of_each_class_and_tests_on_its_test_split():
    data = load_data(DataConfig(name="fashion-mnist", labels_per_class=10), seed=0)
    s = data.semisup
    assert data.is_semisup and data.y is None and data.x.shape == (60000, 1, 28, 28)
    assert s.class_names == idx.FASHION_CLASSES
    assert s.labelled_x.shape == (100, 1, 28, 28) and per_class(s.labelled_y, 10) == [10] * 10
    assert s.test_x.shape == (10000, 1, 28, 28) and per_class(s.test_y, 10) == [1000] * 10
    assert_among(s.labelled_x, data.x)
    # The test split in the training x's units: mapped back, the same pixels as the test split loaded on its own.
    test = load_data(DataConfig(name="fashion-mnist", split="test"))
    assert torch.equal(data.to_raw(s.test_x).round(), test.to_raw(test.x).round())
    assert torch.equal(s.test_y, test.y)
    assert data.scale.flatten().tolist() == [127.5] and s.labelled_x.min() >= -1 and s.labelled_x.max() <= 1


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(name="digits", labels_per_class=10), seed=0)


def test_digits_keeps_ten_labels_of_each_class_of_the_stratified_train_part(digits):
    from sklearn.datasets import load_digits

    s = digits.semisup
    assert digits.y is None and digits.x.shape == (DIGITS_TRAIN, 1, 8, 8) and DIGITS_TRAIN == 1198
    assert s.labelled_x.shape == (100, 1, 8, 8) and per_class(s.labelled_y, 10) == [10] * 10
    assert s.test_x.shape == (1797 - 1198, 1, 8, 8)
    assert per_class(s.test_y, 10) == [n - round(2 * n / 3) for n in DIGITS_PER_CLASS]
    assert_among(s.labelled_x, digits.x)
    # Mapped back by the training x's shift and scale, each labelled and test sample is a digit of its class.
    bunch = load_digits()
    by_pixels = {row.astype(np.float32).tobytes(): label for row, label in zip(bunch.data, bunch.target)}
    for x, y in ((s.labelled_x, s.labelled_y), (s.test_x, s.test_y)):
        pixels = digits.to_raw(x).round().flatten(1).numpy()
        assert [by_pixels[row.tobytes()] for row in pixels] == [int(s.class_names[k]) for k in y]


def test_the_labelled_samples_depend_on_the_seed_and_the_split_does_not(digits):
    again, other = (load_data(DataConfig(name="digits", labels_per_class=10), seed=seed) for seed in (0, 1))
    assert torch.equal(again.semisup.labelled_x, digits.semisup.labelled_x)
    assert not torch.equal(other.semisup.labelled_x, digits.semisup.labelled_x)
    assert per_class(other.semisup.labelled_y, 10) == [10] * 10
    assert len(set(keys(other.semisup.labelled_x)) & set(keys(digits.semisup.labelled_x))) < 50
    assert torch.equal(other.x, digits.x) and torch.equal(other.semisup.test_x, digits.semisup.test_x)


def test_image_size_and_channels_apply_to_the_labelled_and_test_samples_as_to_x(digits):
    data = load_data(DataConfig(name="digits", labels_per_class=10, image_size=16, channels=3), seed=0)
    s = data.semisup
    assert data.x.shape[1:] == s.labelled_x.shape[1:] == s.test_x.shape[1:] == (3, 16, 16)
    assert torch.equal(s.labelled_y, digits.semisup.labelled_y)
    assert_among(s.labelled_x, data.x)
    # The same test images as at 8 x 8 grey, resized: their means stay close (a bilinear resize keeps the mean).
    small, large = digits.to_raw(digits.semisup.test_x), data.to_raw(s.test_x)
    assert (small.mean((1, 2, 3)) - large[:, 0].mean((1, 2))).abs().max() < 0.5
    assert torch.equal(large[:, 0], large[:, 2])


def test_more_labels_per_class_than_a_class_has_is_an_error_naming_the_smallest(digits):
    message = error(DataConfig(name="digits", labels_per_class=500))
    assert message.startswith("data.labels_per_class = 500: data set 'digits': class '8' has only 116 labelled "
                              "training samples; expected data.labels_per_class <= 116")
    assert "short of 500: 0 (119), 1 (121)" in message and "and 4 more" in message
    assert len(load_data(DataConfig(name="digits", labels_per_class=116)).semisup.labelled_y) == 1160


def test_a_class_with_no_labelled_training_sample_is_an_error_naming_it():
    # The loaders name classes after labelled samples, but a split can leave one without (an idx folder's class
    # found only in its test split).
    config = DataConfig(name="file", path="x.csv", semisupervised=True)
    y = torch.tensor([0, 0, UNLABELLED, 2, 3])  # no sample of class 1
    with pytest.raises(GankitError) as info:
        kept_labels(y, ["a", "b", "c", "d"], config, seed=0)
    assert str(info.value) == ("data.semisupervised = true: data set 'x.csv': class 'b' has no labelled training "
                               "sample; expected at least 1 of each class (short: b (0))")
    assert kept_labels(torch.tensor([0, 0, UNLABELLED, 1, 2]), ["a", "c", "d"], config, seed=0).tolist() == [0, 1, 3, 4]


def test_data_that_is_neither_rows_nor_images_is_refused():
    message = error(DataConfig(name="sines", labels_per_class=2))
    assert message.startswith("data.labels_per_class = 2: data set 'sines' holds sequences; semi-supervised")


# --------------------------------------------------------------------------------------------- the user's CSV and .npy

PARTLY = "a,label,b\n0.5,7,1\n1.5,,2\n2.5,3,3\n3.5,-1,4\n4.5,7,5\n5.5, ,6\n"  # rows 1 and 5 empty, row 3 -1


def file_config(path, **settings) -> DataConfig:
    return DataConfig(name="file", path=str(path), label_column=settings.pop("label_column", "label"), **settings)


def raw_file(path, **settings):
    return DATASETS.get("file")(file_config(path, **settings), 0)


@pytest.mark.parametrize("marker", ["-1", "-1.0"])
def test_a_csv_marks_empty_labels_and_data_unlabelled_as_unlabelled(tmp_path, marker):
    path = tmp_path / "partly.csv"
    path.write_text(PARTLY)
    raw = raw_file(path, semisupervised=True, unlabelled=marker)
    assert raw.class_names == ["3", "7"] and raw.y.tolist() == [1, UNLABELLED, 0, UNLABELLED, 1, UNLABELLED]
    assert raw.columns == ["a", "b"] and raw.x[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    data = load_data(file_config(path, semisupervised=True, unlabelled=marker))
    s = data.semisup
    assert len(data) == 6 and data.y is None and s.class_names == ["3", "7"] and s.test_x is None
    assert s.labelled_y.tolist() == [1, 0, 1]
    assert data.to_raw(s.labelled_x)[:, 0].tolist() == pytest.approx([0.5, 2.5, 4.5])
    torch.testing.assert_close(s.labelled_x, data.x[[0, 2, 4]])  # labelled samples are among x, in x's units


def test_a_csv_marker_may_be_a_word(tmp_path):
    path = tmp_path / "partly.csv"
    path.write_text("a,label\n1,0\n2,?\n3,1\n4,nan\n")
    assert raw_file(path, semisupervised=True, unlabelled="?").y.tolist() == [0, UNLABELLED, 1, UNLABELLED]


def test_without_semisupervised_an_empty_or_negative_label_stays_an_error(tmp_path):
    path = tmp_path / "partly.csv"
    path.write_text(PARTLY)
    message = error(file_config(path))
    assert message == (f"{path}: line 3, label column 'label': an empty cell is not a class label; expected "
                       f"integer class labels >= 0 (a partly labelled file: data.semisupervised = true)")
    path.write_text("a,label\n1,0\n2,-1\n3,1\n")
    assert "holds -1 in row 1; expected integer class labels >= 0 (a partly labelled file: data.semisupervised = " \
           "true, and data.unlabelled = \"-1\" if -1 marks unlabelled rows)" in error(file_config(path))
    assert "set data.unlabelled = \"-1\" if -1 marks" in error(file_config(path, semisupervised=True))


def test_an_npy_marks_nan_and_data_unlabelled_labels_as_unlabelled(tmp_path):
    path = tmp_path / "partly.npy"
    np.save(path, np.array([[0.1, 4], [0.2, np.nan], [0.3, 0], [0.4, -1], [0.5, 4]]))
    raw = raw_file(path, label_column="1", semisupervised=True, unlabelled="-1")
    assert raw.class_names == ["0", "4"] and raw.y.tolist() == [1, UNLABELLED, 0, UNLABELLED, 1]
    assert "holds -1 in row 3" in error(file_config(path, label_column="1", semisupervised=True))
    assert "row 1, column 1 is nan; expected finite numbers" in error(file_config(path, label_column="1"))
    message = error(file_config(path, label_column="1", semisupervised=True, unlabelled="?"))
    assert message == f"{path}: data.unlabelled = '?': an .npy holds numbers; expected a number such as -1 (NaN " \
                      f"labels are unlabelled too)"


def test_labels_per_class_draws_from_the_labelled_rows_of_the_users_data(tmp_path):
    path = tmp_path / "partly.csv"
    path.write_text("a,label\n" + "".join(f"{i},{'' if i % 3 else i % 2}\n" for i in range(60)))  # 10 of each
    data = load_data(file_config(path, semisupervised=True, labels_per_class=4), seed=5)
    assert len(data) == 60 and per_class(data.semisup.labelled_y, 2) == [4, 4]
    rows = data.to_raw(data.semisup.labelled_x)[:, 0].round().long()
    assert all(r % 3 == 0 and r % 2 == y for r, y in zip(rows.tolist(), data.semisup.labelled_y.tolist()))
    message = error(file_config(path, semisupervised=True, labels_per_class=11))
    assert message == (f"data.labels_per_class = 11: data set '{path}': class '0' has only 10 labelled training "
                       f"samples; expected data.labels_per_class <= 10, the fewest any class has (short of 11: 0 (10), "
                       f"1 (10))")


@pytest.mark.parametrize("text, expected", [
    ("a,b\n1,2\n3,4\n", "has no class labels; label some of it (data.label_column of a CSV or .npy, class "
                        "sub-folders of images)"),
    ("a,label\n1,\n3,\n", "has no labelled sample; expected labelled samples of at least 2 classes"),
    ("a,label\n1,4\n3,\n5,4\n", "has labelled samples of one class only ('4'); expected labelled samples of at "
                                "least 2 classes"),
])
def test_semisupervised_data_needs_labelled_samples_of_two_classes(tmp_path, text, expected):
    path = tmp_path / "data.csv"
    path.write_text(text)
    label_column = "label" if "label" in text else ""
    message = error(file_config(path, label_column=label_column, semisupervised=True))
    assert message == f"data.semisupervised = true: data set '{path}' {expected}"


def test_every_sample_labelled_trains_on_them_all_with_a_warning(tmp_path, capsys):
    path = tmp_path / "full.csv"
    path.write_text("a,label\n1,0\n2,1\n3,0\n4,1\n")
    data = load_data(file_config(path, semisupervised=True))
    assert data.semisup.labelled_y.tolist() == [0, 1, 0, 1] and len(data) == 4
    assert "warning: data.semisupervised = true: every one of the 4 samples" in capsys.readouterr().err
    load_data(file_config(path, semisupervised=True, labels_per_class=1))
    assert capsys.readouterr().err == ""  # keeping a few labels of a labelled set is what labels_per_class is for


# --------------------------------------------------------------------------------------------- the user's images


def image_folder(root, counts: dict[str, int]):
    """PNGs of 8 x 8 grey pixels, ``counts[name]`` of them in sub-folder ``name``; each image's pixels are its
    number (0, 1, ...) across the whole folder, so it can be told apart once loaded."""
    from PIL import Image

    number = 0
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((8, 8), 10 * number, dtype=np.uint8)).save(root / name / f"{i}.png")
            number += 1
    return root


def test_an_image_folders_unlabelled_sub_folder_holds_the_unlabelled_images(tmp_path, no_cache):
    root = image_folder(tmp_path / "photos", {"cat": 2, "dog": 3, "unlabelled": 4})
    raw = DATASETS.get("images")(DataConfig(name="images", path=str(root), semisupervised=True), 0)
    assert raw.class_names == ["cat", "dog"] and raw.y.tolist() == [0, 0, 1, 1, 1] + [UNLABELLED] * 4
    data = load_data(DataConfig(name="images", path=str(root), semisupervised=True, image_size=4))
    s = data.semisup
    assert len(data) == 9 and s.class_names == ["cat", "dog"] and s.labelled_y.tolist() == [0, 0, 1, 1, 1]
    assert s.labelled_x.shape == (5, 1, 4, 4) and s.test_x is None
    assert data.to_raw(s.labelled_x)[:, 0, 0, 0].round().tolist() == [0, 10, 20, 30, 40]
    plain = DATASETS.get("images")(DataConfig(name="images", path=str(root)), 0)  # not semi-supervised: a class
    assert plain.class_names == ["cat", "dog", "unlabelled"] and plain.y.tolist()[-4:] == [2] * 4


def test_an_image_folder_of_unlabelled_images_alone_is_refused(tmp_path, no_cache):
    root = image_folder(tmp_path / "photos", {"unlabelled": 3})
    message = error(DataConfig(name="images", path=str(root), semisupervised=True))
    assert message == f"data.semisupervised = true: data set '{root}' has no labelled sample; expected labelled " \
                      f"samples of at least 2 classes"


# --------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("overrides, expected", [
    (["data.labels_per_class=10", "data.normal_class=3"],
     "data.normal_class = '3' cannot be combined with data.labels_per_class (semi-supervised data)"),
    (["data.semisupervised=true", "data.normal_holdout=0.1"],
     "data.normal_holdout = 0.1 cannot be combined with data.semisupervised"),
    (["data.labels_per_class=10", "data.holdout=0.2"], "data.holdout = 0.2 cannot be combined"),
    (["data.labels_per_class=10", "data.split=test"], "data.split = 'test': with data.labels_per_class set"),
    (["data.unlabelled=-1"], "data.unlabelled = '-1' marks unlabelled rows of semi-supervised data; set "
                             "data.semisupervised = true too"),
    (["data.labels_per_class=-1"], "data.labels_per_class"),
    (["game.name=ssgan", "data.name=digits"], 'game.name = "ssgan" learns from a few labelled samples'),
])
def test_settings_that_semi_supervised_data_refuses(overrides, expected):
    assert expected in config_error(*overrides)


def test_settings_that_semi_supervised_data_takes():
    config = gankit.load_config(None, ["game.name=ssgan", "data.semisupervised=true", "data.unlabelled=-1",
                                       "data.labels_per_class=5"])
    assert config.data.semisupervised and config.data.unlabelled == "-1" and config.data.labels_per_class == 5


# --------------------------------------------------------------------------------------------- a few steps of ssgan

TINY = ["game.name=ssgan", "data.semisupervised=true", "train.steps=4", "train.checkpoint_every=4",
        "train.log_every=2", "data.batch_size=16", "model.z_dim=8"]


def test_ssgan_trains_on_a_csv_with_empty_labels(tmp_path):
    from sklearn.datasets import load_wine

    from gankit.product_loader import load_classifier

    wine = load_wine()
    labels = np.array([str(k) for k in wine.target], dtype=object)
    for k in range(3):
        labels[np.flatnonzero(wine.target == k)[4:]] = ""  # 4 labels of each class, 166 rows unlabelled
    path = tmp_path / "wine.csv"
    lines = [",".join([*wine.feature_names, "label"])]
    lines += [",".join([*(f"{v:g}" for v in row), label]) for row, label in zip(wine.data, labels)]
    path.write_text("\n".join(lines) + "\n")
    config = gankit.load_config(None, [*TINY, "data.name=file", f"data.path={path}", "data.label_column=label",
                                       "game.d_widths=[32,16]", "model.g_hidden=32"])
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False)
    classifier, meta, shift, scale = load_classifier(result.run_dir)
    assert meta["model"]["class_names"] == ["0", "1", "2"]
    with torch.no_grad():
        p = classifier((torch.from_numpy(wine.data[:5]).float() - shift) / scale)
    assert p.shape == (5, 3) and torch.allclose(p.sum(1), torch.ones(5))


def test_ssgan_trains_on_an_image_folder_with_an_unlabelled_sub_folder(tmp_path, no_cache):
    from gankit.product_loader import load_classifier

    root = image_folder(tmp_path / "photos", {"dark": 3, "light": 3, "unlabelled": 10})
    config = gankit.load_config(None, [*TINY, "data.name=images", f"data.path={root}", "model.family=dcgan",
                                       "model.d_hidden=8", "model.g_hidden=8"])
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False)
    classifier, meta, _, _ = load_classifier(result.run_dir)
    assert meta["model"]["class_names"] == ["dark", "light"]
    assert re.fullmatch(r"D(_ema)?", meta["classifier"])
