"""Scoring an anomaly run: the threshold, gankit score's CSV, gankit eval's numbers, the pictures, the CLI.

Three tiny runs, trained once for the module: EGBAD on digits (images, labelled test set), GANomaly on breast-cancer
rows trained through the CLI with --fpr, and EGBAD on a user's unlabelled .npy of rows (no test set).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.anomaly_scores import THRESHOLD_FILE, threshold
from gankit.checkpoint import read_meta
from gankit.cli import main
from gankit.config import Config, DataConfig, GameConfig, ModelConfig, TrainConfig
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.product_loader import load_scorer
from gankit.runs import RunDir

TINY = ["--set", "model.z_dim=4", "--set", "model.g_hidden=16", "--set", "model.d_hidden=16",
        "--set", "train.log_every=20", "--set", "train.checkpoint_every=40"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("anomaly")
    image = gankit.train(Config(data=DataConfig(name="digits", normal_class="0", normal_holdout=0.1, batch_size=32),
                                model=ModelConfig(family="dcgan", z_dim=16, g_hidden=16, d_hidden=16),
                                train=TrainConfig(steps=40, log_every=20, checkpoint_every=40),
                                game=GameConfig(name="bigan")), run_dir=root / "digits", progress=False)
    assert main(["train", "anomaly-breast-cancer", "--steps", "40", "--fpr", "0.1", "--run-dir",
                 str(root / "rows"), "--quiet", *TINY]) == 0
    rows = np.random.RandomState(0).normal(size=(120, 3)).astype(np.float32)
    np.save(root / "normal.npy", rows)
    gankit.train(Config(data=DataConfig(name="file", path=str(root / "normal.npy"), normal_holdout=0.2,
                                        batch_size=32),
                        model=ModelConfig(z_dim=4, g_hidden=16, d_hidden=16),
                        train=TrainConfig(steps=20, log_every=20, checkpoint_every=20),
                        game=GameConfig(name="bigan")), run_dir=root / "mine", progress=False)
    return {"image": image.run_dir, "rows": root / "rows", "mine": root / "mine", "root": root}


@torch.no_grad()
def direct_scores(run, x):
    """The scorer called directly on x in the networks' units, in one batch."""
    scorer, _, _, _ = load_scorer(run)
    return scorer.eval()(x)[0].double().numpy()


def held_and_test(run):
    config = RunDir(run).config()
    return load_data(config.data, config.seed).anomaly


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_threshold_is_the_held_quantile_written_at_the_end_of_training(runs):
    for name, fpr in (("image", 0.05), ("rows", 0.1)):  # rows: trained with gankit train --fpr 0.1
        run = runs[name]
        saved = json.loads((run / THRESHOLD_FILE).read_text())
        held = np.sort(direct_scores(run, held_and_test(run).held))
        expected = held[int(np.ceil((1 - fpr) * (len(held) - 1)))]  # numpy's "higher": the next observed score
        assert saved["fpr"] == fpr and saved["held"] == len(held)
        assert saved["step"] == read_meta(run / "checkpoints" / "latest.safetensors")["step"]
        assert saved["threshold"] == pytest.approx(expected, rel=1e-5)
        assert saved["held_fpr"] == pytest.approx(np.mean(held > saved["threshold"]))
        assert saved["held_fpr"] <= fpr


def test_threshold_is_computed_again_for_another_step(runs):
    run = runs["image"]
    path = run / THRESHOLD_FILE
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "step": saved["step"] - 1, "threshold": -1.0}))
    record = threshold(run)
    assert record["threshold"] == pytest.approx(saved["threshold"], rel=1e-5)
    assert json.loads(path.read_text())["step"] == saved["step"]


def test_score_an_image_folder_in_file_name_order(runs, tmp_path, capsys):
    run, folder = runs["image"], tmp_path / "images"
    folder.mkdir()
    x = held_and_test(run).test_x[:5]  # [5, 1, 8, 8] in minmax units: pixels are (x + 1) * 127.5
    pixels = ((x + 1) * 127.5).round().clamp(0, 255).byte()
    names = ["b.png", "a.png", "c10.png", "c2.png", "0.png"]  # written out of order
    for name, image in zip(names, pixels):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / name)
    assert main(["score", str(run), "--input", str(folder), "--out", str(tmp_path / "s.csv")]) == 0
    rows = read_csv(tmp_path / "s.csv")
    order = sorted(range(5), key=lambda i: names[i])
    assert [r["input"] for r in rows] == [names[i] for i in order]
    expected = direct_scores(run, pixels[order].float() / 127.5 - 1)
    t = json.loads((run / THRESHOLD_FILE).read_text())["threshold"]
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=1e-5)
    assert [r["flag"] for r in rows] == [str(int(s > t)) for s in expected]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scored 5 inputs" in err[0] and "flagged" in err[0]


def test_score_npy_and_csv_rows_and_threshold_override(runs, tmp_path):
    run = runs["rows"]
    scorer, meta, shift, scale = load_scorer(run)
    raw = held_and_test(run).test_x[:7] * scale + shift  # the data's own units
    np.save(tmp_path / "rows.npy", raw.numpy())
    header = ",".join(meta["data"]["columns"])
    np.savetxt(tmp_path / "rows.csv", raw.numpy(), delimiter=",", header=header, comments="")
    expected = direct_scores(run, (raw - shift) / scale)
    for name in ("rows.npy", "rows.csv"):
        result = gankit.score(run, tmp_path / name, tmp_path / "out.csv")
        rows = read_csv(tmp_path / "out.csv")
        assert [r["input"] for r in rows] == [str(i) for i in range(7)]
        np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=1e-5)
        assert result["n"] == 7 and result["fpr"] == 0.1
    t = float(np.median(expected))  # a threshold that splits these rows
    result = gankit.score(run, tmp_path / "rows.npy", tmp_path / "out.csv", threshold=t)
    assert result["threshold"] == t and result["fpr"] is None
    assert [r["flag"] for r in read_csv(tmp_path / "out.csv")] == [str(int(s > t)) for s in expected]
    assert result["flagged"] == int((expected > t).sum()) == 3


def rank_auroc(y, scores):
    """Mann-Whitney: the share of (anomalous, normal) pairs ranked right, ties counting 1/2."""
    pos, neg = scores[y == 1], scores[y == 0]
    return ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))


def average_precision(y, scores):
    """The mean over the anomalous samples of the precision among those scoring at least as high (no ties)."""
    order = np.argsort(-scores)
    hits = y[order] == 1
    return float(np.mean((np.cumsum(hits) / np.arange(1, len(y) + 1))[hits]))


def test_eval_against_an_independent_computation(runs, capsys):
    run = runs["image"]
    assert main(["eval", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    a = held_and_test(run)
    scores, y = direct_scores(run, a.test_x), a.test_y.numpy()
    assert result["auroc"] == pytest.approx(rank_auroc(y, scores), abs=1e-6)
    assert result["auprc"] == pytest.approx(average_precision(y, scores), abs=1e-6)
    flags = scores > result["threshold"]
    tp, fp, fn = (flags & (y == 1)).sum(), (flags & (y == 0)).sum(), (~flags & (y == 1)).sum()
    assert (result["tp"], result["fp"], result["fn"]) == (tp, fp, fn)
    assert result["precision"] == pytest.approx(tp / (tp + fp)) and result["recall"] == pytest.approx(tp / (tp + fn))
    assert result["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert (result["n_normal"], result["n_anomalous"]) == ((y == 0).sum(), (y == 1).sum())
    assert result["mean_score"]["3"] == pytest.approx(scores[a.test_classes.numpy() == 3].mean(), rel=1e-5)
    assert json.loads((run / "eval.json").read_text())["auroc"] == result["auroc"]


def test_eval_refuses_a_run_without_a_labelled_test_set(runs, capsys):
    with pytest.raises(GankitError, match="no labelled test set"):
        gankit.evaluate(runs["mine"])
    assert main(["eval", str(runs["mine"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gankit score" in err[0]
    assert json.loads((runs["mine"] / THRESHOLD_FILE).read_text())["held"] == 24  # 20% of 120 rows


@pytest.mark.parametrize("case", ["columns", "missing", "suffix", "not a run", "sample"])
def test_cli_mistakes_are_one_line_and_exit_2(runs, tmp_path, capsys, case):
    np.savetxt(tmp_path / "two.csv", np.ones((3, 2)), delimiter=",")
    argv = {"columns": ["score", str(runs["rows"]), "--input", str(tmp_path / "two.csv"), "--out", "x.csv"],
            "missing": ["score", str(runs["rows"]), "--input", str(tmp_path / "none.npy"), "--out", "x.csv"],
            "suffix": ["score", str(runs["rows"]), "--input", str(tmp_path / "two.csv"), "--out", "x.json"],
            "not a run": ["score", str(runs["root"]), "--input", str(tmp_path / "two.csv"), "--out", "x.csv"],
            "sample": ["sample", str(runs["image"]), "--out", str(tmp_path / "x.txt")]}[case]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit: error: ")
    if case == "sample":
        assert "gankit score" in err[0]


def test_pictures_and_report(runs):
    run = runs["image"]
    for name in ("anomaly_extremes", "anomaly_scores"):
        assert (run / "samples" / f"{name}.png").is_file()
        caption = (run / "samples" / f"{name}.caption.txt").read_text().strip()
        assert caption and caption in (run / "report.html").read_text().replace("&#x27;", "'")
    assert (run / "samples" / "step_0000040.png").is_file() and (run / "samples" / "progress.gif").is_file()
    assert (runs["rows"] / "samples" / "anomaly_scores.png").is_file()  # rows: the histograms alone
    assert not (runs["rows"] / "samples" / "anomaly_extremes.png").exists()
