"""Image-to-image data: the user's paired and unpaired folders, and the built-in tasks (translation.py, pairs.py)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import idx, load_data, translation
from gankit.data.dataset import DATASETS
from gankit.errors import GankitError


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Each test gets its own, empty cache: the user's ~/.cache is never touched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("GANKIT_CACHE", raising=False)
    return tmp_path / "xdg-cache" / "gankit"


def raw(name: str, seed: int = 0, **settings):
    """The loader's RawData, before load_data's normalisation."""
    return DATASETS.get(name)(DataConfig(name=name, **settings), seed)


def error(name: str, **settings) -> str:
    """The one-line message of the GankitError that loading raises."""
    with pytest.raises(GankitError) as info:
        load_data(DataConfig(name=name, **settings))
    assert "\n" not in str(info.value)
    return str(info.value)


def write(path, value: int, size=(8, 8), mode="L"):
    """A one-colour image of size (width, height); ``value`` codes which image it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 255 - value, 7)).save(path)
    return path


def first_pixel(x: torch.Tensor) -> list[int]:
    """Each image's top-left value of channel 0 back in levels 0..255: the code ``write`` gave it."""
    return (x[:, 0, 0, 0] * 255).round().long().tolist()


def paired_folders(root, n=12, size_a=(8, 8), size_b=(8, 8), mode_a="L", mode_b="RGB"):
    for i in range(n):
        write(root / "A" / f"{i:03d}.png", 10 * i, size_a, mode_a)
        write(root / "B" / f"{i:03d}.jpg" if i % 2 else root / "B" / f"{i:03d}.png", 10 * i + 3, size_b, mode_b)
    return root


# --------------------------------------------------------------------------------------------- pairs: folders


def test_paired_folders_match_by_name_and_keep_each_sides_channels(tmp_path):
    data = load_data(DataConfig(name="pairs", path=str(paired_folders(tmp_path / "p"))))
    t = data.translation
    assert t.paired and t.task == "paired" and t.factor == 1 and t.domains == ("A", "B")
    assert t.source.shape == (11, 1, 8, 8) and data.x.shape == (11, 3, 8, 8)  # grey edges -> RGB, as they come
    assert t.held_source.shape == (1, 1, 8, 8) and t.held_target.shape == (1, 3, 8, 8)  # 12 // 10 = 1 held out
    assert data.x.min() >= -1 and data.x.max() <= 1 and t.source.min() >= 0 and t.source.max() <= 1
    targets = (data.to_raw(data.x)[:, 0, 0, 0] * 255).round().long().tolist()
    assert [a + 3 for a in first_pixel(t.source)] == pytest.approx(targets, abs=2)  # JPEG: within 2 levels
    assert [a + 3 for a in first_pixel(t.held_source)] == pytest.approx(first_pixel(t.held_target), abs=2)


def test_names_in_one_folder_only_are_named_and_counted(tmp_path):
    root = paired_folders(tmp_path / "p", n=3)
    write(root / "A" / "extra.png", 1)
    for name in ("x.png", "y.png", "z.png"):
        write(root / "B" / name, 1)
    message = error("pairs", path=str(root))
    assert message.startswith(f"{root}: 4 file(s) have no partner")
    assert "A/extra.png, B/x.png, B/y.png and 1 more" in message
    (root / "B").rename(root / "b")
    assert "has no B/ sub-folder" in error("pairs", path=str(root))
    assert "data.path is empty" in error("pairs")


def test_sizes_must_agree_within_a_side_unless_image_size_resizes(tmp_path):
    root = paired_folders(tmp_path / "p", n=4)
    write(root / "A" / "002.png", 20, size=(9, 8))
    message = error("pairs", path=str(root))
    assert str(root / "A") in message and "000.png is 8x8" in message and "002.png is 9x8" in message
    data = load_data(DataConfig(name="pairs", path=str(root), image_size=6))
    assert data.translation.source.shape[1:] == (1, 6, 6) and data.x.shape[1:] == (3, 6, 6)


def test_channels_grey_only_when_a_whole_side_is_grey_and_data_channels_forces_both(tmp_path):
    root = paired_folders(tmp_path / "p", n=4, mode_a="L", mode_b="L")
    write(root / "A" / "001.png", 10, mode="RGB")  # one colour image makes side A RGB
    t = raw("pairs", path=str(root)).translation
    assert t.source.shape[1] == 3 and t.held_target.shape[1] == 1
    data = load_data(DataConfig(name="pairs", path=str(root), channels=1))
    assert data.translation.source.shape[1] == 1 and data.x.shape[1] == 1


def test_b_an_integer_multiple_of_a_is_super_resolution(tmp_path):
    root = paired_folders(tmp_path / "p", n=5, size_a=(4, 6), size_b=(16, 24))
    t = raw("pairs", path=str(root)).translation
    assert t.task == "sr" and t.factor == 4 and t.source.shape[2:] == (6, 4) and t.held_target.shape[2:] == (24, 16)
    t = raw("pairs", path=str(root), image_size=8).translation  # B to 8x8, A to 8 / 4
    assert t.factor == 4 and t.source.shape[2:] == (2, 2) and t.held_target.shape[2:] == (8, 8)
    assert "not a multiple of 4" in error("pairs", path=str(root), image_size=6)
    root = paired_folders(tmp_path / "q", n=5, size_a=(4, 4), size_b=(12, 8))  # not one factor: translation
    t = raw("pairs", path=str(root)).translation
    assert t.task == "paired" and t.factor == 1


# --------------------------------------------------------------------------------------------- pairs: side by side


def test_side_by_side_images_split_into_a_left_and_b_right(tmp_path):
    for i in range(6):
        image = Image.new("RGB", (16, 8), (10 * i, 0, 0))
        image.paste((10 * i + 3, 0, 0), (8, 0, 16, 8))
        image.save(tmp_path / f"{i}.png")
    data = raw("pairs", path=str(tmp_path), layout="side-by-side")
    t = data.translation
    assert t.source.shape == (5, 3, 8, 8) and data.x.shape == (5, 3, 8, 8) and t.task == "paired" and t.factor == 1
    assert [a + 3 for a in first_pixel(t.source)] == first_pixel(data.x)
    assert (t.source[:, 0] == t.source[:, 0, :1, :1]).all()  # no pixel of B leaks into A
    t = raw("pairs", path=str(tmp_path), layout="side-by-side", image_size=4).translation
    assert t.source.shape[1:] == (3, 4, 4) and t.held_target.shape[1:] == (3, 4, 4)
    write(tmp_path / "odd.png", 0, size=(15, 8))
    assert error("pairs", path=str(tmp_path), layout="side-by-side").startswith(f"{tmp_path / 'odd.png'}: is 15 "
                                                                                "pixels wide, an odd width")


# --------------------------------------------------------------------------------------------- held out, cache


def test_held_out_pairs_are_seeded_and_never_trained_on(tmp_path):
    root = paired_folders(tmp_path / "p", n=20, mode_b="L")
    first = raw("pairs", seed=1, path=str(root), holdout=0.25).translation
    again = raw("pairs", seed=1, path=str(root), holdout=0.25).translation
    other = raw("pairs", seed=2, path=str(root), holdout=0.25).translation
    held, trained = first_pixel(first.held_source), first_pixel(first.source)
    assert len(held) == 5 and len(trained) == 15 and not set(held) & set(trained)
    assert sorted(held + trained) == [10 * i for i in range(20)]
    assert torch.equal(first.held_target, again.held_target) and torch.equal(first.source, again.source)
    assert first_pixel(other.held_source) != held
    assert "leaves none to train on" in error("pairs", path=str(paired_folders(tmp_path / "one", n=1)))


def test_a_cache_hit_gives_the_same_arrays(tmp_path, cache_home, monkeypatch):
    root = paired_folders(tmp_path / "p", n=6)
    cold = raw("pairs", path=str(root)).translation
    entries = sorted(cache_home.glob("images-*.npz"))
    assert len(entries) == 2  # one per side
    warm = raw("pairs", path=str(root)).translation
    assert torch.equal(cold.source, warm.source) and torch.equal(cold.held_target, warm.held_target)
    assert sorted(cache_home.glob("images-*.npz")) == entries
    raw("pairs", path=str(root), image_size=4)
    assert len(list(cache_home.glob("images-*.npz"))) == 4  # other settings, other entries
    monkeypatch.setenv("GANKIT_CACHE", "0")
    raw("pairs", path=str(root), channels=1)
    assert len(list(cache_home.glob("images-*.npz"))) == 4


# --------------------------------------------------------------------------------------------- unpaired


def test_unpaired_folders_are_two_domains_of_their_own_sizes(tmp_path):
    for i in range(15):
        write(tmp_path / "horses" / f"{i}.png", 10 * i, size=(8, 8), mode="RGB")
    for i in range(30):
        write(tmp_path / "zebras" / f"z{i}.jpg", i, size=(6, 4), mode="L")
    data = load_data(DataConfig(name="unpaired", path_a=str(tmp_path / "horses"), path_b=str(tmp_path / "zebras")))
    t = data.translation
    assert not t.paired and t.task == "unpaired" and t.domains == ("horses", "zebras")
    assert t.source.shape == (14, 3, 8, 8) and t.held_source.shape == (1, 3, 8, 8)
    assert data.x.shape == (27, 1, 4, 6) and t.held_target.shape == (3, 1, 4, 6)
    assert not set(first_pixel(t.held_source)) & set(first_pixel(t.source))
    assert "data.path_b is empty" in error("unpaired", path_a=str(tmp_path / "horses"))
    assert error("unpaired", path_a=str(tmp_path / "none"), path_b=str(tmp_path / "zebras")).startswith(
        f"data.path_a: {tmp_path / 'none'}: folder not found")
    (tmp_path / "empty").mkdir()
    assert error("unpaired", path_a=str(tmp_path / "horses"), path_b=str(tmp_path / "empty")).startswith(
        f"data.path_b: {tmp_path / 'empty'}: no images found")


# --------------------------------------------------------------------------------------------- built-in: photos


def test_random_crops_take_each_photo_equally_skip_flat_ones_and_half_are_mirrored():
    def photo(h, w, mark):  # [h, w, 3]: a pixel says where it is (row, column) and which photo it is in
        ys, xs = np.mgrid[0:h, 0:w]
        return np.stack([ys, xs, np.full_like(ys, mark)], axis=-1).astype(np.uint8)

    small, big = photo(40, 60, 0), photo(80, 60, 1)  # the big one has twice the area, and is drawn as often
    flat = np.full((50, 50, 3), 7, np.uint8)  # no texture: its crops are redrawn while varied ones remain
    crops = (translation.random_crops([small, big, flat], 3000, 8, np.random.default_rng(0)) * 255).round().byte()
    from_big = crops[:, 2, 0, 0] == 1
    from_small = crops[:, 2, 0, 0] == 0
    assert 0.45 < from_big.float().mean() < 0.55 and 0.45 < from_small.float().mean() < 0.55
    assert not (crops == 7).all(dim=(1, 2, 3)).any()
    mirrored = crops[:, 1, 0, 0] > crops[:, 1, 0, -1]
    assert 0.45 < mirrored.float().mean() < 0.55
    for crop, flip, big_one in zip(crops[:50].numpy(), mirrored[:50], from_big[:50]):
        photo = big if big_one else small
        crop = crop[:, :, ::-1] if flip else crop
        top, left = int(crop[0, 0, 0]), int(crop[1, 0, 0])
        assert (photo[top:top + 8, left:left + 8].transpose(2, 0, 1) == crop).all()


@pytest.fixture(scope="module")
def photos():
    return load_data(DataConfig(name="sr-photos", n=64, crop=32, factor=4), seed=3)


def test_sr_photos_shapes_ranges_and_determinism(photos):
    t = photos.translation
    assert photos.x.shape == (64, 3, 32, 32) and t.source.shape == (64, 3, 8, 8) and t.task == "sr" and t.factor == 4
    assert photos.x.min() >= -1 and photos.x.max() <= 1 and 0 <= t.source.min() and t.source.max() <= 1
    torch.testing.assert_close(t.source, translation.downsample(photos.to_raw(photos.x), 4), atol=1e-5, rtol=0)
    again = raw("sr-photos", seed=3, n=64, crop=32).translation
    assert torch.equal(again.source, t.source) and torch.equal(again.held_target, t.held_target)
    other = raw("sr-photos", seed=4, n=64, crop=32).translation
    assert not torch.equal(other.source, t.source) and torch.equal(other.held_target, t.held_target)


def test_sr_photos_holds_out_whole_photos_as_tiles(photos):
    held = translation.held_out_photos()
    assert set(held) == set(translation.HELD_OUT_PHOTOS) and not set(held) & set(translation.TRAIN_PHOTOS)
    t = photos.translation
    assert len(t.held_target) == sum((p.shape[0] // 32) * (p.shape[1] // 32) for p in held.values())
    cat = held["chelsea"]  # 300 x 451: a 9 x 14 grid, centred
    top, left = (300 - 9 * 32) // 2, (451 - 14 * 32) // 2
    expected = torch.from_numpy(cat[top:top + 32, left:left + 32].transpose(2, 0, 1) / 255).float()
    torch.testing.assert_close(t.held_target[0], expected)
    trained = {bytes(c) for c in (photos.to_raw(photos.x) * 255).round().byte().numpy()}
    assert not trained & {bytes(c) for c in (t.held_target * 255).round().byte().numpy()}


def test_sr_photos_refuses_bad_settings():
    assert "not a multiple of data.factor = 4" in error("sr-photos", n=8, crop=30)
    message = error("sr-photos", n=10**6, crop=64)
    assert message.startswith("data.n = 1000000:") and "lower data.n" in message
    assert "larger than the chelsea photo's shorter side (300 pixels)" in error("sr-photos", n=2, crop=320)
    assert "data.image_size = 32" in error("sr-photos", n=2, image_size=32)


# --------------------------------------------------------------------------------------------- built-in: Fashion-MNIST

FASHION = all((idx.FASHION_DIR / name).is_file() for name in idx.FILES)
needs_fashion = pytest.mark.skipif(not FASHION, reason=f"Fashion-MNIST is not in {idx.FASHION_DIR}: apt-get "
                                   f"install dataset-fashion-mnist")


def test_fashion_tasks_missing_give_the_fashion_mnist_message(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "FASHION_DIR", tmp_path / "nowhere")
    expected = error("fashion-mnist")
    for name in ("sr-fashion-mnist", "edges2fashion", "sneaker2boot"):
        assert error(name) == expected


def test_sr_fashion_factor_must_be_two_or_four():
    assert error("sr-fashion-mnist", factor=3).startswith("data.factor = 3: sr-fashion-mnist's 28x28 images allow a "
                                                          "factor of 2 or 4")


@needs_fashion
def test_sr_fashion_mnist_targets_train_inputs_downsampled_test_held_out():
    data = load_data(DataConfig(name="sr-fashion-mnist", factor=4))
    t = data.translation
    assert data.x.shape == (60000, 1, 28, 28) and t.source.shape == (60000, 1, 7, 7)
    assert t.held_source.shape == (2000, 1, 7, 7) and t.held_target.shape == (2000, 1, 28, 28)
    assert data.x.min() == -1 and data.x.max() == 1 and t.source.min() >= 0 and t.source.max() <= 1
    assert t.task == "sr" and t.factor == 4 and t.domains == ("low-res", "high-res")
    test, _, _ = idx.read_split(idx.FASHION_DIR, "test", "")
    assert torch.equal(t.held_target[:, 0], torch.from_numpy(test[:2000].copy()).float() / 255)
    torch.testing.assert_close(t.source[:100], translation.downsample(data.to_raw(data.x[:100]), 4))
    assert raw("sr-fashion-mnist", factor=2).translation.source.shape == (60000, 1, 14, 14)


@needs_fashion
def test_sneaker2boot_domains_are_the_right_classes():
    data = raw("sneaker2boot")
    t = data.translation
    train, train_y, _ = idx.read_split(idx.FASHION_DIR, "train", "")
    test, test_y, _ = idx.read_split(idx.FASHION_DIR, "test", "")
    for images, pixels, labels, k in ((t.source, train, train_y, 7), (t.held_source, test, test_y, 7),
                                      (t.held_target, test, test_y, 9)):
        assert torch.equal(images[:, 0], torch.from_numpy(pixels[labels == k]).float() / 255)
    assert torch.equal(data.x[:, 0], torch.from_numpy(train[train_y == 9]).float() / 255)
    assert data.x.shape == (6000, 1, 28, 28) and len(t.held_source) == len(t.held_target) == 1000
    assert not t.paired and t.task == "unpaired" and t.classes == (7, 9) and t.domains == ("sneaker", "ankle boot")


def write_fashion_like(folder, train: np.ndarray, test: np.ndarray):
    """A Fashion-MNIST-shaped IDX folder (data.path) of the given [N, 28, 28] uint8 images."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, x in (("train", train), ("t10k", test)):
        for kind, array in (("images-idx3-ubyte", x), ("labels-idx1-ubyte", np.zeros(len(x), np.uint8))):
            header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (folder / f"{prefix}-{kind}").write_bytes(header + array.tobytes())
    return folder


def test_edges2fashion_edges_outline_the_shapes_and_are_cached(tmp_path, cache_home, monkeypatch):
    rng = np.random.default_rng(0)
    x = np.zeros((40, 28, 28), np.uint8)
    for image in x:  # a bright rectangle in each image
        top, left = rng.integers(3, 10, 2)
        image[top:top + 12, left:left + 14] = rng.integers(120, 256)
    folder = write_fashion_like(tmp_path / "fm", x[:30], x[30:])
    data = load_data(DataConfig(name="edges2fashion", path=str(folder)))
    t = data.translation
    assert t.source.shape == (30, 1, 28, 28) and t.held_source.shape == (10, 1, 28, 28) and t.task == "paired"
    assert set(t.source.unique().tolist()) == {0.0, 1.0} and t.domains == ("edges", "fashion-mnist")
    inside = torch.from_numpy(x[:30] > 0)
    def grown(mask):  # [N, 28, 28] bool, grown by one pixel in each direction
        return torch.nn.functional.max_pool2d(mask[:, None].float(), 3, 1, 1)[:, 0].bool()

    ring = inside & grown(~inside)  # the rectangle's outermost pixels
    near = grown(ring)  # the outline, +-1 pixel
    edges = t.source[:, 0].bool()
    assert not (edges & ~near).any() and (edges & ring).sum() > 0.5 * ring.sum()
    torch.testing.assert_close(t.held_source, translation.edge_map(t.held_target))
    assert len(list(cache_home.glob("edges2fashion-*.npz"))) == 1
    calls, edge_map = [], translation.edge_map
    monkeypatch.setattr(translation, "edge_map", lambda x: calls.append(len(x)) or edge_map(x))
    assert torch.equal(raw("edges2fashion", path=str(folder)).translation.source, t.source) and calls == []
    monkeypatch.setenv("GANKIT_CACHE", "0")
    assert torch.equal(raw("edges2fashion", path=str(folder)).translation.source, t.source) and calls == [30, 10]


@needs_fashion
def test_edge_maps_of_real_garments_are_outlines_not_texture():
    test, _, _ = idx.read_split(idx.FASHION_DIR, "test", "")
    edges = translation.edge_map(torch.from_numpy(test[:200].copy()).float()[:, None] / 255)
    share = edges.mean((1, 2, 3))
    assert 0.05 < share.mean() < 0.25 and (share > 0).all()  # every garment has an outline, few pixels are edges
