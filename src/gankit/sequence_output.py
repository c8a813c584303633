"""Sequence and text samples out of a generator: lengths, padding, decoding, and the files ``gankit sample`` writes.

A recurrent generator (``models.rnn``, ``models.timegan``) makes [n, T, F] and draws each sample's length from
z[:, 0]: ``length = 1 + #{t < T - 1 : Phi(z[:, 0]) > cdf[t]}``, with Phi the standard normal CDF clamped to
[1e-6, 1 - 1e-6] and ``cdf`` the data's length CDF (the generator's ``length_cdf`` buffer; all mass at T for
data of one length). Steps t >= length are padding: zero in G's output, and set to zero again after
``x * scale + shift`` (which would put the shift there). Text is one-hot over ``vocab``; an item is the argmax of
each step up to the first end symbol ``vocab[0]`` (an all-zero padding step decodes as the end too).

Files (``write_sequences``): ``.npy`` [n, T, F] (one length only), ``.npz`` with ``x``, ``lengths`` (and ``y``),
long-format ``.csv`` (``id, time, <features>[, label]``: one row per valid step, what gankit's file loader reads
back); text goes to ``.txt``, one item per line. This module imports neither the engine nor the metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .data.text import decode
from .errors import GankitError
from .fileio import atomic_write
from .models.rnn import drawn_lengths

KINDS = ("rows", "image", "sequence", "text")
SEQUENCE_SUFFIXES = (".npy", ".npz", ".csv")
TEXT_SUFFIX = ".txt"


def output_kind(shape: Sequence[int], vocab: Sequence[str] | None = None) -> str:
    """What a generator of samples of ``shape`` makes: rows [F], image [C, H, W], sequence [T, F] or text."""
    if vocab:
        return "text"
    return {1: "rows", 2: "sequence", 3: "image"}.get(len(shape), "rows")


def meta_kind(meta: dict) -> str:
    """``output_kind`` of a checkpoint's metadata, "table" for a table run's, "translator" for image-to-image."""
    if "table" in meta["data"]:
        return "table"
    if "translation" in meta["data"]:
        return "translator"
    return output_kind(meta["model"]["shape"], meta["data"].get("vocab"))


def lengths_from_cdf(z: np.ndarray | torch.Tensor, cdf: Sequence[float] | torch.Tensor) -> np.ndarray:
    """[n] int64 lengths drawn by z[:, 0] from a length CDF [T] (``models.rnn.drawn_lengths``, on numpy too)."""
    z0 = torch.as_tensor(np.asarray(z)[:, 0] if not isinstance(z, torch.Tensor) else z[:, 0]).cpu()
    return drawn_lengths(z0, torch.as_tensor(cdf, dtype=torch.float32).cpu()).numpy().astype(np.int64)


def text_lengths(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """[n] int64 steps of one-hot items [n, T, V] up to and with the first end symbol (T when there is none); an
    item's drawn length may be cut short by an end symbol G emitted earlier."""
    ended = np.asarray(x).argmax(-1) == 0  # the end symbol, or the all-zero padding after it
    return np.where(ended.any(1), ended.argmax(1) + 1, ended.shape[1]).astype(np.int64)


def sample_lengths(x: np.ndarray | torch.Tensor, z: np.ndarray | torch.Tensor, cdf, text: bool) -> np.ndarray:
    """Each sample's valid steps: to its end symbol for text, else the length z[:, 0] draws from ``cdf`` (all T
    steps when ``cdf`` is None: a generator of one length)."""
    if text:
        return text_lengths(x)
    return np.full(len(x), x.shape[1], np.int64) if cdf is None else lengths_from_cdf(z, cdf)


def zero_padding(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """x [n, T, F] with the steps t >= lengths[i] of each sample set to 0 (in place; x is returned)."""
    if lengths is not None:
        x[np.arange(x.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = 0
    return x


def texts(x: np.ndarray | torch.Tensor, vocab: Sequence[str]) -> list[str]:
    """One-hot (or score) sequences [n, T, V] -> items: argmax per step, up to the first ``vocab[0]``."""
    return decode(torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x), list(vocab))


def ragged(x: np.ndarray, lengths: np.ndarray | None) -> list:
    """[n, T, F] -> a list of n nested lists [L_i, F] (each sample's valid steps), for JSON."""
    if lengths is None:
        return x.tolist()
    return [x[i, :int(L)].tolist() for i, L in enumerate(lengths)]


def check_out(path: Path, kind: str, variable: bool, conditional: bool = False) -> None:
    """A one-line error when ``--out`` cannot hold this run's samples (text: .txt; sequences: .npy/.npz/.csv;
    a .npy holds neither lengths nor labels)."""
    suffix = path.suffix.lower()
    if kind == "text":
        if suffix != TEXT_SUFFIX:
            raise GankitError(f"--out {path}: this run generates text; expected a .txt file (one item per line)")
        return
    if suffix == TEXT_SUFFIX:
        raise GankitError(f"--out {path}: a .txt file holds text; this run generates {kind}s of numbers "
                          f"(write a .npy, .npz or .csv file)")
    if suffix not in SEQUENCE_SUFFIXES:
        raise GankitError(f"--out {path}: expected a .npy, .npz (x, lengths, y) or long-format .csv file for "
                          f"sequences")
    if suffix == ".npy" and variable:
        raise GankitError(f"--out {path}: this run's sequences vary in length and a .npy holds no lengths; write "
                          f"{path.with_suffix('.npz')} (x, lengths) or a long-format .csv")
    if suffix == ".npy" and conditional:
        raise GankitError(f"--out {path}: this run is conditional and a .npy holds no labels; write "
                          f"{path.with_suffix('.npz')} (x, lengths, y) or a long-format .csv")


def write_sequences(path: Path, x: np.ndarray, lengths: np.ndarray | None, columns: Sequence[str],
                    labels: np.ndarray | None = None, label_name: str = "label") -> None:
    """Write sequences [n, T, F] (padding zeroed) to a .npy, .npz (x, lengths, y) or long .csv (``check_out`` first).

    ``labels``: one value per sample (as in the training file), the .npz's ``y`` or the CSV's last column."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    n, steps, features = x.shape
    full = np.full(n, steps, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    if suffix == ".npy":
        np.save(path, x)
    elif suffix == ".npz":
        arrays = {"x": x, "lengths": full, **({"y": labels} if labels is not None else {})}
        with path.open("wb") as f:
            np.savez(f, **arrays)
    else:
        names = list(columns) if len(columns) == features else [f"x{i}" for i in range(features)]
        valid = np.arange(steps)[None, :] < full[:, None]  # [n, T]
        ids, times = np.nonzero(valid)  # row-major: sample by sample, step by step
        table = np.column_stack([ids, times, x[valid]] + ([np.asarray(labels)[ids]] if labels is not None else []))
        header = ["id", "time", *names] + ([label_name] if labels is not None else [])
        np.savetxt(path, table, delimiter=",", header=",".join(header), comments="",
                   fmt=["%d", "%d"] + ["%.7g"] * features + (["%.7g"] if labels is not None else []))


def write_texts(path: Path, items: Sequence[str]) -> None:
    """One item per line (UTF-8, ``\\n`` line ends); an empty item is an empty line."""
    atomic_write(path, "".join(item + "\n" for item in items).encode("utf-8"))


def manifest_entries(kind: str, G: torch.nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """The export manifest's ``output`` entries of a sequence or text generator: its lengths and, for text, how to decode."""
    if kind not in ("sequence", "text"):
        return {}
    cdf = getattr(G, "length_cdf", None)
    steps = int(meta["model"]["shape"][0])
    entries: dict[str, Any] = {"lengths": {
        "variable": bool(meta["data"].get("variable_length")),
        "meaning": "valid steps of each sample; the steps after them are padding (0)",
        "from_z": ("length = 1 + #{t < T - 1 : u > cdf[t]} with u = Phi(z[:, 0]) (the standard normal CDF, clamped "
                   "to [1e-6, 1 - 1e-6]); all T steps when cdf is null" + (
                       "; text ends earlier at its first end symbol" if kind == "text" else "")),
        "cdf": cdf.detach().cpu().float().tolist() if cdf is not None else None,  # P(length <= t + 1), t < T
        "steps": steps}}
    if kind == "text":
        vocab = meta["data"]["vocab"]
        entries |= {"vocab": vocab, "end": vocab[0],
                    "decode": "argmax per step; stop at vocab[0] (the end symbol, not part of the item)"}
    return entries
