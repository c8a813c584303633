"""The training loop: determinism, exact resume, k D steps, divergence, custom modules, conditioning."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import gankit
from gankit.checkpoint import load_checkpoint, read_meta
from gankit.errors import GankitError, TrainingDiverged

from conftest import StopAt, tiny_config


def checkpoint_tensors(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")[0]


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"tensor {k} differs"


def test_same_seed_gives_bit_identical_checkpoints(tmp_path):
    for name in ("a", "b"):
        gankit.train(tiny_config(), run_dir=tmp_path / name, progress=False)
    assert_same_tensors(checkpoint_tensors(tmp_path / "a"), checkpoint_tensors(tmp_path / "b"))


def test_other_seed_gives_other_weights(tmp_path):
    gankit.train(tiny_config(), run_dir=tmp_path / "a", progress=False)
    gankit.train(tiny_config("seed=1"), run_dir=tmp_path / "b", progress=False)
    a, b = checkpoint_tensors(tmp_path / "a"), checkpoint_tensors(tmp_path / "b")
    assert not torch.equal(a["G.net.0.weight"], b["G.net.0.weight"])


@pytest.mark.parametrize("overrides", [(), ("loss.name=wgan-gp", "train.d_steps=2"), ("data.name=digits",)])
def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, overrides):
    config = tiny_config(*overrides, "train.checkpoint_every=7")
    full = gankit.train(config, run_dir=tmp_path / "full", progress=False)
    part = gankit.train(config, run_dir=tmp_path / "part", progress=False, callbacks=[StopAt(12)])
    assert part.stop_reason == "stopped" and part.step == 12
    assert read_meta(tmp_path / "part" / "checkpoints" / "latest.safetensors")["step"] == 12
    resumed = gankit.train(run_dir=tmp_path / "part", resume=True, progress=False)
    assert resumed.step == full.step == 20
    assert_same_tensors(checkpoint_tensors(tmp_path / "full"), checkpoint_tensors(tmp_path / "part"))

    def losses(run):
        return [(r["step"], r["d_loss"], r["g_loss"]) for r in map(json.loads, (tmp_path / run / "metrics.jsonl").open())]

    # Logged values agree too, except the window cut short by the stop at step 12.
    assert [r for r in losses("full") if r[0] != 15] == [r for r in losses("part") if r[0] not in (12, 15)]


def test_resume_extends_a_finished_run(tmp_path):
    gankit.train(tiny_config(), run_dir=tmp_path / "run", progress=False)
    result = gankit.train(run_dir=tmp_path / "run", resume=True, steps=30, progress=False)
    assert result.step == 30
    assert "steps = 30" in (tmp_path / "run" / "config.toml").read_text()


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(GankitError, match="no checkpoint"):
        gankit.train(run_dir=tmp_path, resume=True, progress=False)


def test_new_run_never_overwrites_an_old_one(tmp_path):
    gankit.train(tiny_config(), run_dir=tmp_path / "run", progress=False)
    with pytest.raises(GankitError, match="already holds a run"):
        gankit.train(tiny_config(), run_dir=tmp_path / "run", progress=False)


def test_k_discriminator_steps_per_generator_step(tmp_path):
    result = gankit.train(tiny_config("train.d_steps=3"), run_dir=tmp_path, progress=False)
    assert result.trainer.opt_d.state_dict()["state"][0]["step"].item() == 60
    assert result.trainer.opt_g.state_dict()["state"][0]["step"].item() == 20


def test_separate_optimizers_with_their_own_settings(tmp_path):
    config = tiny_config("train.g_lr=1e-3", "train.d_lr=5e-4", "train.g_betas=[0.1, 0.9]", "train.d_betas=[0.0, 0.99]")
    trainer = gankit.train(config, run_dir=tmp_path, progress=False).trainer
    g, d = trainer.opt_g.param_groups[0], trainer.opt_d.param_groups[0]
    assert (g["lr"], tuple(g["betas"]), d["lr"], tuple(d["betas"])) == (1e-3, (0.1, 0.9), 5e-4, (0.0, 0.99))
    assert {id(p) for p in trainer.G.parameters()} == {id(p) for p in g["params"]}


def test_discriminator_wins_on_a_trivially_separable_case(tmp_path):
    # Real data at +5, G barely learns: D must learn to tell them apart and its loss must fall.
    data = gankit.from_arrays(5 + 0.1 * torch.randn(512, 1), normalize="none")
    config = tiny_config("train.g_lr=1e-9", "train.d_lr=1e-2", "train.steps=60", "train.log_every=10")
    gankit.train(config, data=data, run_dir=tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    assert records[-1]["d_loss"] < 0.1 < records[0]["d_loss"]
    assert records[-1]["p_real"] > 0.95 and records[-1]["p_fake"] < 0.05


def test_generator_moves_to_the_data(tmp_path):
    data = gankit.from_arrays(3 + 0.5 * torch.randn(4096, 1, generator=torch.Generator().manual_seed(0)),
                              normalize="none")
    config = tiny_config("train.steps=400", "train.g_lr=2e-3", "train.d_lr=2e-3", "train.log_every=100")
    gankit.train(config, data=data, run_dir=tmp_path, progress=False)
    x, _ = gankit.sample(tmp_path, 2000, seed=0)
    assert abs(x.mean() - 3) < 0.3


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    class Poison:
        def on_step_end(self, trainer):
            if trainer.step == 12:
                with torch.no_grad():
                    trainer.G.net[0].weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"between steps 10 and 15.*step 10"):
        gankit.train(tiny_config(), run_dir=tmp_path, progress=False, callbacks=[Poison()])
    tensors, meta = load_checkpoint(tmp_path / "checkpoints" / "latest.safetensors")
    assert meta["step"] == 10
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if t.is_floating_point())


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "wasserstein", "wgan-gp", "least-squares", "hinge"])
def test_every_loss_trains(tmp_path, loss):
    result = gankit.train(tiny_config(f"loss.name={loss}"), run_dir=tmp_path, progress=False)
    assert result.step == 20
    if loss == "wasserstein":  # weight clipping keeps every critic weight in [-c, c]
        assert max(p.abs().max().item() for p in result.trainer.D.parameters()) <= 0.01


def test_users_own_modules_train(tmp_path):
    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))

        def forward(self, z, y=None):
            return self.net(z)

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

        def forward(self, x, y=None):
            return self.net(x).squeeze(1)

    result = gankit.train(tiny_config(), G=G(), D=D(), run_dir=tmp_path, progress=False)
    assert result.step == 20
    assert isinstance(result.trainer.G, G)
    with pytest.raises(GankitError, match="custom generator"):
        gankit.sample(tmp_path, 10)


def test_conditional_model_follows_the_requested_label(tmp_path):
    # Two classes far apart: after training, samples asked for class "b" must sit near its rows.
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(1024, 2, generator=gen) * 0.1 - 2, torch.randn(1024, 2, generator=gen) * 0.1 + 2])
    y = torch.cat([torch.zeros(1024), torch.ones(1024)]).long()
    data = gankit.from_arrays(x, y, normalize="none", class_names=["a", "b"])
    config = tiny_config("train.steps=300", "train.g_lr=2e-3", "train.d_lr=2e-3", "model.g_hidden=32",
                         "model.d_hidden=32", "train.log_every=100")
    result = gankit.train(config, data=data, run_dir=tmp_path, progress=False)
    assert result.trainer.conditional
    xb, yb = gankit.sample(tmp_path, 500, label="b")
    xa, ya = gankit.sample(tmp_path, 500, label=0)
    assert (yb == 1).all() and (ya == 0).all()
    assert xb.mean() > 1 and xa.mean() < -1
    with pytest.raises(GankitError, match="unknown label 'c'"):
        gankit.sample(tmp_path, 5, label="c")


def test_ema_follows_G_as_a_moving_average_and_is_what_samples_come_from(tmp_path):
    from gankit.trainer import make_ema, update_ema

    G = nn.Linear(2, 2)
    ema = make_ema(G)
    before = ema.weight.clone()
    with torch.no_grad():
        G.weight.add_(1.0)
    update_ema(ema, G, 0.9)
    assert torch.allclose(ema.weight, 0.9 * before + 0.1 * G.weight)
    assert not any(p.requires_grad for p in ema.parameters())

    config = tiny_config("train.ema=0.9")
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False)
    tensors = checkpoint_tensors(tmp_path / "run")
    assert not torch.equal(tensors["G_ema.net.0.weight"], tensors["G.net.0.weight"])
    G_loaded = gankit.load_generator(tmp_path / "run")[0]
    assert torch.equal(G_loaded.net[0].weight, tensors["G_ema.net.0.weight"])
    assert result.trainer.sampling_G is result.trainer.G_ema


def test_resume_with_ema_matches_uninterrupted(tmp_path):
    config = tiny_config("train.ema=0.95", "train.checkpoint_every=7")
    gankit.train(config, run_dir=tmp_path / "full", progress=False)
    gankit.train(config, run_dir=tmp_path / "part", progress=False, callbacks=[StopAt(9)])
    gankit.train(run_dir=tmp_path / "part", resume=True, progress=False)
    assert_same_tensors(checkpoint_tensors(tmp_path / "full"), checkpoint_tensors(tmp_path / "part"))


def test_a_run_that_fails_its_checks_leaves_no_folder(tmp_path):
    """The device, batch size and settings are checked before the run folder is made: no half-made folder to
    block the name (it held config.toml and an empty checkpoints/ before)."""
    for bad in ("data.batch_size=5000", "train.augment=translation"):
        with pytest.raises(GankitError):
            gankit.train(tiny_config(bad), run_dir=tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()


def test_a_folder_whose_run_never_checkpointed_says_so(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text("")
    with pytest.raises(GankitError, match="stopped before its first checkpoint.*delete the folder"):
        gankit.train(tiny_config(), run_dir=tmp_path / "run", progress=False)


def test_a_run_on_arrays_passed_from_python_records_it_and_asks_for_them_again(tmp_path):
    """Its config.toml said ring8 (the defaults' data): evaluate scored against ring8 and a CLI resume trained on
    it. Now it says "array", which loads nothing but a one-line request for the same data."""
    import numpy as np

    from gankit.cli import main

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(1000, 5, 3000), rng.normal(-3, 1, 3000)]).astype(np.float32)
    data = gankit.from_arrays(x)
    gankit.train(tiny_config(), data=data, run_dir=tmp_path / "run", progress=False)
    assert 'name = "array"' in (tmp_path / "run" / "config.toml").read_text()
    with pytest.raises(GankitError, match="passed from Python.*data="):
        gankit.evaluate(tmp_path / "run", n=200, write=False)
    scores = gankit.evaluate(tmp_path / "run", n=200, write=False, data=data)
    assert scores["how"]["n_real"] == 200
    assert main(["train", "--resume", "--run-dir", str(tmp_path / "run"), "--steps", "30", "--quiet"]) == 2
    resumed = gankit.train(run_dir=tmp_path / "run", resume=True, steps=30, data=data, progress=False)
    assert resumed.step == 30
    samples, _ = gankit.sample(tmp_path / "run", n=500)
    assert abs(samples[:, 0].mean() - 1000) < 100  # still in the arrays' units, not ring8's


def test_a_refused_resume_leaves_the_run_as_it_was(tmp_path):
    gankit.train(tiny_config(), run_dir=tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "config.toml").read_text()
    with pytest.raises(GankitError, match=r"does not match the configured models \(size mismatch for net.0.weight"):
        gankit.train(run_dir=tmp_path / "run", resume=True, steps=30, overrides=["model.z_dim=9"], progress=False)
    with pytest.raises(GankitError, match=r"at step 20 and train.steps = 10; pass --steps N with N > 20"):
        gankit.train(run_dir=tmp_path / "run", resume=True, steps=10, progress=False)
    assert (tmp_path / "run" / "config.toml").read_text() == before  # it was rewritten before the checkpoint loaded
    assert gankit.train(run_dir=tmp_path / "run", resume=True, steps=30, progress=False).step == 30


def test_data_loaded_as_configured_is_not_mistaken_for_arrays(tmp_path):
    import numpy as np

    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32))
    config = tiny_config("data.name=file", f"data.path={tmp_path / 'rows.npy'}")
    gankit.train(config, data=gankit.load_data(config.data, 0), run_dir=tmp_path / "run", progress=False)
    assert 'name = "file"' in (tmp_path / "run" / "config.toml").read_text()
    assert gankit.train(run_dir=tmp_path / "run", resume=True, steps=30, progress=False).step == 30
