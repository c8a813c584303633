"""The engine's checkpoint: every player, moving average, optimizer, scaler, RNG stream and sampler position.

Keys: ``<player>.*``, ``<player>_ema.*``, ``opt_<group>.*`` (tensors; the rest of each optimizer's state in the
JSON metadata under ``opt_<group>``), ``rng.*``, ``data.shift``/``data.scale``, and whatever the game keeps.
With players G and D and groups g and d this is the layout of the first gankit's checkpoints, so they load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .. import __version__, distributed
from ..checkpoint import join_optimizer_state, load_checkpoint, prefixed, save_checkpoint, split_optimizer_state, unprefixed
from ..errors import GankitError
from .updates import match_layouts

if TYPE_CHECKING:
    from .loop import Engine

CHECKPOINT_FORMAT = 1


def collect(engine: "Engine") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Everything needed to continue exactly: weights, optimizers, RNG states, batching position."""
    tensors: dict[str, Tensor] = {}
    for name, module in engine.players.items():
        tensors.update(prefixed(name, module.state_dict()))
    for name, ema in engine.emas.items():
        tensors.update(prefixed(f"{name}_ema", ema.state_dict()))
    meta: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "gankit_version": __version__, "step": engine.step,
                            **describe(engine)}
    for name, opt in engine.optimizers.items():
        opt_tensors, meta[f"opt_{name}"] = split_optimizer_state(f"opt_{name}", opt.state_dict())
        tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.noise"] = engine.batches.generator.get_state()
    if engine.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(engine.device)
    tensors["data.shift"], tensors["data.scale"] = engine.data.shift, engine.data.scale
    if engine.data.is_table:  # the decoder of generated rows travels with the weights (never pickled)
        tensors.update(prefixed("table", engine.data.table.state()[1]))
    meta["sampler"] = engine.batches.sampler.state_dict()
    meta["lr_scale"] = engine.lr_scale
    if any(s.is_enabled() for s in engine.scalers.values()):
        meta["scalers"] = {name: s.state_dict() for name, s in engine.scalers.items()}
    game_tensors, game_meta = engine.game.state()
    tensors.update(game_tensors)
    meta.update(game_meta)
    return tensors, meta


def describe(engine: "Engine") -> dict[str, Any]:
    """What the checkpoint says of the models and the data (what products rebuild themselves from)."""
    data = engine.data
    product = engine.product
    model = {**engine.model_info, **(product.describe() if product is not None else {})}
    return {"model": model,
            "data": {"name": data.name, "class_names": data.class_names if engine.conditional else [],
                     "class_frequencies": engine.label_probs.tolist() if engine.conditional else [],
                     "columns": data.columns, "normalize": data.normalize,
                     **({"variable_length": data.lengths is not None} if data.is_sequence else {}),
                     **({"vocab": data.vocab} if data.vocab else {}),
                     **({"table": data.table.state()[0]} if data.is_table else {}),
                     **({"translation": translation_meta(data)} if data.is_translation else {}),
                     **({"anomaly": anomaly_meta(data)} if getattr(data, "anomaly", None) is not None else {})}}


def translation_meta(data) -> dict[str, Any]:
    """What an image-to-image run's checkpoint says of its data: the task, the two domains, the input shape."""
    t = data.translation
    return {"task": t.task, "factor": t.factor, "paired": t.paired, "domains": list(t.domains),
            "classes": list(t.classes) if t.classes else None, "source_shape": list(t.source.shape[1:])}


def anomaly_meta(data) -> dict[str, Any]:
    """What an anomaly run's checkpoint says of its data: the normal class and the sizes of the held-out sets."""
    a = data.anomaly
    return {"normal": a.normal, "class_names": list(a.class_names), "held": len(a.held),
            "test": 0 if a.test_x is None else len(a.test_x)}


def save(engine: "Engine", path: str | Path | None = None, extra: dict[str, Any] | None = None) -> None:
    """Write the state to ``path`` (default: the run's latest checkpoint), with ``extra`` metadata."""
    target = Path(path) if path is not None else engine.checkpoint_path
    if target is None:
        return
    engine._check_finite()  # never store a diverged state
    # Every rank writes the run's checkpoint on schedule (path None), so only then may it talk to the others; a
    # checkpoint to a given path (the best one, from rank 0's evaluation) is written by rank 0 alone.
    scheduled = path is None
    world = engine.world
    if world.distributed:
        extra = {**(extra or {}), "world_size": world.size}
        if scheduled:  # every rank must hold the same weights: checked, then rank 0 writes
            replicas = distributed.digests(*engine.players.values())
            if any(r != replicas[0] for r in replicas):
                raise GankitError(f"step {engine.step}: the {world.size} processes' weights differ; stopping "
                                  f"before a checkpoint is written")
            extra["replica_digests_equal"] = True
    if world.is_main:
        tensors, meta = collect(engine)
        save_checkpoint(target, tensors, {**meta, **(extra or {})})
    if scheduled:
        distributed.barrier()  # the others wait until it is on disk (a rollback reads it)
        engine.last_checkpoint_step = engine.step


def load(engine: "Engine", path: str | Path) -> None:
    tensors, meta = load_checkpoint(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise GankitError(f"{path}: checkpoint format {meta.get('format')!r}; this gankit reads {CHECKPOINT_FORMAT}")
    restore(engine, tensors, meta, source=path)


def restore(engine: "Engine", tensors: dict[str, Tensor], meta: dict[str, Any], source: str | Path = "snapshot",
            checkpointed: bool = True) -> None:
    """Set every piece of training state from ``collect``'s output; ``checkpointed``: it is the one on disk."""
    try:
        for name, module in engine.players.items():
            module.load_state_dict(unprefixed(name, tensors))
        for name, ema in engine.emas.items():
            ema.load_state_dict(unprefixed(f"{name}_ema", tensors))
        for name, opt in engine.optimizers.items():
            opt.load_state_dict(join_optimizer_state(f"opt_{name}", tensors, meta[f"opt_{name}"]))
            match_layouts(opt)
    except (RuntimeError, ValueError, KeyError) as e:
        lines = [line.strip() for line in str(e).strip().splitlines()]
        # PyTorch's first line only says that loading failed; the next ones say which tensor and why
        why = next((line for line in lines if line.startswith(("size mismatch", "Missing key", "Unexpected key"))),
                   lines[0] if lines else repr(e))
        raise GankitError(f"{source}: checkpoint does not match the configured models ({why[:300]})") from None
    torch.set_rng_state(tensors["rng.torch"])
    engine.batches.generator.set_state(tensors["rng.noise"])
    if engine.device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], engine.device)
    engine.batches.sampler.load_state_dict(meta["sampler"])
    engine.ctx.scratch = {}
    if "scalers" in meta:
        for name, scaler in engine.scalers.items():
            if scaler.is_enabled() and name in meta["scalers"]:
                scaler.load_state_dict(meta["scalers"][name])
    engine.lr_scale = meta.get("lr_scale", 1.0)
    engine.game.load_state(tensors, meta)
    engine.step = engine._checked_step = meta["step"]
    engine.last_checkpoint_step = meta["step"] if checkpointed else None
