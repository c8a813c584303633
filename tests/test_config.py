"""Config: defaults, TOML files, --set overrides, and the messages for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

import gankit
from gankit.config import Config, apply_overrides, load_config, save_config, to_toml
from gankit.data import DATASETS
from gankit.errors import GankitError

RECIPES = sorted((Path(gankit.__file__).parent / "configs").glob("*.toml"))


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(call, *args) -> str:
    with pytest.raises(GankitError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_build_and_validate():
    config = load_config()
    assert config == Config()
    assert config.data.name == "ring8" and config.loss.name == "nonsaturating"
    assert config.train.g_betas == (0.5, 0.999)
    assert config.run_name == "ring8"


def test_load_config_reads_a_file_and_keeps_defaults_elsewhere(tmp_path):
    path = write(tmp_path, """
seed = 3
[data]
name = "grid25"
n = 500
[loss]
name = "hinge"
[train]
g_lr = 1e-4
d_betas = [0.0, 0.9]
""")
    config = load_config(path)
    assert config.seed == 3
    assert config.data.name == "grid25" and config.data.n == 500
    assert config.loss.name == "hinge"
    assert config.train.g_lr == 1e-4 and config.train.d_betas == (0.0, 0.9)
    assert config.train.d_lr == Config().train.d_lr  # untouched keys keep their defaults
    assert config.model == Config().model


def test_an_integer_in_a_float_field_becomes_a_float(tmp_path):
    config = load_config(write(tmp_path, "[train]\ng_lr = 1\n"))
    assert config.train.g_lr == 1.0 and isinstance(config.train.g_lr, float)


def test_unknown_key_in_a_file_names_the_file_and_the_key(tmp_path):
    path = write(tmp_path, "[data]\nnme = \"ring8\"\n")
    message = error_of(load_config, path)
    assert str(path) in message and "'data.nme'" in message and "data.name" in message  # lists the known keys


def test_unknown_table_in_a_file_is_refused(tmp_path):
    path = write(tmp_path, "[dtaa]\nname = \"ring8\"\n")
    assert "'dtaa'" in error_of(load_config, path)


def test_missing_and_malformed_files_are_named(tmp_path):
    assert str(tmp_path / "nope.toml") in error_of(load_config, tmp_path / "nope.toml")
    path = write(tmp_path, "[data\nname = 1\n")
    message = error_of(load_config, path)
    assert str(path) in message and "not valid TOML" in message


@pytest.mark.parametrize("item, key", [("data.nme=3", "data.nme"), ("dtaa.name=x", "dtaa.name"),
                                       ("seedd=1", "seedd"), ("data=3", "data")])
def test_unknown_key_via_set_names_the_set_text_and_the_key(item, key):
    message = error_of(apply_overrides, Config(), [item])
    assert f"--set {item}" in message and repr(key) in message


def test_override_without_equals_sign_is_refused():
    assert "expected key=value" in error_of(apply_overrides, Config(), ["train.steps"])


@pytest.mark.parametrize("text, key, value, expected", [
    ('[train]\ng_lr = "fast"\n', "train.g_lr", "'fast'", "a number"),
    ("[train]\nsteps = 1.5\n", "train.steps", "1.5", "an integer"),
    ("[train]\nsteps = true\n", "train.steps", "true", "an integer"),
    ("[train]\ng_lr = true\n", "train.g_lr", "true", "a number"),
    ("[model]\nconditional = 1\n", "model.conditional", "1", "true or false"),
    ('[model]\nconditional = "yes"\n', "model.conditional", "'yes'", "true or false"),
    ("[train]\ng_betas = [0.5]\n", "train.g_betas", "[0.5]", "a list of 2 numbers"),
    ('[train]\ng_betas = [0.5, "x"]\n', "train.g_betas", "'x'", "a number"),
    ("[data]\nname = true\n", "data.name", "true", "a string"),
    ("data = 3\n", "data", "3", "a table"),
])
def test_wrong_type_in_a_file_names_key_value_and_expectation(tmp_path, text, key, value, expected):
    path = write(tmp_path, text)
    message = error_of(load_config, path)
    assert str(path) in message and key in message and value in message and expected in message


@pytest.mark.parametrize("item, key, value, expected", [
    ('train.g_lr="fast"', "train.g_lr", "'fast'", "a number"),
    ("train.g_lr=fast", "train.g_lr", "'fast'", "a number"),  # unparseable TOML is taken as text
    ("train.steps=1.5", "train.steps", "1.5", "an integer"),
    ("train.steps=true", "train.steps", "true", "an integer"),
    ("model.conditional=1", "model.conditional", "1", "true or false"),
])
def test_wrong_type_via_set_names_the_set_text_key_value_and_expectation(item, key, value, expected):
    message = error_of(apply_overrides, Config(), [item])
    assert f"--set {item}" in message and key in message and value in message and expected in message


@pytest.mark.parametrize("item, key", [
    ("train.g_lr=-1e-4", "train.g_lr"),
    ("train.d_lr=0", "train.d_lr"),
    ("data.n=0", "data.n"),
    ("seed=-1", "seed"),
    ("loss.name=hindge", "loss.name"),
    ("train.optimizer=adamw", "train.optimizer"),
    ("loss.label_smoothing=1.0", "loss.label_smoothing"),
    ("loss.label_smoothing=-0.1", "loss.label_smoothing"),
    ("train.g_betas=[0.5, 1.0]", "train.g_betas"),
    ("train.d_betas=[-0.1, 0.9]", "train.d_betas"),
    ("train.device=gpu", "train.device"),
    ("data.name=file", "data.path"),
    ("eval.n=1", "eval.n"),
])
def test_bad_values_via_set_are_refused_naming_the_key(item, key):
    message = error_of(apply_overrides, Config(), [item])
    assert key in message and "--set" in message


@pytest.mark.parametrize("text, key", [
    ("[train]\ng_lr = -0.1\n", "train.g_lr"),
    ('[loss]\nname = "hindge"\n', "loss.name"),
    ("[loss]\nlabel_smoothing = 1.0\n", "loss.label_smoothing"),
    ("[train]\ng_betas = [1.5, 0.9]\n", "train.g_betas"),
    ('[data]\nname = "file"\n', "data.path"),
])
def test_bad_values_in_a_file_are_refused_naming_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    message = error_of(load_config, path)
    assert str(path) in message and key in message


def test_bad_value_message_gives_the_value_and_the_range():
    message = error_of(apply_overrides, Config(), ["loss.label_smoothing=1.0"])
    assert "1.0" in message and "0 <= s < 1" in message
    message = error_of(apply_overrides, Config(), ["loss.name=hindge"])
    assert "'hindge'" in message and "least-squares" in message


def test_overrides_parse_toml_values_or_take_plain_text():
    config = apply_overrides(Config(), [
        "train.d_lr=1e-4", "model.conditional=false", "train.g_betas=[0.5, 0.9]", "data.name=ring8",
        "data.n = 2000", 'name="my run"', "train.device=cuda:1", "loss.gp_weight=5",
    ])
    assert config.train.d_lr == 1e-4
    assert config.model.conditional is False
    assert config.train.g_betas == (0.5, 0.9)
    assert config.data.name == "ring8" and config.data.n == 2000
    assert config.name == "my run" and config.run_name == "my run"
    assert config.train.device == "cuda:1"
    assert config.loss.gp_weight == 5.0
    assert Config().model.conditional is True  # the defaults are untouched (frozen)


def test_later_overrides_win():
    assert apply_overrides(Config(), ["train.steps=10", "train.steps=20"]).train.steps == 20


@pytest.mark.parametrize("order", [1, -1])
def test_file_data_can_be_set_in_either_order(order):
    # data.name=file alone is invalid; with data.path in the same call it must work whichever comes first.
    config = apply_overrides(Config(), ["data.name=file", 'data.path="my/data.csv"'][::order])
    assert config.data.name == "file" and config.data.path == "my/data.csv"
    assert config.run_name == "data"


def test_load_config_applies_overrides_after_the_file(tmp_path):
    path = write(tmp_path, "[train]\nsteps = 100\nd_steps = 2\n")
    config = load_config(path, ["train.steps=7"])
    assert config.train.steps == 7 and config.train.d_steps == 2


def test_load_config_from_a_base_config(tmp_path):
    base = apply_overrides(Config(), ["loss.name=hinge", "train.steps=9"])
    path = write(tmp_path, "[train]\nsteps = 11\n")
    config = load_config(path, base=base)
    assert config.loss.name == "hinge" and config.train.steps == 11


def test_to_toml_round_trips_to_an_equal_config(tmp_path):
    config = apply_overrides(Config(), [
        "seed=7", 'name="x"', "data.name=file", 'data.path="a b/c.csv"', "data.label_column=label",
        "data.std=0.25", "model.conditional=false", "loss.name=wgan-gp", "loss.gp_weight=2.5",
        "train.g_lr=3e-5", "train.d_betas=[0.0, 0.9]", "train.device=cuda:0",
    ])
    path = tmp_path / "config.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    assert load_config(path) == config
    save_config(Config(), path)
    assert load_config(path) == Config()


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_built_in_recipe_loads(path):
    config = load_config(path)
    # each recipe is named after its data set (and model), after its game's name when that is not the classic one
    # (the anomaly and semi-supervised recipes after the task: anomaly-<data>, whichever game scores best there)
    prefix = ("anomaly-" if config.game.name in ("bigan", "ganomaly", "fanogan") else
              "semisup-" if config.game.name == "ssgan" else f"{config.game.name}-")
    assert path.stem.removeprefix(prefix).startswith(config.data.name)
    assert config.data.name in DATASETS


def test_the_recipes_are_all_there():
    assert {p.stem for p in RECIPES} >= {"gauss1d", "ring8", "grid25", "digits"}
