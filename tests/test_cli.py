"""The command line, as a user meets it: run folders, samples, resume, Ctrl-C, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main

TINY = ["--set", "data.n=2000", "--set", "data.batch_size=64", "--set", "model.g_hidden=16",
        "--set", "model.d_hidden=16", "--set", "train.log_every=5", "--set", "train.checkpoint_every=10",
        "--set", "eval.n=500"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    assert main(["train", "ring8", "--steps", "20", "--run-dir", str(tmp_path / "run"), *TINY]) == 0
    run = tmp_path / "run"
    assert "run folder: " + str(run) in capsys.readouterr().out
    config = (run / "config.toml").read_text()
    assert "steps = 20" in config and "n = 2000" in config and f'run_dir = "{run}"' in config
    assert (run / "checkpoints" / "latest.safetensors").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "eval" not in r] == [5, 10, 15, 20]
    evals = [r for r in records if "eval" in r]  # the recipe evaluates at the end of a run
    assert [r["step"] for r in evals] == [20] and evals[0]["eval"]["modes_total"] == 8
    assert (run / "checkpoints" / "best.safetensors").is_file()
    assert {"d_loss", "g_loss", "p_real", "p_fake", "d_grad_norm", "g_grad_norm"} <= records[0].keys()
    plots = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert plots == ["step_0000000.png", "step_0000005.png", "step_0000010.png", "step_0000015.png",
                     "step_0000020.png"]
    assert "finished at step 20" in (run / "report.html").read_text()


def test_plain_progress_lines_when_not_a_terminal(tmp_path, capsys):
    main(["train", "gauss1d", "--steps", "10", "--run-dir", str(tmp_path / "run"), *TINY])
    err = capsys.readouterr().err
    assert "step 5/10  d_loss" in err and "eta" in err


def test_sample_npy_and_csv_are_repeatable(tmp_path, capsys):
    run = str(tmp_path / "run")
    main(["train", "ring8", "--steps", "10", "--run-dir", run, *TINY, "--quiet"])
    for name in ("a.npy", "b.npy"):
        assert main(["sample", run, "--n", "100", "--seed", "3", "--out", str(tmp_path / name)]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (100, 2) and np.array_equal(a, b)
    main(["sample", run, "--n", "100", "--seed", "3", "--out", str(tmp_path / "c.csv")])
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "x0,x1" and len(lines) == 101
    np.testing.assert_allclose(np.loadtxt(tmp_path / "c.csv", delimiter=",", skiprows=1), a, rtol=1e-6)
    assert main(["sample", run, "--out", str(tmp_path / "c.png")]) == 2  # rows of 2 values are no image
    assert "not images; write them to a .npy or .csv file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> str:
    """A conditional image run: 8x8 digits, tiny MLP, 10 steps."""
    run = str(tmp_path_factory.mktemp("digits") / "run")
    assert main(["train", "digits", "--steps", "10", "--run-dir", run, *TINY, "--quiet"]) == 0
    return run


def test_sample_png_is_a_grid_of_the_samples(tmp_path, digits_run):
    assert main(["sample", digits_run, "--n", "64", "--out", str(tmp_path / "grid.png")]) == 0
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.mode == "L" and grid.size == (584, 584)  # 8 x 8 digits with 1 px padding, enlarged 8x


def test_sample_to_a_folder_writes_one_png_per_sample_in_pixels_of_the_data(tmp_path, digits_run):
    assert main(["sample", digits_run, "--n", "12", "--seed", "5", "--out", str(tmp_path / "pngs") + "/"]) == 0
    main(["sample", digits_run, "--n", "12", "--seed", "5", "--out", str(tmp_path / "x.npy")])
    raw = np.load(tmp_path / "x.npy")  # [12, 65]: 64 grey levels 0..16, then the label
    assert raw.shape == (12, 65)
    files = sorted((tmp_path / "pngs").iterdir())
    assert len(files) == 12
    for i, path in enumerate(files):
        assert path.name == f"{i:05d}_{int(raw[i, -1])}.png"  # index, then the class
        with Image.open(path) as im:
            expected = np.clip(np.floor(raw[i, :64].reshape(8, 8) / 16 * 255 + 0.5), 0, 255)
            np.testing.assert_array_equal(np.asarray(im), expected)
    # An existing folder works without the trailing slash.
    assert main(["sample", digits_run, "--n", "3", "--out", str(tmp_path / "pngs")]) == 0


def test_sample_label_by_name_or_index_fixes_the_class(tmp_path, digits_run):
    for out, label in (("a", "7"), ("b", "7"), ("c", "3")):
        assert main(["sample", digits_run, "--n", "4", "--label", label, "--out", str(tmp_path / out) + "/"]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["00000_7.png", "00001_7.png", "00002_7.png", "00003_7.png"]
    pixels = {d: [np.asarray(Image.open(p)) for p in sorted((tmp_path / d).iterdir())] for d in "abc"}
    assert all(np.array_equal(a, b) for a, b in zip(pixels["a"], pixels["b"]))
    assert not all(np.array_equal(a, c) for a, c in zip(pixels["a"], pixels["c"]))  # same noise, other class
    assert main(["sample", digits_run, "--n", "4", "--label", "7", "--out", str(tmp_path / "g.png")]) == 0


def test_image_samples_in_csv_stay_rows_of_pixels(tmp_path, digits_run):
    assert main(["sample", digits_run, "--n", "5", "--out", str(tmp_path / "s.csv")]) == 0
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["x0", "x1"] and len(lines[0].split(",")) == 65 and len(lines) == 6


@pytest.mark.parametrize("args, message", [
    (["--label", "eleven", "--out", "x.png"], "unknown label 'eleven'"),
    (["--n", "0", "--out", "x.png"], "expected a positive number"),
])
def test_sample_png_mistakes_are_one_line(tmp_path, capsys, digits_run, args, message):
    assert main(["sample", digits_run, *args[:-1], str(tmp_path / args[-1])]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_train_on_a_users_csv_without_a_config(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(10, 2, 500), rng.normal(-3, 0.5, 500), rng.integers(0, 3, 500) * 5])
    csv = tmp_path / "table.csv"
    np.savetxt(csv, rows, delimiter=",", header="height,weight,kind", comments="")
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(csv), "--steps", "10", "--run-dir", run, "--quiet",
                 "--set", "data.label_column=kind"]) == 0
    assert main(["sample", run, "--n", "50", "--label", "10", "--out", str(tmp_path / "s.csv")]) == 0
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "height,weight,kind"
    assert all(line.endswith(",10") for line in lines[1:])


def test_resume_continues_to_more_steps(tmp_path):
    run = str(tmp_path / "run")
    main(["train", "ring8", "--steps", "10", "--run-dir", run, *TINY, "--quiet"])
    assert main(["train", "--resume", "--run-dir", run, "--steps", "20", "--quiet"]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "eval" not in r] == [5, 10, 15, 20]
    assert [r["step"] for r in records if "eval" in r] == [10, 20]  # each session's end is evaluated


@pytest.mark.parametrize("args, message", [
    (["train", "ring8", "--set", "train.lrr=1"], "unknown key 'train.lrr'"),
    (["train", "ring8", "--set", "train.g_lr=fast"], "train.g_lr = 'fast': expected a number"),
    (["train", "ring8", "--set", "loss.name=magic"], "loss.name = 'magic': expected one of"),
    (["train", "ring8", "--set", "nonsense"], "expected key=value"),
    (["train", "no_such_recipe"], "neither a config file nor a built-in recipe"),
    (["train", "--data", "missing.csv"], "missing.csv: data file not found"),
    (["train"], "nothing to train"),
    (["train", "."], ".: is a folder; expected a .toml config file"),
    (["train", "--resume", "--run-dir", "nowhere"], "nowhere: run folder not found"),
    (["train", "--resume", "--run-dir", "nowhere", "--seed", "7"], "--seed with --resume: a resumed run keeps its own seed"),
    (["train", "--resume", "--run-dir", "nowhere", "--data", "x.csv", "--nproc", "2"], "--data with --resume"),
    (["sample", "nowhere", "--out", "x.npy"], "nowhere: not a gankit run folder"),
    (["sample", "nowhere", "--out", "x.txt"], "expected a .npy, .csv or .png file name, or a folder"),
])
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("gankit: error: ")


def test_bad_config_file_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nsteps = 'many'\n")
    result = run_cli("train", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"gankit: error: {bad}: train.steps = 'many': expected an integer"


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "train", "ring8", "--steps", "100000", "--run-dir",
                             str(run), *TINY, "--set", "train.checkpoint_every=100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text():
        assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "gankit train --resume --run-dir" in err
    assert "Traceback" not in err
    from gankit.checkpoint import read_meta

    step = read_meta(run / "checkpoints" / "latest.safetensors")["step"]
    assert 0 < step < 100000
    assert main(["train", "--resume", "--run-dir", str(run), "--steps", str(step + 5), "--quiet"]) == 0


def test_python_dash_m_and_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("gankit ")


def test_train_with_the_data_given_by_set_alone(tmp_path):
    """The README's image-folder command: no config file, no recipe, the data described by --set."""
    for i in range(8):
        Image.fromarray(np.full((20, 20, 3), i * 30, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--set", "data.name=images", "--set", f"data.path={tmp_path}", "--set", "model.family=dcgan",
                 "--set", "data.image_size=16", "--set", "data.batch_size=8", "--steps", "2", "--run-dir", str(run),
                 "--quiet", "--set", "eval.every=0"]) == 0
    assert (run / "checkpoints" / "latest.safetensors").is_file()


def test_quiet_training_prints_no_evaluation_lines(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ring8", "--steps", "10", "--run-dir", str(run), "--quiet", "--set", "eval.every=5",
                 "--set", "eval.n=200", "--set", "data.n=2000"]) == 0
    assert "eval step" not in capsys.readouterr().err
    assert sum("eval" in json.loads(line) for line in (run / "metrics.jsonl").open()) == 2  # still measured
