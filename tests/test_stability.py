"""The stabilisers as the trainer uses them: schedules, lazy penalties, historical averaging, feature
matching, augmentation, NaN rollback, and the warnings that say training is in trouble."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import gankit
from gankit.callbacks import Evaluate
from gankit.config import TrainConfig
from gankit.errors import GankitError, TrainingDiverged
from gankit.trainer import HistoricalAverage, Trainer, lr_factor

from conftest import StopAt, tiny_config


def test_lr_factor_closed_forms():
    cfg = TrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine")
    assert [lr_factor(cfg, s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor(cfg, 10) == 1.0
    assert lr_factor(cfg, 60) == pytest.approx(0.5)  # half-way through the cosine
    assert lr_factor(cfg, 35) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(cfg, 110) == pytest.approx(0.0, abs=1e-12)
    linear = TrainConfig(steps=100, lr_schedule="linear")
    assert lr_factor(linear, 25) == 0.75 and lr_factor(TrainConfig(steps=100), 99) == 1.0


def test_trainer_follows_the_schedule(tmp_path):
    config = tiny_config("train.steps=20", "train.lr_schedule=linear", "train.warmup_steps=4", "train.g_lr=1e-3",
                         "train.d_lr=4e-3")
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False, callbacks=[StopAt(12)])
    trainer = result.trainer
    # The last step run was step index 11: lr = base x (1 - (11 - 4) / 16)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 7 / 16))
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(4e-3 * (1 - 7 / 16))


def test_lazy_penalty_runs_every_n_d_updates_with_n_times_the_weight(monkeypatch, tmp_path):
    calls = []

    def spy(D, real, y=None):
        calls.append(len(real))
        return torch.ones((), requires_grad=True)

    monkeypatch.setattr("gankit.games.classic.r1_penalty", spy)
    config = tiny_config("train.steps=8", "train.d_steps=2", "loss.penalty=r1", "loss.penalty_every=4",
                         "loss.gp_weight=3")
    trainer = Trainer(config, gankit.load_data(config.data, 0), *gankit.build_models(config, gankit.load_data(
        config.data, 0))[:2])
    penalties = []
    original = trainer.game.d_penalty

    def record(real, fake, y, ctx):
        out = original(real, fake, y, ctx)
        penalties.append(None if out is None else float(out.detach()))
        return out

    trainer.game.d_penalty = record
    trainer.fit()
    assert len(penalties) == 16 and len(calls) == 4  # D updates 0, 4, 8, 12
    assert [p for p in penalties if p is not None] == [3 * 4 / 2] * 4  # gamma/2 x N


@pytest.mark.parametrize("name", ["relativistic", "relativistic-ls", "relativistic-hinge"])
def test_relativistic_losses_train(name, tmp_path):
    result = gankit.train(tiny_config(f"loss.name={name}"), run_dir=tmp_path / "run", progress=False)
    assert result.stop_reason == "finished" and math.isfinite(result.record["g_loss"])


def test_historical_average_is_the_running_mean():
    layer = nn.Linear(2, 1, bias=False)
    h = HistoricalAverage(layer, weight=0.5)
    values = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]]), torch.tensor([[-1.0, 4.0]])]
    with torch.no_grad():
        start = layer.weight.clone()
        for v in values:
            layer.weight.copy_(v)
            h.update(layer)
    mean = (start + sum(values)) / 4
    torch.testing.assert_close(h.mean[0], mean)
    assert float(h.penalty(layer).detach()) == pytest.approx(0.5 * float((values[-1] - mean).square().sum()))


def test_feature_matching_needs_a_d_with_features(tmp_path):
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x, y=None):
            return self.lin(x).squeeze(1)

    G = nn.Sequential(nn.Linear(4, 2))
    G.forward = lambda z, y=None: nn.Sequential.forward(G, z)  # noqa: E731
    config = tiny_config("loss.feature_matching=1")
    with pytest.raises(GankitError, match="loss.feature_matching needs D.features"):
        Trainer(config, gankit.load_data(config.data, 0), G, Plain())


def test_augment_needs_images(tmp_path):
    with pytest.raises(GankitError, match="DiffAugment transforms images"):
        gankit.train(tiny_config("train.augment=color"), run_dir=tmp_path / "run", progress=False)


def test_d_accuracy_is_logged(tmp_path):
    record = gankit.train(tiny_config(), run_dir=tmp_path / "run", progress=False).record
    assert 0 <= record["d_acc_real"] <= 1 and 0 <= record["d_acc_fake"] <= 1


# --------------------------------------------------------------------------------------------- NaN rollback


class Poison:
    """Sets one of D's weights to NaN after step ``at`` (``times`` times at most): a blow-up on demand."""

    def __init__(self, at: int, times: int = 1):
        self.at, self.times = at, times

    def on_step_end(self, trainer):
        if trainer.step == self.at and self.times:
            self.times -= 1
            with torch.no_grad():
                next(trainer.D.parameters()).view(-1)[0] = float("nan")


def test_a_nan_rolls_back_and_retries_with_lower_learning_rates(tmp_path):
    config = tiny_config("train.steps=30", "train.checkpoint_every=10", "train.log_every=5")
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False, callbacks=[Poison(at=13)])
    trainer = result.trainer
    assert result.stop_reason == "finished" and result.step == 30
    assert trainer.retries == 1 and trainer.lr_scale == 0.5
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(config.train.d_lr * 0.5)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    rollback = [r for r in records if "rollback" in r]
    assert rollback == [{"step": 10, "rollback": {"step": 10, "failed_at": 15, "lr_scale": 0.5}}]
    assert [r["step"] for r in records if "d_loss" in r] == [5, 10, 15, 20, 25, 30]  # the bad 15 replaced
    assert any("back to step 10" in r.get("warning", "") for r in records)
    assert all(math.isfinite(r["d_loss"]) for r in records if "d_loss" in r)
    # The lowered rate is kept in the checkpoint: a resumed run goes on with it.
    resumed = gankit.train(run_dir=tmp_path / "run", resume=True, steps=35, progress=False)
    assert resumed.trainer.lr_scale == 0.5


def test_a_nan_before_any_checkpoint_rolls_back_to_the_start(tmp_path):
    trainer_config = tiny_config("train.steps=12", "train.checkpoint_every=100")
    data = gankit.load_data(trainer_config.data, 0)
    G, D, _ = gankit.build_models(trainer_config, data)
    trainer = Trainer(trainer_config, data, G, D, callbacks=[Poison(at=3)])
    trainer.fit()
    assert trainer.retries == 1 and trainer.step == 12


def test_repeated_nans_stop_with_a_clear_message(tmp_path):
    config = tiny_config("train.steps=30", "train.nan_retries=2")
    with pytest.raises(TrainingDiverged, match=r"after 2 retries with learning rates x0\.25"):
        gankit.train(config, run_dir=tmp_path / "run", progress=False, callbacks=[Poison(at=13, times=10)])
    with pytest.raises(TrainingDiverged, match="training diverged"):
        gankit.train(tiny_config("train.nan_retries=0"), run_dir=tmp_path / "run0", progress=False,
                     callbacks=[Poison(at=3)])


# --------------------------------------------------------------------------------------------- warnings


def test_warns_once_when_d_has_won(tmp_path, capsys):
    config = tiny_config("train.steps=200", "train.d_lr=0.02", "train.g_lr=1e-7", "train.d_steps=3",
                         "train.log_every=5")
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False)
    assert len([w for w in result.trainer.warnings if w.startswith("D has won")]) == 1
    assert capsys.readouterr().err.count("gankit: warning: D has won") == 1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert sum("warning" in r for r in records) == 1
    assert "D has won" in (tmp_path / "run" / "report.html").read_text()


def test_no_warning_for_a_healthy_run(tmp_path):
    result = gankit.train(tiny_config("train.steps=60"), run_dir=tmp_path / "run", progress=False)
    assert result.trainer.warnings == []


def test_warns_once_when_modes_are_lost():
    class FakeTrainer:
        step = 0
        warnings = []

        def warn(self, kind, text):
            if kind not in {k for k, _ in self.warnings}:
                self.warnings.append((kind, text))

    ev = Evaluate.__new__(Evaluate)
    ev.most_modes = {}
    trainer = FakeTrainer()
    for step, covered in ((100, 6), (200, 8), (300, 8), (400, 7), (500, 5)):
        trainer.step = step
        ev.watch_modes(trainer, {"modes_covered": covered, "modes_total": 8})
    assert len(trainer.warnings) == 1
    assert "7 of 8 modes covered at step 400, down from 8 at step 200" in trainer.warnings[0][1]


# --------------------------------------------------------------------------------------------- all at once


STABILISERS = ["model.spectral_norm=true", "model.minibatch_features=4", "model.pack=2", "loss.penalty=r1",
               "loss.penalty_every=2", "loss.gp_weight=0.1", "loss.historical_averaging=0.01",
               "loss.feature_matching=0.5", "train.instance_noise=0.1", "train.lr_schedule=cosine",
               "train.warmup_steps=3", "train.ema=0.9"]


@pytest.mark.parametrize("base", [
    [],  # ring8 rows, MLP
    ["data.name=digits", "model.family=dcgan", "model.g_hidden=8", "model.d_hidden=8", "model.z_dim=8",
     "train.augment=color,translation,cutout", "loss.name=relativistic"],  # images, DCGAN, DiffAugment
], ids=["mlp", "dcgan"])
def test_every_stabiliser_at_once_resumes_exactly(base, tmp_path):
    """An interrupted and resumed run equals an uninterrupted one bit for bit, with every switch on: the
    history means, the schedule, the EMA and the RNG streams of noise and augmentation are all checkpointed."""
    config = tiny_config(*STABILISERS, *base, "train.steps=12", "train.checkpoint_every=4")
    whole = gankit.train(config, run_dir=tmp_path / "whole", progress=False)
    gankit.train(config, run_dir=tmp_path / "parts", progress=False, callbacks=[StopAt(6)])
    parts = gankit.train(run_dir=tmp_path / "parts", resume=True, progress=False)
    assert whole.stop_reason == parts.stop_reason == "finished"
    a, b = whole.trainer.state()[0], parts.trainer.state()[0]
    assert sorted(a) == sorted(b) and any(k.startswith("history.") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert math.isfinite(whole.record["d_loss"])


# --------------------------------------------------------------------------------------------- discrete latent


def test_discrete_latent_picks_equally_likely_categories():
    from gankit.models.mlp import discrete_latent

    z = torch.randn(200_000, 5, generator=torch.Generator().manual_seed(0))
    out = discrete_latent(z, 8)
    assert out.shape == (200_000, 8 + 4)
    torch.testing.assert_close(out[:, 8:], z[:, 1:])  # the rest passes through
    share = out[:, :8].mean(0)
    assert out[:, :8].sum(1).eq(1).all() and (share - 1 / 8).abs().max() < 0.003
    # The category is a step function of z_0: its eighths of the normal distribution.
    edges = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([1 / 8, 2 / 8]))
    assert discrete_latent(torch.tensor([[float(edges[0]) - 1e-3, 0.0], [float(edges[0]) + 1e-3, 0.0]]), 8)[:, :8].argmax(1).tolist() == [0, 1]


def test_latent_classes_in_a_generator_and_its_checks(tmp_path):
    result = gankit.train(tiny_config("model.latent_classes=16"), run_dir=tmp_path / "run", progress=False)
    x, _ = gankit.sample(result.run_dir, 100)
    assert x.shape == (100, 2) and result.trainer.G.net[0].in_features == 4 - 1 + 16
    with pytest.raises(GankitError, match="model.latent_classes = 1: expected 0"):
        tiny_config("model.latent_classes=1")
    with pytest.raises(GankitError, match='model.family = "mlp"'):
        tiny_config("model.latent_classes=4", "model.family=dcgan", "data.name=digits")


@pytest.mark.parametrize("penalty", ["r1", "gp"])
def test_fp16_loss_scale_too_large_for_the_penalty_is_a_skipped_step_not_divergence(penalty):
    """CUDA's fp16 path, run on the CPU (fp16 autocast and an enabled GradScaler set by hand): GradScaler's first
    scale (2^16) overflows the penalty's inner gradient, so the penalty is inf at that step. The scaler must skip
    the step and halve its scale, and the trainer must neither log that inf nor call it divergence."""
    config = tiny_config(f"loss.penalty={penalty}", "train.steps=12", "train.log_every=4", "train.precision=fp32",
                         "train.nan_retries=0")
    data = gankit.load_data(config.data, 0)
    trainer = Trainer(config, data, *gankit.build_models(config, data)[:2])
    trainer.amp_dtype = torch.float16
    trainer.scalers = {g: torch.amp.GradScaler("cpu", init_scale=2.0 ** 16) for g in ("d", "g")}
    start = [p.detach().clone() for p in trainer.D.parameters()]
    records = []
    trainer.callbacks.append(type("Log", (), {"on_log": lambda self, t, r: records.append(r)})())
    trainer.fit()  # raised TrainingDiverged before the penalty's inf was kept out of the logged loss
    assert trainer.scaler_d.get_scale() < 2.0 ** 16  # at least one step was skipped and the scale halved
    assert len(records) == 3 and all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in records)
    assert any(not torch.equal(a, b) for a, b in zip(start, trainer.D.parameters()))  # the later steps applied
