"""The public API: train a GAN, draw samples from a run. The CLI is a thin layer over these.

    >>> import gankit
    >>> result = gankit.train(gankit.load_config("configs/ring8.toml"))
    >>> x, y = gankit.sample(result.run_dir, n=1000)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from .callbacks import ImageGrids, MetricsWriter, Progress, ReportWriter, SamplePlotter, TensorBoardLogger
from .checkpoint import load_checkpoint, unprefixed
from .config import Config, apply_overrides, load_config, save_config
from .data import Dataset, label_index, load_data
from .errors import GankitError
from .models import MODELS
from .runs import RunDir, create_run, default_run_path, open_run
from .sampling import MINMAX_RANGE, to_pixels
from .trainer import Trainer

RECIPES = Path(__file__).parent / "configs"


@dataclass
class TrainResult:
    run_dir: Path | None
    step: int
    stop_reason: str  # finished | interrupted | stopped
    record: dict[str, Any]  # the last logged statistics
    trainer: Trainer


def recipe(name: str) -> Path:
    """Path of a built-in recipe (``ring8`` -> .../configs/ring8.toml)."""
    path = RECIPES / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
        raise GankitError(f"{name!r} is neither a config file nor a built-in recipe; recipes: {known}")
    return path


def out_activation(config: Config, data: Dataset) -> str:
    if config.model.out_activation != "auto":
        return config.model.out_activation
    return "tanh" if data.normalize == "minmax" else "none"


def build_models(config: Config, data: Dataset) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """G and D of the configured family, seeded by the config, sized for the data."""
    num_classes = data.num_classes if config.model.conditional else 0
    activation = out_activation(config, data)
    shape = data.shape
    model = config.model
    if model.d_norm == "auto":  # batch norm mixes samples, which a per-sample gradient penalty must not see
        model = replace(model, d_norm="none" if config.loss.name == "wgan-gp" else "batch")
    torch.manual_seed(config.seed)
    G, D = MODELS.get(model.family)(model, shape, num_classes, activation)
    info = {"family": config.model.family, "shape": list(shape), "out_activation": activation}
    return G, D, info


def train(config: Config | str | Path | None = None, *, data: Dataset | None = None,
          G: nn.Module | None = None, D: nn.Module | None = None, run_dir: str | Path | None = None,
          resume: bool = False, steps: int | None = None, overrides: Iterable[str] = (),
          callbacks: Iterable[Any] = (), progress: bool = True) -> TrainResult:
    """Train a GAN and write a run folder.

    ``config`` is a ``Config``, a TOML path or a recipe name (default: the ring8 defaults). ``data``
    replaces the configured data; ``G``/``D`` replace the configured model family. With
    ``resume=True``, the run folder's own config.toml and checkpoint are used (``steps`` may extend
    the run). ``overrides`` are ``key=value`` strings applied last. ``run_dir=None`` picks
    ``runs/<name>``, or a free variant of it.
    """
    if resume:
        run = open_run(run_dir or (config.run_dir if isinstance(config, Config) else ""))
        config = run.config()
    else:
        config = _as_config(config)
    config = apply_overrides(config, [*([f"train.steps={steps}"] if steps is not None else []), *overrides])
    if not resume:
        path = Path(run_dir or config.run_dir or default_run_path(config))
        config = replace(config, run_dir=str(path))
        run = RunDir(path)
    plot_every = config.train.plot_every or max(config.train.steps // 4, 1)
    # Made first, so a missing tensorboard package stops the run before any work or any file.
    tensorboard = [TensorBoardLogger(run, plot_every)] if config.train.tensorboard else []
    if data is None:
        data = load_data(config.data, config.seed)
    if (G is None) != (D is None):
        raise GankitError("pass both G and D, or neither")
    if G is None:
        G, D, info = build_models(config, data)
    else:
        torch.manual_seed(config.seed)  # the user's modules are already initialised; seed the rest of the run
        info = {"family": "custom"}

    if not resume:
        run = create_run(run.path, config)
    else:
        save_config(config, run.config_path)  # the run's config now includes any extension

    trainer = Trainer(config, data, G, D, checkpoint_path=run.checkpoint, model_info=info)
    if resume:
        trainer.load_checkpoint(run.checkpoint)
    # In call order: pictures before TensorBoard (which logs them) and the report (which shows them) last.
    trainer.callbacks = [MetricsWriter(run, trainer.step if resume else None),
                         *([Progress(config.train.steps)] if progress else []),
                         *picture_callbacks(run, data, plot_every, config.seed), *tensorboard, *callbacks,
                         ReportWriter(run, plot_every)]
    record = trainer.fit()
    return TrainResult(run.path, trainer.step, trainer.stop_reason or "finished", record, trainer)


def picture_callbacks(run: RunDir, data: Dataset, every: int, seed: int) -> list[Any]:
    """Image grids for grey or RGB images, real-vs-generated plots for 1-D/2-D rows, else none."""
    if data.is_image and data.shape[0] in (1, 3):
        return [ImageGrids(run, every, seed=seed)]
    if not data.is_image and data.num_features <= 2:
        return [SamplePlotter(run, every, seed=seed)]
    return []


def _as_config(config: Config | str | Path | None) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    path = Path(config)
    return load_config(path if path.suffix == ".toml" or path.exists() else recipe(str(config)))


def load_generator(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any], torch.Tensor, torch.Tensor]:
    """G (its moving average when the run kept one) from a run folder's latest checkpoint, from safetensors and
    JSON only: (G, metadata, shift, scale)."""
    run = RunDir(Path(run_dir))
    config = run.config()
    tensors, meta = load_checkpoint(run.checkpoint, prefix="")
    model = meta["model"]
    if model["family"] == "custom":
        raise GankitError(f"{run.path}: this run trained a custom generator; load its weights "
                          f"(tensors named G.*) into your own module")
    G, _ = MODELS.get(model["family"])(config.model, tuple(model["shape"]), model["num_classes"],
                                        model["out_activation"])
    G.load_state_dict(unprefixed("G_ema" if any(k.startswith("G_ema.") for k in tensors) else "G", tensors))
    return G.eval(), meta, tensors["data.shift"], tensors["data.scale"]


@torch.no_grad()
def sample(run_dir: str | Path, n: int, seed: int = 0, label: str | int | None = None,
           batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples in the data's own units, and their class indices for a conditional model.

    The same ``seed`` gives the same samples. ``label`` (name or index) fixes the class; otherwise
    classes are drawn with the training data's frequencies.
    """
    G, meta, shift, scale = load_generator(run_dir)
    out, y = _generate(G, meta, n, seed, label, batch_size)
    return (out * scale + shift).numpy(), y  # [n, *shape]


@torch.no_grad()
def sample_images(run_dir: str | Path, n: int, seed: int = 0, label: str | int | None = None,
                  batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray | None]:
    """The samples of ``sample`` (same seed, same samples) as uint8 pixels [n, H, W, C], for image runs.

    Minmax-normalised data (every built-in image set) maps its full value range to 0..255 (see
    ``gankit.sampling``); data normalised otherwise is stretched from the batch's own min..max.
    """
    G, meta, _, _ = load_generator(run_dir)
    if len(meta["model"]["shape"]) != 3:
        raise GankitError(f"{run_dir}: this run's samples are rows of {math.prod(meta['model']['shape'])} values, "
                          f"not images; write them to a .npy or .csv file")
    out, y = _generate(G, meta, n, seed, label, batch_size)
    value_range = MINMAX_RANGE if meta["data"]["normalize"] == "minmax" else None
    return to_pixels(out, value_range), y


def _generate(G: nn.Module, meta: dict[str, Any], n: int, seed: int, label: str | int | None,
              batch_size: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """G's output for ``n`` seeded noise vectors (in the networks' space), and the class indices used."""
    if n <= 0:
        raise GankitError(f"--n {n}: expected a positive number of samples")
    classes = meta["data"]["class_names"]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, meta["model"]["z_dim"], generator=g)
    y = None
    if classes:
        if label is not None:
            y = torch.full((n,), label_index(classes, label), dtype=torch.long)
        else:
            y = torch.multinomial(torch.tensor(meta["data"]["class_frequencies"]), n, replacement=True, generator=g)
    elif label is not None:
        raise GankitError(f"--label {label}: this run's generator is unconditional")
    out = torch.cat([G(z[i:i + batch_size], None if y is None else y[i:i + batch_size])
                     for i in range(0, n, batch_size)])  # [n, *shape]
    return out, (None if y is None else y.numpy())
