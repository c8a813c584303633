"""Evaluation end to end: generators of known quality, metrics during training, the best checkpoint,
``gankit eval`` on runs and on sample files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gankit
from gankit.checkpoint import read_meta
from gankit.product_loader import eval_samples
from gankit.cli import main
from gankit.config import EvalConfig
from gankit.errors import GankitError
from gankit.metrics import Evaluator, SampleSet, best_key
from gankit.metrics.evaluate import standardise
from gankit.runs import RunDir
from test_metrics import reference_fid


class MixtureG(nn.Module):
    """A 'generator' of ring8 in the networks' space: noise picks a mode (among ``modes``) and a spread."""

    def __init__(self, data, modes=None):
        super().__init__()
        centres = (data.modes - data.shift) / data.scale
        self.register_buffer("centres", centres if modes is None else centres[modes])
        self.spread = data.mode_std / float(data.scale.mean())
        self.w = nn.Parameter(torch.zeros(()))  # a parameter, as a real G has (its device is read)

    def forward(self, z, y=None):
        index = (z[:, 0].abs() * 1000).long() % len(self.centres)
        return self.centres[index] + self.spread * z[:, 1:3] + 0 * self.w


@pytest.fixture(scope="module")
def ring8():
    return gankit.load_data(gankit.load_config(gankit.recipe("ring8")).data, 0)


def test_a_perfect_generator_scores_like_the_data(ring8):
    ev = Evaluator(ring8, EvalConfig(), n_real=2000)
    assert ev.names == ["fid", "kid", "pr", "dc", "modes", "columns"]
    fake = eval_samples(ev, MixtureG(ring8), z_dim=4, n=2000, conditional=False, seed=1)
    m = ev.evaluate(fake)["metrics"]
    assert m["modes_covered"] == 8 and m["high_quality"] > 0.98 and m["mode_kl"] < 0.01  # 2-D: 1 - exp(-9/2) = 0.989
    assert m["fid"] < 0.01 and abs(m["kid_mean"]) < 3 * m["kid_std"] + 1e-4
    assert m["precision"] > 0.9 and m["recall"] > 0.9 and 0.8 < m["density"] < 1.2 and m["coverage"] > 0.9
    assert m["ks_max"] < 0.06


def test_a_collapsed_generator_is_caught(ring8):
    ev = Evaluator(ring8, EvalConfig(), n_real=2000)
    m = ev.evaluate(eval_samples(ev, MixtureG(ring8, modes=[2]), z_dim=4, n=2000, conditional=False))["metrics"]
    assert m["modes_covered"] == 1 and m["mode_kl"] == pytest.approx(math.log(8), rel=1e-6)
    assert m["high_quality"] > 0.98 and m["precision"] > 0.9  # every sample is good...
    assert m["recall"] < 0.2 and m["coverage"] < 0.2  # ...but most of the data is missed
    assert m["fid"] > 0.5


def test_results_do_not_depend_on_the_extraction_batch_size(ring8):
    ev = Evaluator(ring8, EvalConfig(metrics="fid,kid,pr,dc"), n_real=1000)
    fake = eval_samples(ev, MixtureG(ring8), 4, 1000, False, seed=3)
    a = ev.evaluate(SampleSet(fake.x))["metrics"]
    ev.extractor.batch_size = 7
    ev.real.features = standardise(SampleSet(ev.real.x, features=ev.extractor(ev.real.x)[0]), ev.scale).features
    b = ev.evaluate(SampleSet(fake.x))["metrics"]
    assert a == pytest.approx(b, rel=1e-12)


def test_best_key_is_checked():
    assert best_key("auto", ["fid", "pr"]) == "fid"
    assert best_key("none", ["fid"]) is None
    assert best_key("coverage", ["dc"]) == "coverage"
    with pytest.raises(GankitError, match="not computed"):
        best_key("coverage", ["fid"])
    with pytest.raises(GankitError, match="eval.best = 'fidd'"):
        best_key("fidd", ["fid"])


def test_metrics_during_training_and_the_best_checkpoint(tmp_path, tiny):
    config = tiny("train.steps=30", "eval.every=10", "eval.n=300", "eval.metrics=fid,modes", "eval.best=fid")
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False)
    run = RunDir(result.run_dir)
    evals = [r for r in run.read_metrics() if "eval" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert all(r["features"] == "standardized" and r["n_fake"] == 300 for r in evals)  # auto, for rows
    fids = [r["eval"]["fid"] for r in evals]
    best = read_meta(run.best_checkpoint)
    assert best["eval"]["fid"] == min(fids) and best["step"] == evals[fids.index(min(fids))]["step"]
    # The best checkpoint is a full one: gankit sample and gankit eval read it.
    x, _ = gankit.sample(run.path, 10, checkpoint="best")
    assert x.shape == (10, 2)
    page = run.report_path.read_text()
    assert 'id="evaluation"' in page and "report_eval.png" in page and (run.path / "report_eval.png").is_file()

    # A resumed run appends evaluations and only replaces the best with a better one.
    gankit.train(run_dir=run.path, resume=True, steps=40, progress=False)
    evals2 = [r for r in run.read_metrics() if "eval" in r]
    assert [r["step"] for r in evals2] == [10, 20, 30, 40]
    assert read_meta(run.best_checkpoint)["eval"]["fid"] == min(r["eval"]["fid"] for r in evals2)


def test_bad_eval_settings_stop_before_any_file(tmp_path, tiny):
    with pytest.raises(GankitError, match="unknown metric 'fud'"):
        gankit.train(tiny("eval.every=10", "eval.metrics=fid,fud"), run_dir=tmp_path / "a", progress=False)
    with pytest.raises(GankitError, match="'is' needs a classifier"):
        gankit.train(tiny("eval.every=10", "eval.metrics=is"), run_dir=tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_module):
    run = tmp_path_factory.mktemp("eval") / "run"
    gankit.train(tiny_module("train.steps=20"), run_dir=run, progress=False)
    return run


@pytest.fixture(scope="module")
def tiny_module():
    from conftest import tiny_config

    return tiny_config


def test_cli_eval_of_a_run_prints_and_writes_json(trained, capsys):
    assert main(["eval", str(trained), "--n", "500", "--metrics", "fid,kid,modes", "--seed", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((trained / "eval.json").read_text())
    assert printed == written
    assert set(printed["metrics"]) == {"fid", "kid_mean", "kid_std", "modes_covered", "modes_total", "high_quality",
                                       "mode_kl"}
    how = printed["how"]
    assert (how["features"], how["n_real"], how["n_fake"], how["seed"]) == ("standardized", 500, 500, 2)
    assert how["settings"]["kid"] == {"kernel": "(x.y/d + 1)^3", "subsets": 100, "subset_size": 250}
    assert printed["step"] == 20 and printed["checkpoint"] == "latest"
    # Same seed, same numbers.
    assert main(["eval", str(trained), "--n", "500", "--metrics", "fid,kid,modes", "--seed", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == printed["metrics"]


def test_eval_scores_the_samples_gankit_sample_draws(trained):
    """One seed, one set of samples: what `gankit eval --seed S` scores is what `gankit sample --seed S` writes."""
    config = gankit.load_config(trained / "config.toml")
    G, meta, _, _ = gankit.load_generator(trained)
    ev = Evaluator(gankit.load_data(config.data, config.seed), config.eval, n_real=100)
    fake = eval_samples(ev, G, meta["model"]["z_dim"], 300, conditional=False, seed=5)
    x, _ = gankit.sample(trained, 300, seed=5)
    np.testing.assert_allclose(fake.x.numpy(), x, rtol=1e-6, atol=1e-7)


def test_cli_eval_of_two_sample_files(tmp_path, capsys):
    r = np.random.default_rng(0)
    real, fake = r.normal(0, 1, (1000, 3)), r.normal(0.5, 1, (800, 3))
    np.save(tmp_path / "real.npy", real)
    np.savetxt(tmp_path / "fake.csv", fake, delimiter=",", header="a,b,c", comments="", fmt="%.17g")
    assert main(["eval", "--real", str(tmp_path / "real.npy"), "--fake", str(tmp_path / "fake.csv"),
                 "--out", str(tmp_path / "out.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads((tmp_path / "out.json").read_text())
    mean, std = real.mean(0), real.std(0, ddof=1)  # auto: rows are scored on columns standardised by the real set
    assert out["metrics"]["fid"] == pytest.approx(reference_fid((real - mean) / std, (fake - mean) / std), rel=1e-6)
    assert out["how"]["features"] == "standardized" and "standardised" in out["how"]["note"]
    assert out["how"]["n_real"] == 1000 and out["how"]["n_fake"] == 800
    assert set(out["columns"]) == {"0", "1", "2"}
    assert out["columns"]["2"]["fake_mean"] == pytest.approx(fake[:, 2].mean())


def sqrtm_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance by its textbook formula, |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2), with scipy's
    sqrtm: written out here, apart from gankit's (eigenvalue) computation and from test_metrics' reference."""
    import scipy.linalg

    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real))


def test_cli_eval_raw_is_the_standard_frechet_formula_and_standardized_is_it_in_standard_units(tmp_path, capsys):
    """8 columns of very different units: --features raw scores the values as given (the number any other tool
    gives for these two files), --features standardized the columns in units of the real samples' mean and std."""
    r = np.random.default_rng(8)
    units = np.array([1e-3, 0.1, 1.0, 1.0, 10.0, 100.0, 1e3, 1e4])
    mix = r.normal(size=(8, 8)) * 0.3 + np.eye(8)  # correlated columns
    real = (r.normal(0, 1, (1200, 8)) @ mix) * units + 5 * units
    fake = (r.normal(0.2, 1.1, (900, 8)) @ mix) * units + 5 * units
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "fake.npy", fake)
    out = {}
    for features in ("raw", "standardized"):
        assert main(["eval", "--real", str(tmp_path / "real.npy"), "--fake", str(tmp_path / "fake.npy"),
                     "--features", features, "--metrics", "fid"]) == 0
        out[features] = json.loads(capsys.readouterr().out)
    assert out["raw"]["metrics"]["fid"] == pytest.approx(sqrtm_fid(real, fake), rel=1e-6)
    mean, std = real.mean(0), real.std(0, ddof=1)
    assert out["standardized"]["metrics"]["fid"] == pytest.approx(sqrtm_fid((real - mean) / std, (fake - mean) / std),
                                                                  rel=1e-6)
    assert out["raw"]["metrics"]["fid"] > 1e6 * out["standardized"]["metrics"]["fid"]  # the 1e4 column decides
    for features, word in (("raw", "as given"), ("standardized", "standardised by the real samples")):
        assert out[features]["how"]["features"] == features and word in out[features]["how"]["note"]


def test_standardized_features_refuse_images():
    with pytest.raises(GankitError, match="features 'standardized' standardise the columns of rows; these samples "
                                          "are images"):
        gankit.metrics.compare(torch.rand(10, 1, 8, 8), torch.rand(10, 1, 8, 8), "standardized", "fid")


def test_cli_eval_of_two_image_folders(tmp_path, capsys):
    r = np.random.default_rng(1)
    for name, level in (("real", 60), ("fake", 200)):
        (tmp_path / name).mkdir()
        for i in range(12):
            pixels = np.clip(r.normal(level, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(tmp_path / name / f"{i}.png")
    assert main(["eval", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                 "--metrics", "fid,pr"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["how"]["features"] == "raw" and "GANKIT_INCEPTION_WEIGHTS" in out["how"]["note"]
    assert out["metrics"]["precision"] == 0.0 and out["metrics"]["fid"] > 64 * 0.25  # [0, 1] pixels, far apart


@pytest.mark.parametrize("args, message", [
    (["--real", "a.npy"], "--real and --fake go together"),
    ([], "nothing to evaluate"),
    (["--real", "{tmp}/nope.npy", "--fake", "{tmp}/nope.npy"], "nope.npy: file not found"),
    (["--real", "{tmp}/x.txt", "--fake", "{tmp}/x.txt"], "expected a .npy or .csv file, or a folder"),
    (["--real", "{tmp}/junk.npy", "--fake", "{tmp}/junk.npy"], "junk.npy: not a .npy array of numbers"),
    (["{run}", "--metrics", "fid,bogus"], "unknown metric 'bogus'"),
    (["{run}", "--features", "inception"], "GANKIT_INCEPTION_WEIGHTS"),
    (["{run}", "--checkpoint", "best"], "best.safetensors: checkpoint not found"),
    (["{run}", "--n", "0"], "--n 0: expected at least 2 samples"),
    (["{run}", "--n", "1"], "--n 1: expected at least 2 samples"),
    (["--real", "{tmp}/one.npy", "--fake", "{tmp}/one.npy"], "one.npy: holds 1 sample(s); the metrics need at least 2"),
])
def test_cli_eval_errors_are_one_line(args, message, tmp_path, trained, capsys, monkeypatch):
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    (tmp_path / "junk.npy").write_text("not numpy")
    np.save(tmp_path / "one.npy", np.zeros((1, 2), dtype=np.float32))
    args = [a.format(tmp=tmp_path, run=trained) for a in args]
    assert main(["eval", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


class DigitsG(nn.Module):
    """A conditional 'generator' that returns a real image of the class asked for (or always of ``fixed``)."""

    def __init__(self, data, fixed=None):
        super().__init__()
        self.register_buffer("x", data.x)
        self.register_buffer("y", data.y)
        self.fixed = fixed

    def forward(self, z, y):
        y = torch.full_like(y, self.fixed) if self.fixed is not None else y
        out = []
        for zi, yi in zip(z, y):
            rows = (self.y == yi).nonzero()[:, 0]
            out.append(self.x[rows[int(zi[0].abs() * 1e4) % len(rows)]])
        return torch.stack(out)


@pytest.fixture(scope="module")
def digits16():
    return gankit.load_data(gankit.load_config(gankit.recipe("digits-dcgan")).data, 0)  # enlarged to 16x16


def test_digits_classifier_metrics_of_good_and_collapsed_conditional_generators(digits16):
    ev = Evaluator(digits16, EvalConfig(), n_real=2000)
    assert ev.extractor.name == "digits" and ev.names == ["fid", "kid", "pr", "dc", "is", "classes"]
    good = ev.evaluate(eval_samples(ev, DigitsG(digits16), 8, 1000, conditional=True, seed=1))["metrics"]
    assert good["class_accuracy"] > 0.97 and good["classes_covered"] == 10 and good["class_kl"] < 0.02
    assert good["fid"] < 2.0 and good["is_mean"] > 8.5  # FID of 1,000 vs 1,797 real images: biased above 0
    one = ev.evaluate(eval_samples(ev, DigitsG(digits16, fixed=3), 8, 1000, conditional=True, seed=1))["metrics"]
    assert one["class_accuracy"] < 0.15 and one["classes_covered"] <= 2 and one["class_kl"] > 2.0
    assert one["fid"] > 20 * good["fid"] and one["is_mean"] < 1.5 and one["recall"] < 0.3


def test_inception_features_from_a_user_weights_file(tmp_path, capsys, monkeypatch):
    """The path through the registry and the CLI; the network itself is checked in test_inception.py."""
    from gankit.metrics.inception import FIDInceptionV3

    torch.manual_seed(0)
    weights = tmp_path / "pt_inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    r = np.random.default_rng(2)
    np.save(tmp_path / "a.npy", r.integers(0, 256, (6, 16, 16), dtype=np.uint8))
    np.save(tmp_path / "b.npy", r.integers(0, 256, (6, 16, 16), dtype=np.uint8))
    monkeypatch.setenv("GANKIT_INCEPTION_WEIGHTS", str(weights))
    assert main(["eval", "--real", str(tmp_path / "a.npy"), "--fake", str(tmp_path / "b.npy"),
                 "--metrics", "fid,is"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["how"]["features"] == "inception" and out["how"]["extractor"]["weights"] == str(weights)
    assert math.isfinite(out["metrics"]["fid"]) and 1.0 <= out["metrics"]["is_mean"] <= 1008


def test_auto_features_pass_over_a_classifier_that_cannot_take_the_images():
    """digits made RGB (data.channels = 3): the bundled grey digits classifier does not apply, so auto falls back
    (to raw pixels here) instead of refusing the evaluation."""
    from gankit.config import DataConfig

    data = gankit.load_data(DataConfig(name="digits", channels=3), 0)
    ev = Evaluator(data, EvalConfig(metrics="fid"), n_real=200)
    assert ev.extractor.name == "raw"
    assert "fid" in ev.evaluate(SampleSet(ev.real.x[:100].clone()))["metrics"]
