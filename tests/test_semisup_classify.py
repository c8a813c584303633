"""Using a semi-supervised run: gankit classify's CSV, gankit eval's classifier and generator scores, the pictures.

Three tiny runs, trained once for the module: an MLP D on 8x8 digits with 10 labels a class (images, a test
split), an MLP D on a CSV of rows with 5 labels a class (a test split), and the user's partly labelled CSV (empty
label cells; no test set).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.product_loader import load_classifier
from gankit.runs import RunDir
from gankit.semisup_classify import probabilities_of

from conftest import tiny_config

TINY = ["game.name=ssgan", "data.batch_size=50", "game.d_widths=[64,32]", "model.z_dim=16", "model.g_hidden=64",
        "train.d_lr=3e-3", "train.g_lr=3e-3", "game.d_ema=0.9", "train.log_every=20", "train.plot_every=30"]
CENTRES = 3 * np.eye(3, 4)  # three blobs of 4 columns


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("semisup")
    rng = np.random.RandomState(0)
    k = np.arange(180) % 3
    rows = CENTRES[k] + rng.normal(size=(180, 4))
    kept = {"rows.csv": lambda i: True, "mine.csv": lambda i: i // 3 % 3 == 0}  # mine: a third of the rows labelled
    for name, label in kept.items():
        (root / name).write_text("a,b,c,d,label\n" + "".join(
            ",".join(f"{v:.5f}" for v in row) + f",{k[i] if label(i) else ''}\n" for i, row in enumerate(rows)))
    file = ["data.name=file", "data.label_column=label"]
    overrides = {"image": ["data.name=digits", "data.labels_per_class=10", "train.steps=60"],
                 "rows": [*file, f"data.path={root / 'rows.csv'}", "data.labels_per_class=5", "train.steps=30"],
                 "mine": [*file, f"data.path={root / 'mine.csv'}", "data.semisupervised=true", "train.steps=20"]}
    out = {name: gankit.train(gankit.load_config(None, TINY + extra), run_dir=root / name, progress=False).run_dir
           for name, extra in overrides.items()}
    gankit.train(tiny_config("train.steps=2"), run_dir=root / "classic", progress=False)
    return {**out, "classic": root / "classic", "root": root}


def semisup_of(run):
    config = RunDir(run).config()
    return load_data(config.data, config.seed).semisup


@torch.no_grad()
def direct(run, x):
    """load_classifier's own probabilities of x (networks' units), in one batch."""
    classifier, meta, _, _ = load_classifier(run)
    return classifier.eval()(x).double().numpy(), meta["model"]["class_names"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_rows(rows, names, expected, class_names):
    """Rows in order, the probabilities load_classifier gives, summing to 1, the class their argmax."""
    assert [r["input"] for r in rows] == names
    got = np.array([[float(r[f"p_{c}"]) for c in class_names] for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)
    assert [r["class"] for r in rows] == [class_names[k] for k in expected.argmax(1)]
    assert list(rows[0]) == ["input", "class", *(f"p_{c}" for c in class_names)]


def test_classify_an_image_folder_in_file_name_order(runs, tmp_path, capsys):
    run, folder = runs["image"], tmp_path / "images"
    folder.mkdir()
    x = semisup_of(run).test_x[:5]  # [5, 1, 8, 8] in minmax units: pixels are (x + 1) * 127.5
    pixels = ((x + 1) * 127.5).round().clamp(0, 255).byte()
    names = ["b.png", "a.png", "c10.png", "c2.png", "0.png"]  # written out of order
    for name, image in zip(names, pixels):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / name)
    assert main(["classify", str(run), "--input", str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    order = sorted(range(5), key=lambda i: names[i])
    expected, class_names = direct(run, pixels[order].float() / 127.5 - 1)
    check_rows(read_csv(tmp_path / "p.csv"), [names[i] for i in order], expected, class_names)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classified 5 inputs" in err[0] and "D_ema" in err[0]
    # the same pixels as an .npy [N, H, W] of uint8, through the Python API (no file written)
    np.save(tmp_path / "pixels.npy", pixels[order][:, 0].numpy())
    result = gankit.classify(run, tmp_path / "pixels.npy")
    np.testing.assert_allclose(result["probabilities"], expected, rtol=1e-5, atol=1e-7)
    assert result["inputs"] == ["0", "1", "2", "3", "4"] and result["out"] is None
    assert sum(result["counts"].values()) == 5 and result["classes"] == [class_names[k] for k in expected.argmax(1)]


def test_classify_npy_and_csv_rows(runs, tmp_path):
    run = runs["rows"]
    _, meta, shift, scale = load_classifier(run)
    raw = semisup_of(run).test_x[:7] * scale + shift  # the data's own units
    np.save(tmp_path / "rows.npy", raw.numpy())
    header = ",".join(meta["data"]["columns"])
    np.savetxt(tmp_path / "rows.csv", raw.numpy(), delimiter=",", header=header, comments="")
    # the training file's layout: the label column after the others, its cells empty (unlabelled rows)
    (tmp_path / "labelled.csv").write_text("label," + header + "\n" + "".join(
        "," + ",".join(f"{v:.9g}" for v in row) + "\n" for row in raw.numpy()))
    expected, class_names = direct(run, (raw - shift) / scale)
    for name in ("rows.npy", "rows.csv", "labelled.csv"):
        result = gankit.classify(run, tmp_path / name, tmp_path / "out.csv")
        check_rows(read_csv(tmp_path / "out.csv"), [str(i) for i in range(7)], expected, class_names)
        assert result["n"] == 7 and result["out"] == str(tmp_path / "out.csv")


def test_probabilities_leave_every_module_in_its_mode(runs):
    classifier, _, _, _ = load_classifier(runs["image"])
    x = semisup_of(runs["image"]).test_x[:16]
    classifier.train()  # D's Gaussian noise on: a call in training mode would differ from call to call
    first, second = probabilities_of(classifier, x, batch_size=5), probabilities_of(classifier, x)
    np.testing.assert_allclose(first, second, rtol=1e-6)  # eval mode, whatever the batch
    assert all(m.training for m in classifier.modules())


def macro_f1(y, predicted, k):
    """The mean over the classes of 2 TP / (2 TP + FP + FN), a class with no sample and no prediction counting 0."""
    f1 = []
    for c in range(k):
        tp = np.sum((predicted == c) & (y == c))
        wrong = np.sum((predicted == c) != (y == c))
        f1.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return float(np.mean(f1))


def test_eval_against_an_independent_computation(runs, capsys):
    run = runs["image"]
    assert main(["eval", str(run), "--n", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    semi = semisup_of(run)
    probabilities, class_names = direct(run, semi.test_x)
    y, predicted = semi.test_y.numpy(), probabilities.argmax(1)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == y), abs=1e-9)
    assert result["accuracy"] > 0.5  # 60 steps learn digits from 100 labels: the numbers mean something
    assert result["macro_f1"] == pytest.approx(macro_f1(y, predicted, len(class_names)), abs=1e-9)
    matrix = np.array(result["confusion"]["matrix"])
    assert result["confusion"]["classes"] == class_names == [str(d) for d in range(10)]
    assert matrix.sum() == result["n_test"] == len(y) == 599
    assert np.trace(matrix) / result["n_test"] == pytest.approx(result["accuracy"])
    assert matrix[3, 8] == np.sum((y == 3) & (predicted == 8)) and matrix.sum(1).tolist() == np.bincount(y).tolist()
    assert (result["classifier"], result["generator"], result["n_labelled"], result["step"]) == ("D_ema", "G", 100, 60)
    assert result["how"]["features"] == "digits" and result["how"]["n_fake"] == 200
    assert {"fid", "kid_mean", "precision", "recall"} <= set(result["metrics"])
    assert json.loads((run / "eval.json").read_text())["accuracy"] == result["accuracy"]
    # the generator's metrics are those of its own samples: another seed draws others
    other = gankit.evaluate(run, n=200, seed=1, write=False)
    assert other["accuracy"] == result["accuracy"] and other["metrics"]["fid"] != result["metrics"]["fid"]


def test_eval_without_a_test_set_scores_the_generator(runs):
    result = gankit.evaluate(runs["mine"], n=100)
    assert result["n_test"] == 0 and "accuracy" not in result and "confusion" not in result
    assert result["n_labelled"] == 60  # a third of the 180 rows kept their label
    assert "no labelled test set" in result["how"]["test"] and "gankit classify" in result["how"]["test"]
    assert {"fid", "ks_mean"} <= set(result["metrics"]) and result["how"]["n_fake"] == 100


def test_pictures_and_report(runs):
    samples = runs["image"] / "samples"
    for name in ("step_0000000.png", "step_0000030.png", "step_0000060.png", "progress.gif", "confusion.png"):
        assert (samples / name).is_file()
    with Image.open(samples / "step_0000060.png") as im:
        assert im.width > 8 * 64  # 8 samples a row, each enlarged with its label under it
    report = (runs["image"] / "report.html").read_text().replace("&#x27;", "'")
    caption = (samples / "confusion.caption.txt").read_text().strip()
    semi = semisup_of(runs["image"])
    accuracy = np.mean(direct(runs["image"], semi.test_x)[0].argmax(1) == semi.test_y.numpy())
    assert f"Accuracy {accuracy:.1%}" in caption and "599 labelled test samples" in caption
    assert caption in report and "samples/confusion.png" in report
    assert "each with the class the classifier" in report  # the grids' own caption
    rows = sorted(p.name for p in (runs["rows"] / "samples").iterdir())
    assert rows == ["confusion.caption.txt", "confusion.png"]  # rows: the confusion matrix alone
    assert not (runs["mine"] / "samples" / "confusion.png").exists()  # no test set, no matrix


@pytest.mark.parametrize("case", ["not a classifier", "not a run", "missing", "folder for rows", "columns",
                                  "image shape", "suffix", "sample"])
def test_mistakes_are_one_line_and_exit_2(runs, tmp_path, capsys, case):
    np.savetxt(tmp_path / "two.csv", np.ones((3, 2)), delimiter=",")
    np.save(tmp_path / "wide.npy", np.zeros((2, 1, 9, 9), np.uint8))
    rows, image, csv_in = str(runs["rows"]), str(runs["image"]), str(tmp_path / "two.csv")
    argv = {"not a classifier": ["classify", str(runs["classic"]), "--input", csv_in, "--out", "p.csv"],
            "not a run": ["classify", str(runs["root"]), "--input", csv_in, "--out", "p.csv"],
            "missing": ["classify", rows, "--input", str(tmp_path / "none.npy"), "--out", "p.csv"],
            "folder for rows": ["classify", rows, "--input", str(tmp_path), "--out", "p.csv"],
            "columns": ["classify", rows, "--input", csv_in, "--out", "p.csv"],
            "image shape": ["classify", image, "--input", str(tmp_path / "wide.npy"), "--out", "p.csv"],
            "suffix": ["classify", rows, "--input", csv_in, "--out", "p.json"],
            "sample": ["sample", image, "--out", str(tmp_path / "x.npy")]}[case]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit: error: ")
    expected = {"not a classifier": "not a classifier", "not a run": "not a gankit run folder",
                "missing": "not found", "folder for rows": "is a folder", "columns": "has 2 columns",
                "image shape": "has shape (2, 1, 9, 9)", "suffix": "expected a .csv", "sample": "gankit classify"}
    assert expected[case] in err[0]
    with pytest.raises(GankitError):  # the same mistakes from Python
        if case == "not a classifier":
            gankit.classify(runs["classic"], tmp_path / "two.csv")
        elif case == "sample":
            gankit.sample(runs["image"], 4)
        else:
            gankit.classify(argv[1], argv[3], argv[5])
