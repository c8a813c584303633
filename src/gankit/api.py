"""The public API: train a GAN, draw samples from a run. The CLI is a thin layer over these.

    >>> import gankit
    >>> result = gankit.train(gankit.load_config("configs/ring8.toml"))
    >>> x, y = gankit.sample(result.run_dir, n=1000)
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from . import distributed
from .callbacks import Evaluate, MetricsWriter, Progress, ReportWriter, TensorBoardLogger
from .checkpoint import read_meta
from .config import Config, apply_overrides, load_config, save_config
from .data import Dataset, label_index, load_data
from .data.dataset import ARRAYS, configured_data_name
from .engine import Engine, Game
from .errors import GankitError
from .fileio import atomic_write
from .games import GAMES
from .metrics import Evaluator, best_key
from .models import MODELS, resolved
from .models.codes import code_slots
from .pictures import picture_callbacks
from .product_loader import eval_samples, load_generator
from .runs import RunDir, create_run, default_run_path, open_run
from .sampling import MINMAX_RANGE, run_generator, seeded_inputs, to_pixels
from .sequence_output import meta_kind, sample_lengths, texts, zero_padding
from .table_output import sample_table  # noqa: F401  (gankit.sample_table)
from .trainer import Trainer

RECIPES = Path(__file__).parent / "configs"


@dataclass
class TrainResult:
    run_dir: Path | None
    step: int
    stop_reason: str  # finished | interrupted | stopped
    record: dict[str, Any]  # the last logged statistics
    trainer: Engine  # the engine that played the game (a Trainer for the classic game)


def recipe(name: str) -> Path:
    """Path of a built-in recipe (``ring8`` -> .../configs/ring8.toml)."""
    path = RECIPES / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
        raise GankitError(f"{name!r} is neither a config file nor a built-in recipe; recipes: {known}")
    return path


def build_models(config: Config, data: Dataset) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """G and D of the configured family, seeded by the config, sized for the data."""
    num_classes = data.num_classes if config.model.conditional else 0
    shape = data.shape
    model, activation = resolved(config, data)
    torch.manual_seed(config.seed)
    G, D = MODELS.get(model.family)(model, shape, num_classes, activation)
    if data.lengths is not None and callable(getattr(G, "fit_lengths", None)):
        G.fit_lengths(data.lengths)  # a buffer: saved with G's weights, so sampling draws the data's lengths
    info = {"family": config.model.family, "shape": list(shape), "out_activation": activation}
    return G, D, info


def train(config: Config | str | Path | None = None, *, data: Dataset | None = None,
          G: nn.Module | None = None, D: nn.Module | None = None, run_dir: str | Path | None = None,
          resume: bool = False, steps: int | None = None, overrides: Iterable[str] = (),
          callbacks: Iterable[Any] = (), progress: bool = True, game: Game | Callable[[Config, Dataset], Game] | None = None
          ) -> TrainResult:
    """Train a GAN and write a run folder.

    ``config`` is a ``Config``, a TOML path or a recipe name (default: the ring8 defaults). ``data``
    replaces the configured data; ``G``/``D`` replace the configured model family. With
    ``resume=True``, the run folder's own config.toml and checkpoint are used (``steps`` may extend
    the run). ``overrides`` are ``key=value`` strings applied last. ``run_dir=None`` picks
    ``runs/<name>``, or a free variant of it. ``game``: a ``gankit.engine.Game``, or a function
    ``(config, data) -> Game`` (called once the config and data are resolved), played instead of the classic
    game; its ``model_info`` attribute, if any, is recorded like the built-in models' (``gankit sample`` uses it).
    """
    if resume:
        run = open_run(run_dir or (config.run_dir if isinstance(config, Config) else ""))
        config = run.config()
    else:
        config = _as_config(config)
    config = apply_overrides(config, [*([f"train.steps={steps}"] if steps is not None else []), *overrides])
    if data is not None and not resume and data.name != configured_data_name(config):
        # the config's data section does not describe these rows: say so, so evaluate and resume ask for them
        config = replace(config, data=replace(config.data, name=ARRAYS, path=""))
    world = distributed.init(config.train.device)  # under torchrun: join the group; rank 0 writes the run folder
    if not resume:
        path = Path(run_dir or config.run_dir or default_run_path(config))
        config = replace(config, run_dir=str(path))
        run = RunDir(path)
        distributed.barrier()  # every rank has picked the folder's name before rank 0 makes it
    plot_every = config.train.plot_every or max(config.train.steps // 4, 1)
    # Made first, so a missing tensorboard package stops the run before any work or any file.
    tensorboard = [TensorBoardLogger(run, plot_every)] if config.train.tensorboard else []
    if data is None:
        data = load_data(config.data, config.seed)
    if (G is None) != (D is None):
        raise GankitError("pass both G and D, or neither")
    if game is None and config.game.name != "classic":
        game = GAMES[config.game.name]
    if game is not None:
        if G is not None:
            raise GankitError("pass either a game or G and D: a game declares its own players")
        torch.manual_seed(config.seed)  # the game's networks are made with the run's seed
        game = game if isinstance(game, Game) else game(config, data)
        if not isinstance(game, Game):
            raise GankitError(f"game: expected a gankit.engine.Game or a function returning one, got "
                              f"{type(game).__name__}")
        info = getattr(game, "model_info", None) or {"family": "custom"}
    elif G is None:
        G, D, info = build_models(config, data)
    else:
        torch.manual_seed(config.seed)  # the user's modules are already initialised; seed the rest of the run
        info = {"family": "custom"}

    evaluator, best = None, None
    if config.eval.every and data.is_table:
        raise GankitError(f"eval.every = {config.eval.every}: evaluation during training covers rows and images; for "
                          f"a table, set eval.every = 0 and run gankit eval RUN after training (SDMetrics' quality "
                          f"report, machine-learning efficacy, privacy)")
    if config.eval.every and data.is_translation:
        raise GankitError(f"eval.every = {config.eval.every}: an image-to-image run is scored after training; set "
                          f"eval.every = 0 and run gankit eval RUN (PSNR, SSIM, Fréchet distance on held-out images)")
    if config.eval.every and data.is_sequence:
        raise GankitError(f"eval.every = {config.eval.every}: evaluation during training covers rows and images; for "
                          f"sequences and text, set eval.every = 0 and run gankit eval RUN after training (TimeGAN's "
                          f"scores take about a minute per repeat)")
    if config.eval.every:  # made before the run folder, so a bad eval setting stops the run before any file
        evaluator = Evaluator(data, config.eval, n_real=config.eval.n, seed=config.seed)
        best = best_key(config.eval.best, evaluator.names)

    # Made before the run folder too: it checks the device, the batch size and the settings, so a mistake there
    # leaves no half-made folder behind.
    trainer = (Engine(config, data, game, checkpoint_path=run.checkpoint, model_info=info) if game is not None
               else Trainer(config, data, G, D, checkpoint_path=run.checkpoint, model_info=info))
    if resume:  # loaded (and checked) before config.toml is rewritten: a refused resume leaves the run as it was
        trainer.load_checkpoint(run.checkpoint)
        if config.train.steps <= trainer.step:
            raise GankitError(f"{run.path}: the run is at step {trainer.step} and train.steps = {config.train.steps}; "
                              f"pass --steps N with N > {trainer.step} to train it further")
    if world.is_main:
        if not resume:
            run = create_run(run.path, config)
            if getattr(data.table, "schema", None) is not None:  # what each column was read as: the first thing
                # to check when samples look wrong (a game's own encoded table may have no schema)
                if progress:
                    held = f" ({len(data.holdout)} more held out)" if data.holdout is not None else ""
                    print(f"gankit: {data.name}: {len(data)} rows{held}; columns as read:\n"
                          f"{data.table.schema.summary()}", file=sys.stderr)
                atomic_write(run.path / "schema.json", (json.dumps(data.table.schema.to_json(), indent=2) + "\n").encode())
        else:
            save_config(config, run.config_path)  # the run's config now includes any extension
    distributed.barrier()
    evaluation = ([Evaluate(run, evaluator, config.eval.every, config.eval.n, best, seed=config.seed, quiet=not progress)]
                  if evaluator is not None else [])
    # In call order: pictures before TensorBoard (which logs them) and the report (which shows them) last.
    trainer.callbacks = [MetricsWriter(run, trainer.step if resume else None),
                         *([Progress(config.train.steps)] if progress else []),
                         *evaluation, *picture_callbacks(run, data, plot_every, config.seed, info.get("infogan")), *tensorboard,
                         *callbacks, ReportWriter(run, plot_every)] if world.is_main else []
    record = trainer.fit()
    distributed.shutdown()
    return TrainResult(run.path, trainer.step, trainer.stop_reason or "finished", record, trainer)


def _as_config(config: Config | str | Path | None) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    path = Path(config)
    return load_config(path if path.suffix == ".toml" or path.exists() else recipe(str(config)))


@torch.no_grad()
def sample(run_dir: str | Path, n: int, seed: int = 0, label: str | int | None = None,
           batch_size: int = 8192, checkpoint: str = "latest", code: Sequence[float] | None = None
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples in the data's own units, and their class indices for a conditional model.

    The same ``seed`` gives the same samples. ``label`` (name or index) fixes the class; otherwise
    classes are drawn with the training data's frequencies. ``code`` (InfoGAN runs) fixes the latent codes:
    the categorical codes' indices, then the continuous codes' values in [-1, 1]. Sequence runs give
    [n, T, F] with the steps past each sample's length set to 0 (``sample_sequences`` also gives the lengths).
    """
    G, meta, shift, scale = load_generator(run_dir, checkpoint)
    if "table" in meta:
        raise GankitError(f"{run_dir}: this run's samples are a table; use gankit.sample_table (a DataFrame)")
    if "translation" in meta["data"]:
        raise GankitError(f"{run_dir}: this run translates images rather than drawing them from noise; use "
                          f"gankit apply RUN --input ... (gankit.apply in Python)")
    out, y, z = _generate(G, meta, n, seed, label, batch_size, code)
    x = (out * scale + shift).numpy()  # [n, *shape]
    if len(meta["model"]["shape"]) == 2:  # sequences: the padding is zero in the data's units too
        zero_padding(x, _lengths(G, meta, out, z))
    return x, y


@torch.no_grad()
def sample_sequences(run_dir: str | Path, n: int, seed: int = 0, label: str | int | None = None,
                     batch_size: int = 8192, checkpoint: str = "latest"
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The samples of ``sample`` (same seed) of a sequence or text run: (x [n, T, F] in the data's units, zero past
    each length; lengths [n] int64, None when the data has one length; class indices or None)."""
    G, meta, shift, scale = load_generator(run_dir, checkpoint)
    if len(meta["model"]["shape"]) != 2:
        raise GankitError(f"{run_dir}: this run's samples have shape {meta['model']['shape']}, not sequences [T, F]; "
                          f"use gankit.sample")
    out, y, z = _generate(G, meta, n, seed, label, batch_size)
    lengths = _lengths(G, meta, out, z)
    x = zero_padding((out * scale + shift).numpy(), lengths)
    return x, (lengths if meta["data"].get("variable_length") else None), y


@torch.no_grad()
def sample_text(run_dir: str | Path, n: int, seed: int = 0, label: str | int | None = None,
                batch_size: int = 8192, checkpoint: str = "latest") -> list[str]:
    """``n`` generated items of a text run (words, lines) as strings: argmax per step, up to the end symbol."""
    G, meta, _, _ = load_generator(run_dir, checkpoint)
    vocab = meta["data"].get("vocab")
    if not vocab:
        raise GankitError(f"{run_dir}: this run's data is not text (data.name = words or lines is); use "
                          f"gankit.sample")
    return texts(_generate(G, meta, n, seed, label, batch_size)[0], vocab)


def _lengths(G: nn.Module, meta: dict[str, Any], out: torch.Tensor, z: torch.Tensor) -> np.ndarray:
    """Each sequence's valid steps: up to its end symbol for text, else the length G drew from z[:, 0]."""
    return sample_lengths(out, z, getattr(G, "length_cdf", None), bool(meta["data"].get("vocab")))


@torch.no_grad()
def sample_images(run_dir: str | Path, n: int, seed: int = 0, label: str | int | None = None,
                  batch_size: int = 8192, checkpoint: str = "latest", code: Sequence[float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """The samples of ``sample`` (same seed, same samples) as uint8 pixels [n, H, W, C], for image runs.

    Minmax-normalised data (every built-in image set) maps its full value range to 0..255 (see
    ``gankit.sampling``); data normalised otherwise is stretched from the batch's own min..max.
    """
    G, meta, _, _ = load_generator(run_dir, checkpoint)
    kind = meta_kind(meta)
    if kind != "image":
        shape = meta["model"]["shape"]
        what, files = {"text": ("text", ".txt"), "sequence": (f"sequences {shape}", ".npy, .npz or .csv")
                       }.get(kind, (f"rows of {math.prod(shape)} values", ".npy or .csv"))
        raise GankitError(f"{run_dir}: this run's samples are {what}, not images; write them to a {files} file")
    out, y, _ = _generate(G, meta, n, seed, label, batch_size, code)
    value_range = MINMAX_RANGE if meta["data"]["normalize"] == "minmax" else None
    return to_pixels(out, value_range), y


def _generate(G: nn.Module, meta: dict[str, Any], n: int, seed: int, label: str | int | None,
              batch_size: int, code: Sequence[float] | None = None
              ) -> tuple[torch.Tensor, np.ndarray | None, torch.Tensor]:
    """G's output for ``n`` seeded noise vectors (in the networks' space), the class indices used, and the noise."""
    if n <= 0:
        raise GankitError(f"--n {n}: expected a positive number of samples")
    classes = meta["data"]["class_names"]
    if label is not None and not classes:
        raise GankitError(f"--label {label}: this run's generator is unconditional")
    z, y = seeded_inputs(n, meta["model"]["z_dim"], seed, meta["data"]["class_frequencies"],
                         None if label is None else label_index(classes, label))
    if code is not None:
        codes = meta["model"].get("infogan")
        if not codes:
            raise GankitError("--code: this run's generator has no latent codes (game.name = \"infogan\" has)")
        z[:, codes["noise"]:] = code_slots(codes["categorical"], codes["continuous"], list(code), n)
    return run_generator(G, z, y, batch_size), (None if y is None else y.numpy()), z  # [n, *shape]


def evaluate(run_dir: str | Path, metrics: str = "auto", n: int | None = None, seed: int = 0, features: str | None = None,
             checkpoint: str = "latest", inception_weights: str = "", write: bool = True,
             data: Dataset | None = None, repeats: int = 10, iterations: tuple[int, int] = (2000, 5000),
             progress: bool = False, workers: int | None = None, target: str = "") -> dict[str, Any]:
    """Metrics of a run's generator: ``n`` (default 10,000) generated samples against up to ``n`` of its training data's (``data``:
    the rows a run trained on when they were passed from Python; otherwise the run's config loads them).

    ``features``/``metrics`` default to the run's ``eval`` settings (auto: the data's bundled classifier
    for Fashion-MNIST and digits, Inception for other images when its weights are given, else the
    values). Sequence runs get TimeGAN's discriminative and predictive scores (each trained ``repeats`` times for
    ``iterations`` = (discriminative, predictive) steps; 0 repeats: none), their real-vs-real floor, per-feature
    KS and the autocorrelation difference (``gankit.sequence_eval``; ``workers`` processes train the scores, default
    one); text runs the text scores (valid, novel,
    unique, bigram JSD, length distance); table runs SDMetrics' quality score, machine-learning efficacy for
    ``target`` (default eval.target) and privacy against the held-out rows (``gankit.table_eval``; ``n`` defaults
    to as many rows as it trained on). ``progress``: a progress bar (sequence scores). The result, with how it
    was computed, is written to ``RUN/eval.json``.
    """
    run = open_run(run_dir)
    config = run.config()
    if n is not None and n < 2:  # a distribution's statistics (a covariance, a kernel mean) need two samples
        raise GankitError(f"--n {n}: expected at least 2 samples")
    product = read_meta(run.checkpoint_file(checkpoint))["model"].get("kind")
    if product in ("scorer", "classifier"):  # AUROC, AUPRC, F1 at the threshold; accuracy, F1, confusion and G's
        from .anomaly_eval import evaluate_anomaly
        from .semisup_eval import evaluate_semisup

        result = (evaluate_anomaly(run.path, data, checkpoint) if product == "scorer" else evaluate_semisup(
            run.path, data, checkpoint, n, seed, metrics, features, inception_weights))
        if write:
            atomic_write(run.eval_path, (json.dumps(result, indent=2) + "\n").encode())
        return result
    G, meta, _, _ = load_generator(run.path, checkpoint)
    head = {"run": str(run.path), "step": meta["step"], "checkpoint": checkpoint, "generator": meta["generator"]}
    kind = meta_kind(meta)
    if kind == "table":
        from .table_eval import evaluate_table_run

        for flag, value in (("--metrics", metrics if metrics != "auto" else None), ("--features", features)):
            if value:
                raise GankitError(f"{flag} {value}: a table run is scored by SDMetrics' quality report, efficacy "
                                  f"and privacy; leave {flag} out")
        data = data if data is not None else load_data(config.data, config.seed)
        result = {**head, **evaluate_table_run(config, data, G, meta, n, seed, target)}
    elif kind == "translator":
        from .translation_eval import evaluate_translation

        for flag, value in (("--metrics", metrics if metrics != "auto" else None), ("--features", features)):
            if value:
                raise GankitError(f"{flag} {value}: an image-to-image run is scored by PSNR, SSIM and its task's "
                                  f"Fréchet distance; leave {flag} out")
        data = data if data is not None else load_data(config.data, config.seed)
        result = {**head, **evaluate_translation(run.path, data, G, n, checkpoint)}
    elif kind in ("sequence", "text"):
        n = 10_000 if n is None else n
        from .sequence_eval import evaluate_sequences, evaluate_text

        for flag, value in (("--metrics", metrics if metrics != "auto" else None), ("--features", features)):
            if value:
                raise GankitError(f"{flag} {value}: a {kind} run is scored by its own metrics "
                                  f"({'TimeGAN scores, KS, autocorrelation' if kind == 'sequence' else 'text scores'}); "
                                  f"leave {flag} out")
        if kind == "text":
            result = {**head, **evaluate_text(config, G, meta, n, seed, data)}
        else:
            data = data if data is not None else load_data(config.data, config.seed)
            result = {**head, **evaluate_sequences(data, G, meta, n, seed, repeats, tuple(iterations), progress,
                                                            workers)}
    else:
        n = 10_000 if n is None else n
        settings = replace(config.eval, metrics=metrics, features=features or config.eval.features,
                           inception_weights=inception_weights or config.eval.inception_weights)
        data = data if data is not None else load_data(config.data, config.seed)
        evaluator = Evaluator(data, settings, n_real=n, seed=seed)
        conditional = meta["model"]["num_classes"] > 0
        fake = eval_samples(evaluator, G, meta["model"]["z_dim"], n, conditional, seed=seed)
        result = {**head, **evaluator.evaluate(fake)}
        result["how"]["real"] = f"{data.name} ({config.data.split} split)" if data.is_image else data.name
    if write:
        atomic_write(run.eval_path, (json.dumps(result, indent=2) + "\n").encode())
    return result
