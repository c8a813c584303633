"""The game engine's public face: the README's own game runs as written, and the declarations are checked."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from conftest import StopAt
from gankit.engine import Game, Group, Phase
from gankit.errors import GankitError

README = Path(__file__).parents[1] / "README.md"


def readme_game() -> str:
    section = README.read_text(encoding="utf-8").split("## Write your own game", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_game_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = readme_game().replace("steps=400", "steps=40")  # the same game, fewer steps
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    run = tmp_path / "runs" / "my-game"
    tensors, meta = gankit.checkpoint.load_checkpoint(run / "checkpoints" / "latest.safetensors")
    assert {"G_ema.net.0.weight", "opt_g.state.0.exp_avg", "opt_d.state.0.exp_avg"} <= set(tensors)
    assert meta["step"] == 40 and meta["model"]["z_dim"] == gankit.load_config(gankit.recipe("ring8")).model.z_dim
    records = [r for r in gankit.runs.RunDir(run).read_metrics() if "steps_per_s" in r]
    assert all({"d_loss", "r1_loss", "g_loss"} <= set(r) for r in records)
    assert scope["x"].shape == (1000, 2)


class Counting(Game):
    """D every step, a second D phase every 3 steps from step 2, G twice per step: counts the updates."""

    def __init__(self, config, data):
        G, D, _ = gankit.build_models(config, data)
        self.players = {"G": G, "D": D}
        self.groups = [Group("g", ["G"]), Group("d", ["D"])]
        self.calls: list[tuple[int, str]] = []
        self.phases = [Phase("d", self.loss("d")), Phase("d", self.loss("lazy"), every=3, start=2),
                       Phase("g", self.loss("g"), repeat=2, stop=4)]

    def loss(self, tag):
        def f(ctx):
            self.calls.append((ctx.step, tag))
            frozen = ctx.G if tag != "g" else ctx.D  # the other group's weights, during this phase
            assert not any(p.requires_grad for p in frozen.parameters())
            x = ctx.batch()["x"]
            out = (ctx.D(x).mean() if tag != "g" else ctx.D(ctx.G(ctx.noise(len(x)))).mean())
            ctx.log(f"{tag}_loss", out)
            return out
        return f


def test_phases_run_as_declared_and_others_are_frozen(tmp_path):
    game = Counting(gankit.load_config(gankit.recipe("ring8")), gankit.load_data(gankit.load_config(
        gankit.recipe("ring8")).data, 0))
    result = gankit.train("ring8", game=game, steps=6, run_dir=tmp_path / "r", progress=False,
                          overrides=["eval.every=0", "train.log_every=2"])
    assert result.step == 6
    expected = []
    for s in range(6):
        expected += [(s, "d")] + ([(s, "lazy")] if s >= 2 and (s - 2) % 3 == 0 else []) + ([(s, "g")] * 2 if s < 4 else [])
    assert game.calls == expected
    assert "lazy_loss" in result.record and "g_loss" not in result.record  # the last window (steps 4, 5) had no G phase


def test_bad_declarations_are_one_line_errors(tmp_path):
    config = gankit.load_config(gankit.recipe("ring8"))
    data = gankit.load_data(config.data, 0)
    G, D, _ = gankit.build_models(config, data)

    def game(groups, phases):
        g = Game()
        g.players, g.groups, g.phases = {"G": G, "D": D}, groups, phases
        return g

    cases = [(game([Group("g", ["G", "E"])], []), "names player 'E'"),
             (game([Group("g", ["G"]), Group("d", ["G"])], []), "is in groups"),
             (game([Group("g", ["G"])], [Phase("x", lambda ctx: None)]), "updates group 'x'"),
             (game([Group("g", ["G"])], [Phase("g", lambda ctx: None, every=0)]), "expected both >= 1")]
    for bad, message in cases:
        with pytest.raises(GankitError, match=message):
            gankit.train(config, game=bad, run_dir=tmp_path / "r", steps=1, progress=False)
    with pytest.raises(GankitError, match="either a game or G and D"):
        gankit.train(config, game=bad, G=G, D=D, run_dir=tmp_path / "r", steps=1, progress=False)


def test_a_game_resumes_exactly(tmp_path):
    full = gankit.train("ring8", game=Counting, run_dir=tmp_path / "full", steps=6, progress=False,
                        overrides=["eval.every=0", "train.log_every=2", "train.checkpoint_every=3"])
    part = gankit.train("ring8", game=Counting, run_dir=tmp_path / "part", steps=6, progress=False,  # killed at 3
                        overrides=["eval.every=0", "train.log_every=2", "train.checkpoint_every=3"],
                        callbacks=[StopAt(3)])
    assert part.step == 3
    engine = gankit.train(game=Counting, run_dir=tmp_path / "part", resume=True, steps=6, progress=False).trainer
    for name, module in full.trainer.players.items():
        for (k, a), b in zip(module.state_dict().items(), engine.players[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{k}"


ACGAN_DIGITS = ["data.name=digits", "data.image_size=16", "data.batch_size=64", "model.family=dcgan", "model.z_dim=16",
                "model.g_hidden=16", "model.d_hidden=16", "game.name=acgan", "train.log_every=50", "eval.every=0"]


@pytest.mark.slow
def test_acgan_learns_to_classify_and_generates_by_class(tmp_path):
    result = gankit.train(None, run_dir=tmp_path / "ac", steps=200, progress=False, overrides=ACGAN_DIGITS)
    record = result.record
    assert record["class_acc_real"] > 0.8  # D's class head on real digits, the last 50 steps (chance: 0.1)
    assert record["ce_g"] < 1.0  # G's samples are recognisable to D's class head as the class asked for
    tensors, meta = gankit.checkpoint.load_checkpoint(tmp_path / "ac" / "checkpoints" / "latest.safetensors")
    assert "D.classes.weight" in tensors and meta["model"]["num_classes"] == 10
    x, y = gankit.sample(tmp_path / "ac", n=20, label="3")
    assert x.shape == (20, 1, 16, 16) and (y == 3).all()


def test_acgan_needs_labels_and_single_samples(tmp_path):
    with pytest.raises(GankitError, match="needs labelled data"):
        gankit.train("ring8", run_dir=tmp_path / "a", steps=1, progress=False, overrides=["game.name=acgan"])
    with pytest.raises(GankitError, match="model.pack = 2; D's second head"):
        gankit.train(None, run_dir=tmp_path / "b", steps=1, progress=False, overrides=[*ACGAN_DIGITS, "model.pack=2"])


def test_code_slots_give_the_codes_asked_for():
    from gankit.models.codes import InfoGenerator, code_slots

    class Inner(torch.nn.Module):
        def forward(self, x, y=None):
            return x

    G = InfoGenerator(Inner(), 2, (10, 3), 2)
    z = torch.cat([torch.zeros(4, 2), code_slots((10, 3), 2, [7, 2, -0.5, 0.75], 4)], dim=1)
    cats, cont = G.codes(z)
    assert [c.tolist() for c in cats] == [[7.0] * 4, [2.0] * 4]
    assert torch.allclose(cont, torch.tensor([[-0.5, 0.75]] * 4), atol=1e-5)
    x = G(z)  # [noise 2, one-hot 10, one-hot 3, continuous 2]
    assert x.shape == (4, 17) and x[0, 2 + 7] == 1 and x[0, 2:12].sum() == 1 and x[0, 12 + 2] == 1
    # the standard-normal prior gives each category its share: Phi(u) is uniform
    u = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(G.codes(torch.cat([torch.zeros(len(u), 2), u, torch.zeros(len(u), 2)], 1))[0][0].long(),
                            minlength=10)
    assert (counts / len(u) - 0.1).abs().max() < 0.005
    with pytest.raises(GankitError, match="expected an integer in 0..9"):
        code_slots((10,), 0, [10], 1)


INFOGAN_DIGITS = ["data.name=digits", "data.image_size=16", "data.batch_size=64", "model.family=dcgan",
                  "model.z_dim=16", "model.g_hidden=16", "model.d_hidden=16", "model.conditional=false",
                  "game.name=infogan", "train.log_every=50", "eval.every=0", "train.plot_every=100"]


@pytest.mark.slow
def test_infogan_q_reads_the_codes_and_sample_fixes_them(tmp_path):
    result = gankit.train(None, run_dir=tmp_path / "ig", steps=400, progress=False, overrides=INFOGAN_DIGITS)
    assert set(result.trainer.players) == {"G", "D", "Q"} and set(result.trainer.optimizers) == {"g", "d"}
    assert result.record["q_acc"] > 0.6  # Q names the categorical code G was given (chance: 0.1)
    assert (tmp_path / "ig" / "samples" / "codes-c0.png").is_file()
    x3, _ = gankit.sample(tmp_path / "ig", n=8, code=[3, 0.0, 0.0])
    again, _ = gankit.sample(tmp_path / "ig", n=8, code=[3, 0.0, 0.0])
    other, _ = gankit.sample(tmp_path / "ig", n=8, code=[4, 0.0, 0.0])
    assert x3.shape == (8, 1, 16, 16) and np.array_equal(x3, again) and not np.array_equal(x3, other)
    gankit.export(tmp_path / "ig", tmp_path / "exp", formats=["safetensors", "onnx"])  # parity-checked on onnxruntime
    exported, _ = gankit.load(tmp_path / "exp").generate(8, seed=2)
    sampled, _ = gankit.sample(tmp_path / "ig", n=8, seed=2)
    np.testing.assert_allclose(exported, sampled, rtol=0, atol=1e-6)  # the codes come from z alone, as exported


@pytest.mark.parametrize("overrides, message", [
    (["game.name=infogan", "game.categorical_codes=[1]"], "expected sizes of at least 2"),
    (["game.name=infogan", "game.categorical_codes=[]", "game.continuous_codes=0"], "needs codes"),
    (["game.name=acgan", "train.reuse_fake=true"], "does not take train.reuse_fake"),
    (["game.name=infogan", "loss.feature_matching=0.1"], "does not take loss.feature_matching"),
    (["game.name=chess"], "expected one of classic, acgan, infogan"),
])
def test_game_settings_are_checked_with_the_config(overrides, message):
    from gankit.config import Config, apply_overrides

    with pytest.raises(GankitError, match=message):
        apply_overrides(Config(), overrides)


def test_export_and_serve_import_neither_the_api_the_engine_nor_the_metrics():
    """gankit/__init__ imports the API for users; what matters is what export and serve pull in themselves, so the
    package is stood in for by a bare module over the same folder."""
    import subprocess
    import sys

    code = (f"import sys, types; pkg = types.ModuleType('gankit'); pkg.__path__ = [{str(Path(gankit.__file__).parent)!r}]; "
            "pkg.__version__ = '0'; sys.modules['gankit'] = pkg; import gankit.export, gankit.serve; "
            "print(sorted(m for m in sys.modules if m.startswith(('gankit.api', 'gankit.engine', 'gankit.trainer', "
            "'gankit.metrics', 'gankit.cli', 'gankit.games'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_runs_of_another_game_are_named_after_it():
    from gankit.config import Config, apply_overrides

    assert apply_overrides(Config(), ["data.name=fashion-mnist"]).run_name == "fashion-mnist"
    assert apply_overrides(Config(), ["data.name=fashion-mnist", "game.name=acgan"]).run_name == "acgan-fashion-mnist"
    for recipe in ("acgan-fashion-mnist", "infogan-digits"):  # the README's commands find runs/<recipe>
        assert gankit.load_config(gankit.recipe(recipe)).run_name == recipe
