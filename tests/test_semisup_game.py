"""The semi-supervised game (ssgan): its losses against their closed forms, its networks, a short run that
classifies digits from 10 labels a class, exact repeats and resumes, and its refusals."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.losses import feature_matching_g, implicit_fake_d
from gankit.models.semisup import ClassifierD, build_classifier, semisup_players
from gankit.product_loader import load_classifier, load_generator
from gankit.runs import RunDir

from conftest import check_repeats_and_resumes

SMALL = ["game.d_widths=[64,32]", "model.z_dim=16", "model.g_hidden=64", "data.batch_size=50", "train.d_lr=0.003",
         "train.g_lr=0.003"]


def train(tmp_path, name, steps, *more, callbacks=()):
    config = gankit.load_config(None, ["game.name=ssgan", "data.name=digits", "data.labels_per_class=10",
                                       f"train.steps={steps}", f"train.checkpoint_every={steps}",
                                       "train.log_every=10", *SMALL, *more])
    return gankit.train(config, run_dir=tmp_path / name, progress=False, callbacks=list(callbacks))


def settings(family="mlp", shape=(1, 8, 8)):
    return {"family": family, "shape": list(shape), "classes": 10, "width": 8, "widths": [32, 16],
            "input_noise": 0.3, "hidden_noise": 0.5, "z_dim": 8, "g_hidden": 16, "g_depth": 1,
            "out_activation": "tanh"}


def test_the_unsupervised_loss_is_the_implicit_fake_class_cross_entropy():
    real, fake = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]]), torch.tensor([[-3.0, 1.0, 0.2], [1.0, 1.0, -2.0]])
    z_real, z_fake = real.exp().sum(1), fake.exp().sum(1)  # D(x) = Z / (Z + 1): the fake class's logit is 0
    expected = -0.5 * (z_real / (z_real + 1)).log().mean() - 0.5 * (1 / (z_fake + 1)).log().mean()
    torch.testing.assert_close(implicit_fake_d(real, fake), expected)


def test_feature_matching_is_the_squared_distance_of_the_batch_means():
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 6.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert feature_matching_g(real, fake).item() == pytest.approx(((2 - 0) ** 2 + (4 - 1) ** 2) / 2)


@pytest.mark.parametrize("family", ["mlp", "dcgan"])
def test_d_is_noisy_while_training_and_deterministic_in_eval_mode(family):
    torch.manual_seed(0)
    D, x = ClassifierD(settings(family)), torch.randn(4, 1, 8, 8)
    assert D(x).shape == (4, 10) and D.features(x).shape[0] == 4
    assert not torch.equal(D(x), D(x))  # Gaussian noise on the input and hidden layers
    D.eval()
    torch.testing.assert_close(D(x), D(x), rtol=0, atol=0)
    probabilities = build_classifier(settings(family)).eval()(x)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(4))


def test_the_conv_d_takes_fashion_mnists_side_and_g_makes_images():
    players = semisup_players(settings("dcgan", (1, 28, 28)))
    assert players["D"](torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert players["G"](torch.randn(3, 8)).shape == (3, 1, 28, 28)
    assert semisup_players(settings("mlp", (1, 28, 28)))["G"](torch.randn(3, 8)).shape == (3, 1, 28, 28)


def test_a_short_run_classifies_digits_from_ten_labels_a_class_and_loads_from_its_folder(tmp_path):
    result = train(tmp_path, "run", 150)
    classifier, meta, shift, scale = load_classifier(result.run_dir)
    assert meta["classifier"] == "D_ema" and meta["model"]["class_names"] == [str(k) for k in range(10)]
    data = load_data(gankit.load_config(RunDir(result.run_dir).config_path).data)
    assert len(data.semisup.labelled_y) == 100 and data.y is None
    torch.testing.assert_close(shift, data.shift)
    with torch.no_grad():
        loaded = classifier(data.semisup.test_x)
        trained = result.trainer.product.module(result.trainer).eval()(data.semisup.test_x)
    torch.testing.assert_close(loaded, trained)  # the same probabilities from JSON + safetensors as from the engine
    accuracy = (loaded.argmax(1) == data.semisup.test_y).float().mean().item()
    assert accuracy > 0.8, accuracy  # 599 test digits, 100 labels seen (chance: 0.1)
    with pytest.raises(GankitError, match="semi-supervised classifier"):
        load_generator(result.run_dir)


def test_the_game_repeats_and_resumes_exactly(tmp_path):
    def weights(run):
        tensors, _ = load_checkpoint(RunDir(run).checkpoint_file("latest"), prefix="")
        return {k: v for k, v in tensors.items() if k.split(".")[0] in ("G", "D", "D_ema")}

    check_repeats_and_resumes(lambda name, callbacks=(): train(tmp_path, name, 20, callbacks=callbacks), weights)


@pytest.mark.parametrize("setting,message", [
    ("data.labels_per_class=0", "set data.labels_per_class = N"),
    ("model.family=rnn", "model.family = 'rnn'"),
    ("game.d_ema=1.0", "game.d_ema = 1.0"),
    ("train.ema=0.999", "train.ema"),
    ("game.d_widths=[]", "game.d_widths = []"),
    ("data.normal_class=3", "data.normal_class = '3' cannot be combined with data.labels_per_class"),
])
def test_the_game_refuses_what_it_cannot_use(tmp_path, setting, message):
    with pytest.raises(GankitError, match=re.escape(message)):
        train(tmp_path, "refused", 10, setting)


def test_the_conv_d_refuses_rows(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    path = tmp_path / "iris.csv"
    np.savetxt(path, np.column_stack([iris.data, iris.target]), delimiter=",", fmt="%g")
    config = gankit.load_config(None, ["game.name=ssgan", "data.name=file", f"data.path={path}",
                                       "data.label_column=4", "data.labels_per_class=5", "model.family=dcgan",
                                       "train.steps=5", *SMALL])
    with pytest.raises(GankitError, match="not images"):
        gankit.train(config, run_dir=tmp_path / "rows", progress=False)


def test_the_supervised_baseline_trains_the_same_d_on_the_labels_alone(tmp_path):
    result = train(tmp_path, "baseline", 30, "game.unsupervised_weight=0")
    tensors, _ = load_checkpoint(RunDir(result.run_dir).checkpoint_file("latest"), prefix="")
    torch.manual_seed(0)  # the run's seed: G as it was made, untouched by training
    untouched = semisup_players(result.trainer.product.settings)["G"].state_dict()
    assert all(torch.equal(tensors[f"G.{k}"], v) for k, v in untouched.items())
    record = [line for line in (RunDir(result.run_dir).path / "metrics.jsonl").read_text().splitlines()][-1]
    assert '"acc_labelled"' in record and '"g_loss"' not in record and '"d_unsup"' not in record
