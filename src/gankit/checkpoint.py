"""Checkpoints: one safetensors file of tensors with JSON metadata in its header.

One file means one atomic rename: a checkpoint is written to a temporary file, fsynced, then renamed
over the old one, so a crash or Ctrl-C at any moment leaves the last good checkpoint intact.
Nothing is pickled; optimizer states are split into tensors (safetensors) and plain values (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from .errors import GankitError
from .fileio import atomic_write

META_KEY = "gankit"


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write tensors and JSON-able metadata to ``path`` atomically."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    data = save_bytes(tensors, metadata={META_KEY: json.dumps(meta)})
    atomic_write(Path(path), data)


def load_checkpoint(path: str | Path, prefix: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint; with ``prefix``, only the tensors whose names start with it."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys() if prefix is None or k.startswith(prefix)}
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise GankitError(f"{path}: not a readable gankit checkpoint ({e})") from None
    if not isinstance(meta, dict):
        raise GankitError(f"{path}: a safetensors file without gankit metadata; expected a gankit checkpoint")
    return tensors, meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """Only the JSON metadata of a checkpoint (cheap: no tensor is read)."""
    return load_checkpoint(path, prefix="\0")[1]


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def split_optimizer_state(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` -> (tensors named ``prefix.state.<param>.<key>``, the rest as JSON)."""
    tensors, scalars = {}, {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{param_id}.{key}"] = value
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def join_optimizer_state(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``split_optimizer_state``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in unprefixed(f"{prefix}.state", tensors).items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, entries in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}
