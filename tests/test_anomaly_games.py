"""The anomaly games (EGBAD / BiGAN, GANomaly, f-AnoGAN): the scores are the papers' formulas, the scorer is rebuilt from
JSON and safetensors alone, a short run separates malignant from benign rows, every game repeats and resumes
bit-identically, and the settings a game cannot use are refused."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.config import load_config
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.models.anomaly import anomaly_players, build_scorer
from gankit.product_loader import load_generator, load_scorer
from gankit.runs import RunDir

from conftest import check_repeats_and_resumes

ROWS = ["data.name=breast-cancer", "data.normal_class=benign", "data.normal_holdout=0.1", "data.batch_size=32",
        "model.z_dim=8", "model.g_hidden=32", "model.d_hidden=32", "train.log_every=20",
        "train.checkpoint_every=1000", "loss.pixel_weight=50"]


def settings(game: str, shape=(1, 8, 8), **more) -> dict:
    return {"game": game, "shape": list(shape), "z_dim": 6, "g_hidden": 8, "d_hidden": 8, "depth": 1,
            "out_activation": "tanh", "score_weight": 0.1, "score_term": "fm", "feature_weight": 1.0, **more}


GAME = {"bigan": [], "ganomaly": [], "fanogan": ["loss.name=wgan-gp", "train.d_steps=2"]}


def train(tmp_path, name: str, game: str, steps: int, *more: str, callbacks=()):
    overrides = [*ROWS, f"game.name={game}", f"train.steps={steps}", *GAME[game], *more]
    return gankit.train(run_dir=tmp_path / name, overrides=overrides, progress=False, callbacks=callbacks)


@pytest.mark.parametrize("term", ["fm", "ce"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (5,)])
def test_egbad_score_is_the_papers_formula(term, shape):
    torch.manual_seed(0)
    scorer = build_scorer(settings("bigan", shape, score_term=term, score_weight=0.3)).eval()
    x = torch.randn(7, *shape)
    with torch.no_grad():
        score, rec = scorer(x)
        z = scorer.E(x)
        expected_rec = scorer.G(z)
        residual = (x - expected_rec).abs().flatten(1).sum(1)  # ||x - G(E(x))||_1
        if term == "fm":  # ||f(x, E(x)) - f(G(E(x)), E(x))||_1 on D's intermediate layer
            d_term = (scorer.D.features(x, z) - scorer.D.features(expected_rec, z)).abs().sum(1)
        else:  # D's cross-entropy of the reconstruction against the label "real"
            d_term = F.binary_cross_entropy_with_logits(scorer.D(expected_rec, z), torch.ones(7), reduction="none")
    assert rec.shape == x.shape and score.shape == (7,)
    torch.testing.assert_close(rec, expected_rec)
    torch.testing.assert_close(score, 0.7 * residual + 0.3 * d_term)


def test_ganomaly_score_is_the_latent_distance():
    torch.manual_seed(0)
    scorer = build_scorer(settings("ganomaly")).eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        score, rec = scorer(x)
        z = scorer.G.encoder(x)
        x_hat = scorer.G.decoder(z)
        z_hat = scorer.G.reencoder(x_hat)
    torch.testing.assert_close(rec, x_hat)
    torch.testing.assert_close(score, ((z - z_hat) ** 2).mean(1))  # ||G_E(x) - E(G(x))||^2 / z_dim


def test_fanogan_score_is_izi_f():
    torch.manual_seed(0)
    scorer = build_scorer(settings("fanogan", feature_weight=0.5)).eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        score, rec = scorer(x)
        expected_rec = scorer.G(scorer.E(x))
        image = ((x - expected_rec) ** 2).flatten(1).mean(1)  # ||x - G(E(x))||^2 / n
        features = ((scorer.D.features(x) - scorer.D.features(expected_rec)) ** 2).mean(1)  # / n_d
    torch.testing.assert_close(rec, expected_rec)
    torch.testing.assert_close(score, image + 0.5 * features)


def test_fanogans_knn_score_is_the_mean_distance_to_the_nearest_memory_features():
    torch.manual_seed(0)
    scorer = build_scorer(settings("fanogan", score_term="knn", memory=12)).eval()
    scorer.memory.normal_()  # [12, n_d] stand-ins for the critic's features of normal training samples
    x = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        score, rec = scorer(x)
        distances = torch.cdist(scorer.D.features(x), scorer.memory)  # [6, 12] Euclidean
    torch.testing.assert_close(score, distances.sort(1).values[:, :5].mean(1), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rec, scorer.G(scorer.E(x)))


@pytest.mark.parametrize("game", ["bigan", "fanogan"])
def test_the_players_keep_the_checkpoint_layout(game):
    players = anomaly_players(settings(game))
    scorer = build_scorer(settings(game))
    expected = {f"{name}.{k}" for name, m in players.items() for k in m.state_dict()}
    assert set(scorer.state_dict()) == expected  # G.*, E.*, D.*: the engine's checkpoint keys


@pytest.mark.parametrize("game,more", [("bigan", ()), ("ganomaly", ()), ("fanogan", ()),
                                       ("fanogan", ("game.score_term=knn", "game.memory=100"))])
def test_a_short_run_separates_malignant_rows_and_its_scorer_loads_from_the_run(tmp_path, game, more):
    result = train(tmp_path, game, game, 300, *more)
    scorer, meta, shift, scale = load_scorer(result.run_dir)
    assert meta["model"]["kind"] == "scorer" and meta["data"]["anomaly"]["normal"] == "benign"
    data = load_data(load_config(RunDir(result.run_dir).config_path).data)
    test_x, test_y = data.anomaly.test_x, data.anomaly.test_y
    with torch.no_grad():
        loaded = scorer(test_x)[0]
        trained = result.trainer.product.module(result.trainer).eval()(test_x)[0]
    torch.testing.assert_close(loaded, trained)  # the same scores from JSON + safetensors as from the engine
    auroc = roc_auc_score(test_y.numpy(), loaded.numpy())
    assert auroc > 0.85, auroc  # malignant nuclei score higher than benign ones (chance: 0.5)
    with pytest.raises(GankitError, match="anomaly scorer"):
        load_generator(result.run_dir)


@pytest.mark.parametrize("game", ["bigan", "ganomaly", "fanogan"])
def test_each_game_repeats_and_resumes_exactly(tmp_path, game):  # fanogan resumes across its stage boundary
    def weights(run):
        tensors, _ = load_checkpoint(RunDir(run).checkpoint_file("latest"), prefix="")
        return {k: v for k, v in tensors.items() if k.split(".")[0] in ("G", "E", "D")}

    check_repeats_and_resumes(lambda name, callbacks=(): train(tmp_path, name, game, 24, callbacks=callbacks), weights)


@pytest.mark.parametrize("game,setting,message", [
    ("bigan", "data.normal_holdout=0", "data.normal_holdout = 0.0"),
    ("bigan", "game.fpr=1.5", "game.fpr = 1.5"),
    ("ganomaly", "train.ema=0.999", "train.ema"),
    ("ganomaly", "loss.name=wgan-gp", "loss.name = 'wgan-gp'"),
    ("fanogan", "loss.name=nonsaturating", 'expected "wgan-gp"'),
    ("fanogan", "game.encoder_steps=30", "game.encoder_steps = 30: expected fewer than train.steps"),
    ("bigan", "game.score_term=knn", 'game.score_term = \'knn\': game.name = "bigan" scores by auto'),
    ("bigan", "model.family=dcgan", "not images"),
])
def test_the_games_refuse_what_they_cannot_use(tmp_path, game, setting, message):
    with pytest.raises(GankitError, match=re.escape(message)):
        train(tmp_path, "refused", game, 30, setting)


def test_fanogans_knn_memory_travels_with_the_export_and_onnx(tmp_path):
    result = train(tmp_path, "knn", "fanogan", 30, "game.score_term=knn", "game.memory=50")
    gankit.export(result.run_dir, tmp_path / "export", formats=("safetensors", "onnx"))
    model = gankit.load(tmp_path / "export")
    scorer, _, _, _ = load_scorer(result.run_dir)
    data = load_data(load_config(RunDir(result.run_dir).config_path).data)
    with torch.no_grad():
        expected = scorer(data.anomaly.test_x)[0].numpy()
    rows = data.to_raw(data.anomaly.test_x).numpy()  # the data's units, as a user sends them
    for backend in ("torch", "onnx"):
        scores, _ = model.score(rows, backend=backend)
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert scorer.memory.shape[0] == 50 and scorer.memory.abs().sum() > 0  # the critic's features, not zeros
