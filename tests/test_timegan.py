"""The TimeGAN game (game.name = "timegan"): its three stages as phases, which weights each stage trains, D's
threshold, exact resumes across the stage boundaries, variable lengths, and its product (the sampling G)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gankit
from conftest import StopAt
from gankit.config import Config, apply_overrides
from gankit.data import load_data
from gankit.data.sequences import from_sequences
from gankit.engine import Engine
from gankit.engine.game import module_of
from gankit.errors import GankitError
from gankit.games.timegan import TimeGANGame
from gankit.models.timegan import TimeGANGenerator
from gankit.product_loader import load_generator
from gankit.runs import RunDir
from gankit.sampling import run_generator, seeded_inputs

SINES = ["data.name=sines", "data.n=128", "data.window=8", "data.batch_size=16", "game.name=timegan",
         "model.g_hidden=6", "model.g_depth=2", "game.embedding_steps=3", "game.supervised_steps=3",
         "train.log_every=1", "train.checkpoint_every=100", "train.plot_every=1000", "eval.every=0"]
PARTS = ("E", "G.generator", "G.supervisor", "G.recovery", "D")


def config(*extra: str) -> Config:
    return apply_overrides(Config(), [*SINES, *extra])


def engine(*extra: str, data=None) -> Engine:
    cfg = config(*extra)
    data = data if data is not None else load_data(cfg.data, cfg.seed)
    return Engine(cfg, data, TimeGANGame(cfg, data))


def weights(e: Engine) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in module_of(e.players, name).parameters()] for name in PARTS}


def changed(before: dict[str, list[torch.Tensor]], after: dict[str, list[torch.Tensor]]) -> set[str]:
    return {name for name in PARTS if any(not torch.equal(a, b) for a, b in zip(before[name], after[name]))}


def test_stages_are_phases_of_the_step():
    """Stage 1 (steps < embedding_steps) updates e alone, stage 2 g alone, then every joint step runs
    g, e, g, e, d: the schedule is a function of the step, so a resumed run needs no state for it."""
    cfg = config()
    game = TimeGANGame(cfg, load_data(cfg.data, cfg.seed))
    groups = {step: [p.group for p in game.phases_at(step)] for step in [*range(12), 10_000]}
    assert all(groups[s] == ["e"] for s in (0, 1, 2))
    assert all(groups[s] == ["g"] for s in (3, 4, 5))
    assert all(groups[s] == ["g", "e", "g", "e", "d"] for s in (6, 7, 11, 10_000))
    assert [g.name for g in game.groups] == ["e", "g", "d"]
    assert {g.name: list(g.players) for g in game.groups} == {
        "e": ["E", "G.recovery"], "g": ["G.generator", "G.supervisor"], "d": ["D"]}
    cfg = config("game.embedding_steps=0", "game.supervised_steps=0")
    joint_only = TimeGANGame(cfg, load_data(cfg.data, cfg.seed))
    assert [p.group for p in joint_only.phases_at(0)] == ["g", "e", "g", "e", "d"]


def test_each_stage_trains_only_its_networks():
    """Stage 1 moves E and G.recovery only; stage 2 G.supervisor only (the generator gets no gradient from the
    supervised loss on real latents, E, R and D stay); a joint step moves all five networks."""
    e = engine("game.d_threshold=0")
    seen = []
    for _ in range(8):
        before = weights(e)
        e.train_step()
        seen.append(changed(before, weights(e)))
    assert seen[:3] == [{"E", "G.recovery"}] * 3
    assert seen[3:6] == [{"G.supervisor"}] * 3
    assert seen[6:] == [set(PARTS)] * 2


@pytest.mark.parametrize("threshold, learns", [(1e9, False), (0.0, True)])
def test_d_learns_only_while_its_loss_is_above_the_threshold(threshold, learns):
    """D's loss function returns None (no update) while D's loss <= game.d_threshold: a huge threshold leaves D's
    weights as they were through the joint steps; 0 updates them every step. The record counts the updates."""
    e = engine(f"game.d_threshold={threshold}")
    for _ in range(6):
        e.train_step()
    before = weights(e)
    record = e.fit(9)
    moved = changed(before, weights(e))
    assert moved == (set(PARTS) if learns else set(PARTS) - {"D"})  # the others train either way
    assert record["d_updates"] == float(learns) and np.isfinite(record["d_loss"])


def final_state(run) -> dict[str, torch.Tensor]:
    tensors, meta = gankit.checkpoint.load_checkpoint(RunDir(run).checkpoint)
    assert meta["step"] == 10
    return tensors


def test_resumes_exactly_across_the_stage_boundaries(tmp_path):
    """10 steps straight (3 autoencoder, 3 supervised, 4 joint) == stopped at 2 (stage 1), 4 (stage 2) or 7
    (joint) and resumed to 10: every player's weights, every optimizer's state and the RNG streams are
    bit-identical."""
    straight = gankit.train(None, run_dir=tmp_path / "straight", steps=10, progress=False, overrides=SINES)
    assert set(straight.trainer.optimizers) == {"e", "g", "d"}
    expected = final_state(tmp_path / "straight")
    assert {k.split(".")[0] for k in expected} >= {"E", "G", "D", "opt_e", "opt_g", "opt_d", "rng"}
    for stop in (2, 4, 7):
        run = tmp_path / f"stop{stop}"
        part = gankit.train(None, run_dir=run, steps=10, progress=False, overrides=SINES, callbacks=[StopAt(stop)])
        assert part.step == stop
        gankit.train(run_dir=run, resume=True, steps=10, progress=False)
        resumed = final_state(run)
        assert resumed.keys() == expected.keys()
        for k in expected:
            assert torch.equal(resumed[k], expected[k]), f"stopped at {stop}: {k}"


def ragged(padding: float, valid_shift: float = 0.0):
    """Sines of 8 steps and lengths 3..8, then the padding (networks' units) set to ``padding``."""
    cfg = config()
    x = load_data(cfg.data, cfg.seed).x.clone()
    lengths = 3 + torch.arange(len(x)) % 6
    data = from_sequences(x, lengths=lengths, normalize="none")
    mask = data.mask()
    data.x[~mask] = padding
    data.x[:, 0] += valid_shift
    return data


def logged(run) -> list[dict]:
    return [r for r in RunDir(run).read_metrics() if "steps_per_s" in r]


def test_losses_ignore_the_padding_of_variable_length_data(tmp_path):
    """Two data sets that differ only past each sequence's length give the same losses at every step of every
    stage, and the same weights; a change in the valid values does change them (the comparison can fail)."""
    records = {}
    for tag, data in (("zero", ragged(0.0)), ("junk", ragged(5.0)), ("shifted", ragged(0.0, 0.25))):
        assert data.lengths is not None and data.lengths.min() == 3
        gankit.train(config(), data=data, run_dir=tmp_path / tag, steps=8, progress=False)
        records[tag] = logged(tmp_path / tag)
    keys = ("e_loss", "s_loss", "g_loss", "e_rec", "d_loss")
    zero, junk, shifted = records["zero"], records["junk"], records["shifted"]
    assert len(zero) == len(junk) == 8 and {"e_loss", "s_loss", "g_loss", "d_loss"} <= {k for r in zero for k in r}
    for a, b in zip(zero, junk):
        for k in keys:
            if k in a:
                assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7), (a["step"], k)
    assert any(a[k] != pytest.approx(b[k], rel=1e-3) for a, b in zip(zero, shifted) for k in keys if k in a)
    wa = gankit.checkpoint.load_checkpoint(RunDir(tmp_path / "zero").checkpoint)[0]
    wb = gankit.checkpoint.load_checkpoint(RunDir(tmp_path / "junk").checkpoint)[0]
    for k in wa:
        if k.startswith(("E.", "G.", "D.")):
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    lengths = ragged(0.0).lengths  # G draws the data's lengths: its CDF is kept with its weights
    counts = torch.bincount(lengths - 1, minlength=8).double()
    torch.testing.assert_close(wa["G.length_cdf"], (counts.cumsum(0) / counts.sum()).float())
    G = load_generator(tmp_path / "zero")[0]  # its samples are zero past the lengths it draws, as the data's padding
    z, _ = seeded_inputs(500, G.z_dim, 0)
    x, drawn = run_generator(G, z), G.lengths(z)
    assert (x[torch.arange(8)[None, :] >= drawn[:, None]] == 0).all() and (x[torch.arange(500), drawn - 1] != 0).all()
    assert set(drawn.tolist()) == set(range(3, 9))


def test_the_trained_generator_samples_and_loads_without_the_game(tmp_path):
    """gankit.sample draws [n, T, F] from the trained TimeGAN G, in the data's [0, 1]; load_generator rebuilds the
    same TimeGANGenerator from the run's safetensors and JSON alone, and its output is what sample returned."""
    gankit.train(None, run_dir=tmp_path / "t", steps=8, progress=False, overrides=SINES)
    x, y = gankit.sample(tmp_path / "t", n=20, seed=3)
    assert x.shape == (20, 8, 5) and y is None and np.isfinite(x).all()
    assert x.min() >= -1e-6 and x.max() <= 1 + 1e-6
    again, _ = gankit.sample(tmp_path / "t", n=20, seed=3)
    assert np.array_equal(x, again)
    G, meta, shift, scale = load_generator(tmp_path / "t")
    assert isinstance(G, TimeGANGenerator) and meta["model"]["family"] == "timegan"
    assert meta["model"]["z_dim"] == G.z_dim == 1 + 8 * 5 and meta["generator"] == "G"
    z, _ = seeded_inputs(20, G.z_dim, 3)
    np.testing.assert_array_equal((run_generator(G, z) * scale + shift).numpy(), x)


@pytest.mark.parametrize("overrides, message", [
    (["data.name=ring8"], "trains on numeric sequences"),
    (["data.name=words", "data.max_length=4"], "is text"),
    (["model.g_depth=1"], "expected at least 2"),
])
def test_timegan_refuses_what_it_cannot_train(tmp_path, overrides, message):
    with pytest.raises(GankitError, match=message):
        gankit.train(None, run_dir=tmp_path / "r", steps=1, progress=False, overrides=[*SINES, *overrides])
