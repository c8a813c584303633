"""A run's product from its folder, for the API, export and serve alike (which need neither the engine nor
the API module): the generator rebuilt from safetensors and JSON, and its samples for an evaluator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .config import ModelConfig
from .checkpoint import load_checkpoint, unprefixed
from .errors import GankitError
from .models import MODELS
from .models.codes import InfoGenerator
from .runs import RunDir
from .sampling import run_generator, seeded_inputs

if TYPE_CHECKING:  # export and serve import this module: the metrics stay out of their imports
    from .metrics.evaluate import Evaluator, SampleSet


def build_generator(family: str, model_config: ModelConfig, model: dict[str, Any]) -> nn.Module:
    """The generator a checkpoint's ``model`` section describes, with fresh weights: the family's G, wrapped as
    InfoGAN's when the run had codes (``model["infogan"]``); a table's G and an image translator from the section
    alone."""
    if family == "tabular":
        from .models.tabular import build_tabular_generator

        return build_tabular_generator(model)
    if "kwargs" in model:  # an image translator (pix2pix, SRGAN, CycleGAN): rebuilt from its recorded arguments
        from .models.translators import build_translator

        return build_translator(family, model["kwargs"])
    codes = model.get("infogan")
    inner_config = (replace(model_config, z_dim=InfoGenerator.inner_dim(codes["noise"], codes["categorical"],
                                                                        codes["continuous"])) if codes else model_config)
    G, _ = MODELS.get(family)(inner_config, tuple(model["shape"]), model["num_classes"], model["out_activation"])
    if codes:
        G = InfoGenerator(G, codes["noise"], codes["categorical"], codes["continuous"])
    return G


def load_generator(run_dir: str | Path, checkpoint: str = "latest", ema: bool | None = None
                   ) -> tuple[nn.Module, dict[str, Any], torch.Tensor, torch.Tensor]:
    """G from a run folder's ``latest`` or ``best`` checkpoint, from safetensors and JSON only: (G, metadata,
    shift, scale). ``ema``: None takes the moving average of G when the run kept one, True requires it, False
    takes the raw G; ``metadata["generator"]`` says which. A table run's decoder is ``metadata["table"]``."""
    run = RunDir(Path(run_dir))
    config = run.config()
    tensors, meta = load_checkpoint(run.checkpoint_file(checkpoint), prefix="")
    model = meta["model"]
    if model.get("kind") == "classifier":
        raise GankitError(f"{run.path}: this run is a semi-supervised classifier (ssgan), not a generator; use "
                          f"gankit classify RUN --input ... --out predictions.csv (gankit.classify in Python) or "
                          f"gankit eval RUN")
    if model.get("kind") == "scorer":
        raise GankitError(f"{run.path}: this run is an anomaly scorer ({model['family']}), not a generator; use "
                          f"gankit score RUN --input ... (gankit.score in Python) or gankit eval RUN")
    if model["family"] == "custom":
        raise GankitError(f"{run.path}: this run trained a custom generator; load its weights "
                          f"(tensors named G.*) into your own module")
    G = build_generator(model["family"], config.model, model)
    has_ema = any(k.startswith("G_ema.") for k in tensors)
    if ema and not has_ema:
        raise GankitError(f"--ema: {run.path} kept no moving average of G (train.ema = 0); use the raw G")
    meta["generator"] = "G_ema" if has_ema and ema is not False else "G"
    G.load_state_dict(unprefixed(meta["generator"], tensors))
    if "table" in meta["data"]:  # a table's decoder, from JSON and tensors like the weights
        from .data.table_transform import TableTransformer

        meta["table"] = TableTransformer.from_state(meta["data"]["table"], unprefixed("table", tensors))
    return G.eval(), meta, tensors["data.shift"], tensors["data.scale"]


def load_scorer(run_dir: str | Path, checkpoint: str = "latest"
                ) -> tuple[nn.Module, dict[str, Any], torch.Tensor, torch.Tensor]:
    """An anomaly run's scorer (``models.anomaly.Scorer``) from its checkpoint, from safetensors and JSON only:
    (scorer in eval mode, metadata, shift, scale); inputs in the networks' units, (u - shift) / scale."""
    from .models.anomaly import build_scorer

    run = RunDir(Path(run_dir))
    tensors, meta = load_checkpoint(run.checkpoint_file(checkpoint), prefix="")
    if meta["model"].get("kind") != "scorer":
        raise GankitError(f"{run.path}: this run trained a {meta['model']['family']} generator, not an anomaly "
                          f"scorer (game.name = \"bigan\", \"ganomaly\" or \"fanogan\" train one)")
    scorer = build_scorer(meta["model"]["scorer"])
    wanted = scorer.state_dict()  # the players' weights (G.*, E.*, D.*) and the scorer's own buffers (memory)
    scorer.load_state_dict({k: v for k, v in tensors.items() if k in wanted})
    return scorer.eval(), meta, tensors["data.shift"], tensors["data.scale"]


def load_classifier(run_dir: str | Path, checkpoint: str = "latest"
                    ) -> tuple[nn.Module, dict[str, Any], torch.Tensor, torch.Tensor]:
    """A semi-supervised run's classifier (``models.semisup.Classifier``) from its checkpoint, from safetensors
    and JSON only: (classifier in eval mode, metadata, shift, scale); inputs in the networks' units,
    (u - shift) / scale, outputs class probabilities [n, K] in the order of ``metadata["model"]["class_names"]``.
    The moving average of D is used where the run kept one (``metadata["classifier"]`` says which)."""
    from .models.semisup import build_classifier

    run = RunDir(Path(run_dir))
    tensors, meta = load_checkpoint(run.checkpoint_file(checkpoint), prefix="")
    if meta["model"].get("kind") != "classifier":
        raise GankitError(f"{run.path}: this run trained a {meta['model']['family']} "
                          f"{meta['model'].get('kind', 'generator')}, not a classifier (game.name = \"ssgan\" "
                          f"trains one)")
    classifier = build_classifier(meta["model"]["classifier"])
    meta["classifier"] = "D_ema" if any(k.startswith("D_ema.") for k in tensors) else "D"
    classifier.D.load_state_dict(unprefixed(meta["classifier"], tensors))
    return classifier.eval(), meta, tensors["data.shift"], tensors["data.scale"]


def eval_samples(evaluator: "Evaluator", G: nn.Module, z_dim: int, n: int, conditional: bool, seed: int = 0
                 ) -> "SampleSet":
    """``n`` samples of ``G`` in the data's units, from the same seeded inputs as ``gankit sample``, for an
    evaluator to score; a conditional G gets classes drawn with the data's frequencies."""
    from .metrics.evaluate import SampleSet

    z, y = seeded_inputs(n, z_dim, seed, evaluator.structure.class_frequencies if conditional else None)
    return SampleSet(evaluator.to_units(run_generator(G, z, y)), y)
