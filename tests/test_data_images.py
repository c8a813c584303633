"""Image data: IDX files (Fashion-MNIST and the MNIST family), folders of PNG/JPEG images, and the
size and channel options every image set gets."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import DATASETS, Dataset, load_data
from gankit.data import idx, images
from gankit.data.dataset import RawData
from gankit.errors import GankitError


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Each test gets its own, empty image cache: the user's ~/.cache is never touched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("GANKIT_CACHE", raising=False)
    return tmp_path / "xdg-cache" / "gankit"


def load(name: str, path="", **settings) -> Dataset:
    return load_data(DataConfig(name=name, path=str(path), **settings))


def load_error(name: str, path="", **settings) -> str:
    """The message of the GankitError that loading raises: always one line."""
    with pytest.raises(GankitError) as info:
        load(name, path, **settings)
    message = str(info.value)
    assert "\n" not in message
    return message


def raw_values(data: Dataset) -> torch.Tensor:
    """The data in its own units (grey levels 0..255), rounded off float error."""
    return data.to_raw(data.x).round()


# --------------------------------------------------------------------------------------------- IDX files

CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B, np.dtype("i4"): 0x0C,
         np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: magic (0, 0, type code, ndim), big-endian uint32 sizes, big-endian values."""
    header = bytes([0, 0, CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array: np.ndarray, gz: bool = False):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("array", [
    np.arange(60, dtype=np.uint8).reshape(5, 3, 4),  # images [N, H, W]
    np.array([3, 0, 9], dtype=np.uint8),  # labels [N]
    np.array([[-2, 300], [7, -32768]], dtype=np.int16),
    np.array([1.5, -0.25], dtype=np.float32),
], ids=["uint8-images", "uint8-labels", "int16", "float32"])
def test_idx_round_trip(tmp_path, gz, array):
    read = idx.read_idx(write_idx(tmp_path / "a-idx-ubyte", array, gz))
    assert read.shape == array.shape and read.dtype == array.dtype
    assert np.array_equal(read, array)


@pytest.mark.parametrize("data, expected", [
    (b"", "not an IDX file"),
    (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file (magic number 01020801"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "type code 0x07 is unknown"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "header truncated"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3], "truncated: dimensions 4x2x2 of uint8 need 16 bytes"),
    (idx_bytes(np.zeros(3, np.uint8)) + b"\x00\x00", "2 bytes too long"),
    (gzip.compress(idx_bytes(np.zeros(500, np.uint8)))[:-12], "damaged gzip file"),
])
def test_corrupt_idx_is_refused_naming_the_file(tmp_path, data, expected):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(GankitError) as info:
        idx.read_idx(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message


def write_mnist_folder(folder, gz=True, prefixes=("train", "t10k"), sizes=(6, 4)):
    """A tiny MNIST-style folder: 5x5 grey images, labels 0, 1, 2, 0, ..."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in zip(prefixes, sizes):
        x = rng.integers(0, 256, (n, 5, 5), dtype=np.uint8)
        y = (np.arange(n) % 3).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y, gz)
        arrays[prefix] = x, y
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_a_folder_of_mnist_style_idx_files_loads_by_split(tmp_path, gz):
    arrays = write_mnist_folder(tmp_path / "mnist", gz)
    expected = {"train": arrays["train"], "test": arrays["t10k"],
                "all": tuple(np.concatenate(parts) for parts in zip(arrays["train"], arrays["t10k"]))}
    for split, (x, y) in expected.items():
        data = load("idx", tmp_path / "mnist", split=split)
        assert data.x.shape == (len(x), 1, 5, 5) and data.x.dtype == torch.float32
        assert torch.equal(raw_values(data), torch.from_numpy(x).float().unsqueeze(1))
        assert data.y.tolist() == y.tolist() and data.class_names == ["0", "1", "2"]
        assert data.normalize == "minmax" and -1 <= data.x.min() and data.x.max() <= 1
        assert data.name == str(tmp_path / "mnist")


def test_idx_folder_needs_a_path_and_names_the_missing_file(tmp_path):
    assert "data.path is empty" in load_error("idx")
    write_mnist_folder(tmp_path, prefixes=("t10k",), sizes=(3,))
    assert len(load("idx", tmp_path, split="test")) == 3  # the test split needs only the t10k files
    message = load_error("idx", tmp_path, split="all")
    assert f"{tmp_path / 'train-images-idx3-ubyte'}.gz: not found" in message and "without .gz" in message


def test_idx_folder_with_labels_that_do_not_match_the_images(tmp_path):
    write_mnist_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), gz=True)
    message = load_error("idx", tmp_path)
    assert str(tmp_path / "train-labels-idx1-ubyte.gz") in message and "5 labels for the 6 images" in message
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(6, np.uint8), gz=True)
    assert "expected uint8 images [N, H, W]" in load_error("idx", tmp_path)


def test_fashion_mnist_missing_says_which_file_and_how_to_fix_it(tmp_path, monkeypatch):
    message = load_error("fashion-mnist", tmp_path)  # data.path: a folder without the files
    assert message.startswith(f"{tmp_path / 'train-images-idx3-ubyte.gz'}: not found")
    assert "data.path must be a folder holding train-images-idx3-ubyte.gz" in message
    monkeypatch.setattr(idx, "FASHION_DIR", tmp_path / "nowhere")  # the package's folder, not installed
    message = load_error("fashion-mnist", split="test")
    assert message.startswith(f"{tmp_path / 'nowhere' / 't10k-images-idx3-ubyte.gz'}: not found")
    assert "apt-get install dataset-fashion-mnist" in message and "set data.path" in message


# --------------------------------------------------------------------------------------------- real Fashion-MNIST

FASHION_INSTALLED = all((idx.FASHION_DIR / name).is_file() for name in idx.FILES)
needs_fashion = pytest.mark.skipif(not FASHION_INSTALLED, reason=f"Fashion-MNIST is not in {idx.FASHION_DIR}: "
                                   f"apt-get install dataset-fashion-mnist (./dev.sh setup does it)")


@pytest.fixture(scope="module")
def fashion_train() -> Dataset:
    return load("fashion-mnist")


@needs_fashion
def test_fashion_mnist_train_is_60000_grey_28x28_images_of_10_balanced_classes(fashion_train):
    data = fashion_train
    assert data.x.shape == (60_000, 1, 28, 28) and data.x.dtype == torch.float32
    assert data.class_names == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert torch.bincount(data.y).tolist() == [6000] * 10
    assert data.normalize == "minmax" and data.x.min().item() == -1.0 and data.x.max().item() == 1.0  # 0 and 255
    assert data.to_raw(data.x[:100]).round().equal(data.to_raw(data.x[:100]))  # whole grey levels
    assert data.class_names[data.y[0]] == "Ankle boot"  # the first training image is an ankle boot


@needs_fashion
def test_fashion_mnist_test_and_all_splits(fashion_train):
    test = load("fashion-mnist", split="test")
    assert test.x.shape == (10_000, 1, 28, 28) and torch.bincount(test.y).tolist() == [1000] * 10
    everything = load("fashion-mnist", split="all")
    assert everything.x.shape == (70_000, 1, 28, 28)
    assert torch.equal(everything.x[:60_000], fashion_train.x) and torch.equal(everything.x[60_000:], test.x)
    assert torch.equal(everything.y, torch.cat([fashion_train.y, test.y]))


# --------------------------------------------------------------------------------------------- image folders

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def write_image(path, color=RED, size=(8, 6), mode="RGB"):
    """A one-colour image of size (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_sub_folders_are_classes(tmp_path):
    write_image(tmp_path / "dog" / "b.png", BLUE)
    write_image(tmp_path / "cat" / "a.png", RED)
    write_image(tmp_path / "cat" / "c.PNG", GREEN)
    write_image(tmp_path / "dog" / "deeper" / "d.png", GREEN)  # ImageFolder looks into class folders' sub-folders
    (tmp_path / "empty").mkdir()  # no images: no class
    write_image(tmp_path / ".hidden" / "e.png")  # ignored, like ._a.png from macOS
    write_image(tmp_path / "cat" / "._a.png")
    (tmp_path / "README.txt").write_text("not an image")
    data = load("images", tmp_path)
    assert data.class_names == ["cat", "dog"] and data.y.tolist() == [0, 0, 1, 1]
    assert data.x.shape == (4, 3, 6, 8) and data.normalize == "minmax" and data.name == str(tmp_path)
    colours = raw_values(data)[:, :, 0, 0].tolist()  # files in sorted order: cat/a, cat/c, dog/b, dog/deeper/d
    assert colours == [list(RED), list(GREEN), list(BLUE), list(GREEN)]


def test_a_flat_folder_is_unlabelled(tmp_path):
    for i, colour in enumerate([RED, GREEN, BLUE]):
        write_image(tmp_path / f"{i}.png", colour)
    data = load("images", tmp_path)
    assert data.y is None and data.num_classes == 0 and data.x.shape == (3, 3, 6, 8)
    assert raw_values(data)[:, :, 3, 3].tolist() == [list(RED), list(GREEN), list(BLUE)]


def test_jpeg_images_load(tmp_path):
    write_image(tmp_path / "a.jpg", (200, 100, 50), size=(16, 16))
    write_image(tmp_path / "b.jpeg", (200, 100, 50), size=(32, 32))
    data = load("images", tmp_path, image_size=8)
    assert data.x.shape == (2, 3, 8, 8)
    assert (raw_values(data) - torch.tensor([200.0, 100, 50]).view(3, 1, 1)).abs().max() <= 3  # JPEG is lossy


def test_grey_when_every_image_is_grey_else_rgb(tmp_path):
    write_image(tmp_path / "a.png", 40, mode="L")
    write_image(tmp_path / "b.png", 200, mode="L")
    grey = load("images", tmp_path)
    assert grey.x.shape == (2, 1, 6, 8) and raw_values(grey)[:, 0, 0, 0].tolist() == [40, 200]
    write_image(tmp_path / "c.png", RED)
    mixed = load("images", tmp_path)
    assert mixed.x.shape == (3, 3, 6, 8)
    assert raw_values(mixed)[:, :, 0, 0].tolist() == [[40] * 3, [200] * 3, list(RED)]
    as_grey = load("images", tmp_path, channels=1)
    assert as_grey.x.shape == (3, 1, 6, 8)
    assert raw_values(as_grey)[:, 0, 0, 0].tolist() == [40, 200, 76]  # red's luma: 0.299 * 255 = 76.2


def test_resize_shorter_side_and_centre_crop(tmp_path):
    wide = np.zeros((20, 40, 3), np.uint8)  # [H, W, 3]: red | green | blue, the centre square all green
    wide[:, :10], wide[:, 10:30], wide[:, 30:] = RED, GREEN, BLUE
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(wide.transpose(1, 0, 2).copy()).save(tmp_path / "tall.png")  # 20 wide, 40 high
    write_image(tmp_path / "small.png", GREEN, size=(4, 4))  # enlarged
    data = load("images", tmp_path, image_size=10)
    assert data.x.shape == (3, 3, 10, 10)
    raw = raw_values(data)  # the margins are cropped off: what is left is green, up to the filter's reach
    assert raw[:, 1].min() >= 230 and raw[:, [0, 2]].max() <= 25
    assert torch.equal(raw[:, :, 3:7, 3:7], torch.tensor(GREEN).float().view(1, 3, 1, 1).expand(3, 3, 4, 4))


def test_images_of_different_sizes_need_image_size(tmp_path):
    write_image(tmp_path / "a.png", size=(8, 6))
    write_image(tmp_path / "b.png", size=(6, 8))
    message = load_error("images", tmp_path)
    assert "a.png is 8x6" in message and "b.png is 6x8" in message and "set data.image_size" in message
    assert load("images", tmp_path, image_size=4).x.shape == (2, 3, 4, 4)


def write_bad_images(folder):
    """Two good images and two bad ones: one that is not an image, one cut short after a valid header."""
    write_image(folder / "a.png", RED)
    (folder / "b.png").write_bytes(b"this is not a PNG")
    noise = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "c.png")
    whole = (folder / "c.png").read_bytes()
    (folder / "c.png").write_bytes(whole[:len(whole) // 2])
    write_image(folder / "d.png", BLUE)


def test_corrupt_image_is_refused_by_name_or_skipped_with_a_warning(tmp_path, capsys):
    write_bad_images(tmp_path)
    message = load_error("images", tmp_path)
    assert message.startswith(str(tmp_path / "b.png")) and 'data.bad_files = "skip"' in message
    (tmp_path / "b.png").unlink()
    assert load_error("images", tmp_path).startswith(str(tmp_path / "c.png"))  # found when decoding the pixels
    (tmp_path / "b.png").write_bytes(b"this is not a PNG")
    capsys.readouterr()
    data = load("images", tmp_path, bad_files="skip")
    assert raw_values(data)[:, :, 0, 0].tolist() == [list(RED), list(BLUE)]
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "skipped 2 image(s)" in warning and "b.png (cannot identify" in warning
    assert "), c.png" in warning


def test_folder_without_images(tmp_path):
    assert "data.path is empty" in load_error("images")
    assert "folder not found" in load_error("images", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "no images found" in load_error("images", tmp_path / "empty")
    (tmp_path / "empty" / "a.webp").write_bytes(b"")
    assert "other files, e.g. a.webp" in load_error("images", tmp_path / "empty")
    write_image(tmp_path / "one" / "bad.png").write_bytes(b"nope")
    assert "none of its 1 images" in load_error("images", tmp_path / "one", bad_files="skip")


def test_images_both_flat_and_in_sub_folders_are_refused(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "cat" / "b.png")
    assert "both directly (a.png) and in sub-folders (cat/)" in load_error("images", tmp_path)


def no_decoding(monkeypatch):
    def fail(*args):
        raise RuntimeError("decoded again")

    monkeypatch.setattr(images, "probe", fail)
    monkeypatch.setattr(images, "decode", fail)


def test_decoded_images_are_cached_until_a_file_changes(tmp_path, cache_home, monkeypatch):
    folder = tmp_path / "photos"
    write_image(folder / "cat" / "a.png", RED)
    write_image(folder / "dog" / "b.png", BLUE)
    first = load("images", folder, image_size=4)
    cached = list(cache_home.glob("images-photos-*.npz"))
    assert len(cached) == 1 and not list(cache_home.glob("*.tmp"))
    with np.load(cached[0], allow_pickle=False) as saved:
        assert saved["x"].dtype == np.uint8 and saved["x"].shape == (2, 3, 4, 4)
    no_decoding(monkeypatch)
    again = load("images", folder, image_size=4)
    assert torch.equal(again.x, first.x) and torch.equal(again.y, first.y) and again.class_names == first.class_names
    os.utime(folder / "cat" / "a.png", ns=(0, 0))  # a changed file is decoded again
    assert "decoded again" in load_error("images", folder, image_size=4)
    assert "decoded again" in load_error("images", folder, image_size=8)  # so are other settings


def test_cache_keeps_the_skipped_files_and_can_be_turned_off(tmp_path, cache_home, monkeypatch, capsys):
    write_bad_images(tmp_path / "photos")
    load("images", tmp_path / "photos", bad_files="skip")
    no_decoding(monkeypatch)
    capsys.readouterr()
    assert len(load("images", tmp_path / "photos", bad_files="skip")) == 2  # from the cache, warning again
    assert "skipped 2 image(s)" in capsys.readouterr().err
    assert load_error("images", tmp_path / "photos").startswith(str(tmp_path / "photos" / "b.png"))
    monkeypatch.setenv("GANKIT_CACHE", "0")
    assert "decoded again" in load_error("images", tmp_path / "photos")


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, cache_home):
    write_image(tmp_path / "photos" / "a.png", GREEN)
    first = load("images", tmp_path / "photos")
    [entry] = cache_home.glob("*.npz")
    entry.write_bytes(b"garbage")
    assert torch.equal(load("images", tmp_path / "photos").x, first.x)
    with np.load(entry, allow_pickle=False) as saved:
        assert saved["x"].shape == (1, 3, 6, 8)


# --------------------------------------------------------------------------------------------- size and channels


def test_digits_resized_to_16_and_made_rgb():
    plain = load("digits")
    big = load("digits", image_size=16)
    assert big.x.shape == (1797, 1, 16, 16) and big.x.min() >= -1 and big.x.max() <= 1
    assert torch.equal(big.y, plain.y)
    # Bilinear enlargement keeps each image's mean grey level up to the border's effect.
    assert (big.x.mean((1, 2, 3)) - plain.x.mean((1, 2, 3))).abs().max() < 0.1
    rgb = load("digits", channels=3)
    assert rgb.x.shape == (1797, 3, 8, 8) and rgb.x.is_contiguous()
    assert all(torch.equal(rgb.x[:, c], plain.x[:, 0]) for c in range(3))
    assert load("digits", image_size=16, channels=3).x.shape == (1797, 3, 16, 16)


@pytest.fixture
def colour_set(monkeypatch):
    """A registered set of two 4x8 RGB images: all red, and green with red margins 2 pixels wide."""
    x = torch.zeros(2, 3, 4, 8)
    x[:, 0] = 255
    x[1, 0, :, 2:6], x[1, 1, :, 2:6] = 0, 255

    def load_colours(config, seed):
        return RawData(x=x.clone(), normalize="minmax", value_range=(0.0, 255.0))

    monkeypatch.setitem(DATASETS._items, "colours", load_colours)
    return x


def test_rgb_to_grey_is_bt601_luma(colour_set):
    data = load("colours", channels=1)
    assert data.x.shape == (2, 1, 4, 8)
    raw = data.to_raw(data.x)
    assert torch.allclose(raw[0], torch.full((1, 4, 8), 0.299 * 255), atol=1e-3)
    assert torch.allclose(raw[1, 0, :, 2:6], torch.full((4, 4), 0.587 * 255), atol=1e-3)


def test_generic_resize_takes_the_centre_square(colour_set):
    for size in (2, 3, 8):  # shrunk with antialiasing, and enlarged
        data = load("colours", image_size=size)
        assert data.x.shape == (2, 3, size, size)
        raw = data.to_raw(data.x)
        assert torch.allclose(raw[0], colour_set[0, :, :1, :1].expand(3, size, size), atol=1e-3)
        assert torch.allclose(raw[1], colour_set[1, :, :1, 2:3].expand(3, size, size), atol=1e-3)  # no red margin


@pytest.mark.parametrize("setting", [{"image_size": 8}, {"channels": 3}])
def test_image_options_are_refused_for_rows(setting):
    key, value = next(iter(setting.items()))
    message = load_error("ring8", n=10, **setting)
    assert f"data.{key} = {value}: applies to images only" in message and "rows of 2 values" in message
