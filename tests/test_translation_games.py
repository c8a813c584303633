"""The image-to-image games end to end on small real folders: pix2pix learns a mapping, SRGAN's G beats bicubic,
CycleGAN's history behaves as Shrivastava et al.'s; every game repeats and resumes bit-identically; apply, eval,
the pictures and the errors a user meets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from gankit.errors import GankitError
from gankit.games.cyclegan import ImageHistory
from gankit.runs import RunDir

from conftest import check_repeats_and_resumes

SIDE = 16


def blobs(n: int, seed: int, side: int = SIDE) -> np.ndarray:
    """[n, side, side] uint8 grey images of a few soft discs: smooth, so bicubic is a fair baseline."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    out = np.zeros((n, side, side))
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(2, side - 2), rng.uniform(2, side - 2), rng.uniform(2, side / 3)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return (255 * out / out.max(axis=(1, 2), keepdims=True)).astype(np.uint8)


def paired_folder(root, n: int = 64, factor: int = 1):
    """A/ (the images, or their downsampled versions for SR) and B/ (the inverted images, or the originals)."""
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    for i, image in enumerate(blobs(n, 0)):
        b = Image.fromarray(image if factor > 1 else 255 - image)
        a = Image.fromarray(image).resize((SIDE // factor, SIDE // factor), Image.Resampling.BICUBIC) if factor > 1 \
            else Image.fromarray(image)
        a.save(root / "A" / f"{i:03d}.png")
        b.save(root / "B" / f"{i:03d}.png")
    return root


def config_of(game: str, path, *more: str) -> list[str]:
    return [f"game.name={game}", "data.name=pairs", f"data.path={path}", "data.batch_size=16", "data.holdout=0.25",
            "model.g_hidden=8", "model.g_depth=2", "model.d_hidden=8", "model.d_depth=1", "train.steps=20",
            "train.log_every=5", "train.checkpoint_every=10", "train.plot_every=10", *more]


def train(tmp_path, name: str, overrides: list[str], **kw):
    return gankit.train(None, run_dir=tmp_path / name, overrides=overrides, progress=False, **kw)


def weights(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(RunDir(run).checkpoint)[0]


def test_pix2pix_learns_the_mapping_and_its_pictures_show_held_out_rows(tmp_path):
    """Inverting the images: after 150 steps the U-Net's held-out L1 is a fraction of the identity's."""
    data = paired_folder(tmp_path / "pairs")
    result = train(tmp_path, "run", config_of("pix2pix", data, "train.steps=150", "train.plot_every=50",
                                              "train.g_lr=1e-3"))
    scores = gankit.evaluate(result.run_dir)
    assert scores["task"] == "paired" and scores["n"] == 16  # 25% of 64 held out
    loaded = gankit.load_data(RunDir(result.run_dir).config().data)
    t = loaded.translation
    out = torch.from_numpy(gankit.apply(result.run_dir, t.held_source.numpy()))
    identity = (t.held_source - t.held_target).abs().mean()
    assert (out - t.held_target).abs().mean() < 0.25 * identity
    assert scores["psnr"] > 20
    pictures = RunDir(result.run_dir).pictures()
    assert [s for s, _ in pictures] == [0, 50, 100, 150]
    with Image.open(pictures[-1][1]) as im:  # 8 rows of input | output | target, shown 6x (16 -> 96 pixels)
        assert im.width == 3 * (96 + 2) + 2 and im.height == 14 + 8 * (96 + 2) + 2
    assert "Held-out examples" in (RunDir(result.run_dir).path / "report.html").read_text()


@pytest.mark.parametrize("game,factor", [("pix2pix", 1), ("srgan", 2), ("cyclegan", 1)])
def test_each_game_repeats_and_resumes_exactly(tmp_path, game, factor):
    data = paired_folder(tmp_path / "pairs", factor=factor)
    if game == "cyclegan":
        more = ["data.name=unpaired", f"data.path_a={data / 'A'}", f"data.path_b={data / 'B'}", "game.history=8"]
    else:
        more = []
    overrides = config_of(game, data, *more)
    check_repeats_and_resumes(lambda name, callbacks=(): train(tmp_path, name, overrides, callbacks=callbacks),
                              weights)
    expected = weights(tmp_path / "one")
    if game == "cyclegan":
        assert {"history.a", "history.b", "F.block.0.weight"} & set(expected) >= {"history.a", "history.b"}


def test_srgan_beats_bicubic_and_its_pixel_only_baseline_has_no_d(tmp_path):
    data = paired_folder(tmp_path / "pairs", n=96, factor=2)
    gan = train(tmp_path, "gan", config_of("srgan", data, "train.steps=150", "train.g_lr=1e-3",
                                           "loss.adversarial_weight=1e-3", "loss.pixel_weight=1"))
    scores = gankit.evaluate(gan.run_dir)
    assert scores["task"] == "sr" and scores["psnr_gain_db"] > 1.0, scores
    assert scores["psnr"] == pytest.approx(scores["bicubic"]["psnr"] + scores["psnr_gain_db"])
    plain = train(tmp_path, "plain", config_of("srgan", data, "loss.adversarial_weight=0", "loss.pixel_weight=1"))
    assert not any(k.startswith("D.") for k in weights(plain.run_dir))
    assert {"D.", "G."} <= {k[:2] for k in weights(gan.run_dir)}


def test_the_history_fills_then_swaps_half_of_the_new_images():
    history = ImageHistory(8, (1, 2, 2))
    g = torch.Generator().manual_seed(0)
    first = torch.arange(6.0).reshape(6, 1, 1, 1).expand(6, 1, 2, 2)
    assert torch.equal(history.query(first, g), first) and history.count == 6
    second = 100 + torch.arange(400.0).reshape(400, 1, 1, 1).expand(400, 1, 2, 2)
    out = history.query(second, g)
    assert history.count == 8
    assert torch.equal(out[:2], second[:2])  # the two that filled the history pass through
    new = (out[2:] == second[2:]).flatten(1).all(1)
    assert 0.42 < new.double().mean() < 0.58  # the rest: new or stored, about half each
    before = {0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 100.0, 101.0}  # what the history held when the batch came
    assert set(out[2:][~new][:, 0, 0, 0].tolist()) <= before
    stored = set(history.images[:, 0, 0, 0].tolist())
    assert len(stored) == 8 and all(v >= 100 or v < 6 for v in stored)


def test_apply_writes_the_inputs_layout_and_tiles_without_seams(tmp_path, capsys):
    data = paired_folder(tmp_path / "pairs", factor=2)
    run = train(tmp_path, "run", config_of("srgan", data)).run_dir
    big = Image.fromarray(blobs(1, 5, side=80)[0])
    (tmp_path / "in").mkdir()
    big.save(tmp_path / "in" / "big.png")
    big.crop((0, 0, 20, 30)).save(tmp_path / "in" / "small.png")
    assert main(["apply", str(run), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                 "--tile", "24", "--overlap", "8"]) == 0
    with Image.open(tmp_path / "out" / "big.png") as a, Image.open(tmp_path / "out" / "small.png") as b:
        assert a.size == (160, 160) and b.size == (40, 60)
        tiled = np.asarray(a, dtype=np.float64)
    whole = gankit.apply(run, np.asarray(big)[None, None], tile=512)[0, 0] * 255
    # G sees ~20 input pixels around each output, more than a quarter of the 8-pixel overlap: not exact, but the
    # feathered tiles stay within a few grey levels of the whole-image output, and mostly within rounding
    assert np.abs(tiled - whole).max() <= 3.0 and np.abs(tiled - whole).mean() < 0.3
    np.save(tmp_path / "x.npy", np.asarray(big)[None, None])
    assert main(["apply", str(run), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (1, 1, 160, 160)
    capsys.readouterr()
    assert main(["apply", str(run), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.png")]) == 2
    assert "an .npy input gives an .npy output" in capsys.readouterr().err
    np.save(tmp_path / "rgb.npy", np.zeros((1, 3, 8, 8), np.float32))
    assert main(["apply", str(run), "--input", str(tmp_path / "rgb.npy"), "--out", str(tmp_path / "z.npy")]) == 2
    assert "expected images [N, 1, H, W]" in capsys.readouterr().err
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy")]) == 2
    assert "gankit apply" in capsys.readouterr().err


def test_the_games_refuse_data_they_cannot_learn_from(tmp_path):
    with pytest.raises(GankitError, match="needs image-to-image data"):
        train(tmp_path, "a", ["game.name=pix2pix", "data.name=ring8", "data.n=500"])
    data = paired_folder(tmp_path / "pairs")
    with pytest.raises(GankitError, match="is unpaired"):
        train(tmp_path, "b", config_of("pix2pix", data, "data.name=unpaired", f"data.path_a={data / 'A'}",
                                       f"data.path_b={data / 'B'}"))
    with pytest.raises(GankitError, match="upsamples by 2, 4 or 8"):
        train(tmp_path, "c", config_of("srgan", data))
    with pytest.raises(GankitError, match="model.g_depth"):
        train(tmp_path, "d", config_of("pix2pix", data, "model.g_depth=5"))
    with pytest.raises(GankitError, match="eval.every"):
        train(tmp_path, "e", config_of("pix2pix", data, "eval.every=10"))
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()
