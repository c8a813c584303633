"""A run's generator as a self-contained folder, and back: what ``gankit export`` writes and ``gankit.load`` reads.

    EXPORT/manifest.json          what the generator is: architecture, z, labels, output shape and range, units
    EXPORT/generator.safetensors  its weights (the moving average when the run kept one, unless told otherwise)
    EXPORT/generator.onnx         optional: inputs z [batch, z_dim] float32 (+ y [batch] int64), output x

Sequence generators (output kind "sequence", [T, F], or "text", one-hot [T, V]) draw each sample's length from
z[:, 0] by the length CDF the manifest holds (``output.lengths``; see ``gankit.sequence_output``). The ONNX model
outputs x only, with G's padding zero; the lengths are computed from z by this module's post-processing (the
same float32 arithmetic as G), which also zeroes the padding again after ``to_data``. Text decodes by argmax per
step up to the end symbol ``vocab[0]``. A table run (output kind "table") adds its decoder, JSON + safetensors,
and loads as a ``table_export.ExportedTable`` whose ``generate`` gives DataFrames (see that module). An image
translator (pix2pix, SRGAN, CycleGAN) loads as a ``translator_export.ExportedTranslator`` (see that module); the
models that take samples in (``input_export``) as an anomaly scorer (EGBAD, GANomaly, f-AnoGAN), a
``scorer_export.ExportedScorer``, or a semi-supervised classifier (ssgan), a ``classifier_export.ExportedClassifier``.

Loading needs the model families and safetensors only: no run folder, no trainer, no unpickling. The ONNX
model is checked against PyTorch with onnxruntime before it is written, and refused when they differ.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save

from . import __version__
from .config import ModelConfig
from .data.dataset import label_index
from .errors import GankitError
from .fileio import atomic_write
from .onnx_export import ONNX_MODEL, bundle_session, export_checked
from .product_loader import build_generator, load_generator
from .products import GeneratorProduct
from .runs import RunDir
from .sampling import MINMAX_RANGE, seeded_inputs, to_pixels
from .classifier_export import ExportedClassifier
from .input_export import product_kind, write_export
from .scorer_export import ExportedScorer
from .sequence_output import manifest_entries, meta_kind, sample_lengths, texts, zero_padding
from .table_export import TABLE_STATE, TABLE_TENSORS, ExportedTable, load_table, table_manifest
from .translator_export import ExportedTranslator, load_translator_export, translator_manifest

EXPORT_FORMAT = "gankit-generator/1"
MANIFEST, WEIGHTS = "manifest.json", "generator.safetensors"
FORMATS = ("safetensors", "onnx")
ONNX_TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| accepted at export
ONNX_CHECK_BATCHES = (1, 7, 64)  # batch sizes the check runs: the batch dimension must really be dynamic
TAKERS = {m.kind: m for m in (ExportedScorer, ExportedClassifier)}  # models that take samples in: scores, classes


@dataclass
class ExportResult:
    out: Path
    files: list[Path]
    generator: str  # G_ema | G
    onnx_max_abs_diff: float | None = None
    checked: list[int | str] = field(default_factory=list)  # batch sizes compared (a translator's: "NxCxHxW")


class ExportedGenerator:
    """A generator with its manifest: turns (n, seed, labels, truncation) into samples, on PyTorch or onnxruntime.

    ``generate`` gives samples in the data's own units; ``images`` gives uint8 pixels for image models. The
    same seed gives the same samples on either backend (to float precision).
    """

    def __init__(self, manifest: dict[str, Any], G: torch.nn.Module | None, path: Path | None = None):
        self.manifest, self.G, self.path = manifest, G, path
        out = manifest["output"]
        self.shape: tuple[int, ...] = tuple(out["shape"])
        self.z_dim: int = manifest["latent"]["z_dim"]
        self.class_names: list[str] = manifest["labels"]["names"]
        self.class_frequencies: list[float] = manifest["labels"]["frequencies"]
        self.shift = np.asarray(out["shift"], np.float32).reshape(_stat_shape(self.shape))
        self.scale = np.asarray(out["scale"], np.float32).reshape(_stat_shape(self.shape))
        self.kind: str = out["kind"]  # rows | image | sequence | text
        self.vocab: list[str] = out.get("vocab") or []
        self.length_cdf = (np.asarray(out["lengths"]["cdf"], np.float32) if self.is_sequence and out.get("lengths")
                           else None)
        self._onnx = None

    @property
    def conditional(self) -> bool:
        return bool(self.class_names)

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def is_sequence(self) -> bool:
        """Sequences [T, F] or text (one-hot [T, V])."""
        return self.kind in ("sequence", "text")

    @property
    def variable_length(self) -> bool:
        return bool(self.is_sequence and self.manifest["output"]["lengths"]["variable"])

    def label_indices(self, labels: int | str | Sequence[int | str] | None, n: int) -> np.ndarray | None:
        """Class indices for ``n`` samples from one label (name or index) for all, or one per sample."""
        if labels is None:
            return None
        if not self.conditional:
            raise GankitError("labels: this generator is unconditional")
        many = isinstance(labels, (list, tuple))
        if many and len(labels) not in (1, n):
            raise GankitError(f"labels: {len(labels)} given for {n} samples; expected 1 or {n}")
        indices = [label_index(self.class_names, v) for v in (labels if many else [labels])]
        return np.asarray(indices * n if len(indices) == 1 else indices, np.int64)

    def inputs(self, n: int, seed: int = 0, labels: int | str | Sequence[int | str] | None = None,
               truncation: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The seeded (z, y) of ``n`` samples, as ``gankit sample`` draws them (labels by the data's frequencies
        unless given)."""
        if n <= 0:
            raise GankitError(f"n {n}: expected a positive number of samples")
        chosen = self.label_indices(labels, n)
        z, y = seeded_inputs(n, self.z_dim, seed, self.class_frequencies if self.conditional else None,
                             truncation=truncation)
        if chosen is not None:
            y = torch.from_numpy(chosen)
        return z.numpy(), None if y is None else y.numpy()

    def run(self, z: np.ndarray, y: np.ndarray | None = None, backend: str = "torch") -> np.ndarray:
        """G's output in the networks' space for inputs from ``inputs`` (float32 [n, *shape])."""
        if backend == "onnx":
            session = self.onnx_session()
            feeds = {"z": z} if y is None else {"z": z, "y": y}
            return session.run(["x"], feeds)[0]
        if self.G is None:
            raise GankitError("this export has no PyTorch weights")
        with torch.inference_mode():
            return self.G(torch.from_numpy(z), None if y is None else torch.from_numpy(y)).numpy()

    def to_data(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Network outputs -> the data's own units (``x * scale + shift``); sequences' steps past ``lengths`` -> 0."""
        return zero_padding(x * self.scale + self.shift, lengths)

    def lengths(self, x: np.ndarray, z: np.ndarray) -> np.ndarray | None:
        """Each sequence's valid steps ([n] int64) from G's output ``x`` and its inputs ``z``; None for rows and
        images. Text: up to and with the end symbol; sequences: the length z[:, 0] draws (output.lengths)."""
        if not self.is_sequence:
            return None
        return sample_lengths(x, z, self.length_cdf, self.kind == "text")

    def to_pixels(self, x: np.ndarray) -> np.ndarray:
        """Network outputs of an image model -> uint8 pixels [n, H, W, C]."""
        if not self.is_image:
            raise GankitError(f"this generator makes {self.what}, not images")
        value_range = self.manifest["output"]["network_range"]
        return to_pixels(x, tuple(value_range) if value_range else None)

    @property
    def what(self) -> str:
        """What the samples are, in words (for messages)."""
        return {"text": "text", "sequence": f"sequences {list(self.shape)}", "image": f"images {list(self.shape)}"
                }.get(self.kind, f"rows of {math.prod(self.shape)} values")

    def generate(self, n: int, seed: int = 0, labels: int | str | Sequence[int | str] | None = None,
                 truncation: float | None = None, backend: str = "torch") -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` samples in the data's units [n, *shape] and their class indices (None when unconditional);
        sequences are zero past each one's length (``sequences`` also gives the lengths)."""
        x, _, y = self.sequences(n, seed, labels, truncation, backend, check=False)
        return x, y

    def sequences(self, n: int, seed: int = 0, labels: int | str | Sequence[int | str] | None = None,
                  truncation: float | None = None, backend: str = "torch", check: bool = True
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(x [n, T, F] in the data's units with zero padding, lengths [n] or None, class indices or None)."""
        if check and not self.is_sequence:
            raise GankitError(f"this generator makes {self.what}, not sequences; use generate")
        z, y = self.inputs(n, seed, labels, truncation)
        out = self.run(z, y, backend)
        lengths = self.lengths(out, z)
        return self.to_data(out, lengths), lengths, y

    def texts(self, n: int, seed: int = 0, labels: int | str | Sequence[int | str] | None = None,
              truncation: float | None = None, backend: str = "torch") -> tuple[list[str], np.ndarray | None]:
        """``n`` generated items (strings) of a text generator, and their class indices (None when unconditional)."""
        if self.kind != "text":
            raise GankitError(f"this generator makes {self.what}, not text")
        z, y = self.inputs(n, seed, labels, truncation)
        return texts(self.run(z, y, backend), self.vocab), y

    def images(self, n: int, seed: int = 0, labels: int | str | Sequence[int | str] | None = None,
               truncation: float | None = None, backend: str = "torch") -> tuple[np.ndarray, np.ndarray | None]:
        """The samples of ``generate`` (same seed) as uint8 pixels [n, H, W, C]."""
        z, y = self.inputs(n, seed, labels, truncation)
        return self.to_pixels(self.run(z, y, backend)), y

    def check_feeds(self, n: int, seed: int) -> dict[str, np.ndarray]:
        """Random inputs of ``n`` samples for the ONNX check, named as the ONNX model's inputs."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.z_dim), dtype=np.float32)
        return {"z": z} | ({"y": rng.integers(0, len(self.class_names), n)} if self.conditional else {})

    def onnx_session(self, threads: int = 0):
        return bundle_session(self, threads)


def _stat_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of shift/scale: per feature for rows and sequences (the last axis), per channel for images."""
    return (shape[0], 1, 1) if len(shape) == 3 else shape[-1:]


def from_run(run_dir: str | Path, checkpoint: str = "latest", ema: bool | None = None
             ) -> ExportedGenerator | ExportedTable | ExportedTranslator:
    """The generator of a run folder with the manifest an export would write. ``ema``: None takes the moving
    average when the run kept one (as ``gankit sample`` does), True requires it, False takes the raw G."""

    kind = product_kind(run_dir, checkpoint)
    if kind in TAKERS:  # an anomaly scorer or a classifier: samples in, scores or classes out
        return TAKERS[kind].from_run(run_dir, checkpoint, ema)
    G, meta, shift, scale = load_generator(run_dir, checkpoint, ema)
    run = RunDir(Path(run_dir))
    config = run.config()
    model, generator = meta["model"], meta["generator"]
    source = {"run": str(run.path.resolve()), "checkpoint": checkpoint, "step": meta["step"],
              "generator": generator, "data": meta["data"]["name"]}
    if "table" in meta:
        return ExportedTable({"format": EXPORT_FORMAT, "gankit_version": __version__,
                              **table_manifest(G, meta, asdict(config.model)), "source": source}, G, meta["table"])
    if "translation" in meta["data"]:  # an image translator: images in, images out
        return ExportedTranslator(translator_manifest(G, meta, source), G)
    shape = tuple(model["shape"])
    kind = meta_kind(meta)
    image = kind == "image"
    value_range = (list(MINMAX_RANGE) if model["out_activation"] == "tanh" else
                   [0.0, 1.0] if kind == "text" else None)
    manifest = {
        "format": EXPORT_FORMAT,
        "gankit_version": __version__,
        # what the exported module is and takes (later products: a translator, a scorer, a classifier)
        "product": {"kind": "generator",
                    "inputs": GeneratorProduct(model["z_dim"], model["num_classes"]).inputs()},
        "family": model["family"],
        "architecture": {"model": asdict(config.model), "shape": list(shape), "num_classes": model["num_classes"],
                         "out_activation": model["out_activation"],
                         **({"infogan": model["infogan"]} if model.get("infogan") else {})},
        "latent": {"z_dim": model["z_dim"], "distribution": "standard normal",
                   "truncation": "entries of z with |z| > t are redrawn from N(0, 1) restricted to [-t, t]"},
        "labels": {"names": meta["data"]["class_names"], "frequencies": meta["data"]["class_frequencies"]},
        "output": {
            "kind": kind,
            "shape": list(shape),
            "network_range": value_range,  # [lo, hi] of G's output (tanh), null when unbounded
            "to_data": ("x * scale + shift per feature (the last axis), then the steps t >= length set to 0"
                        if kind in ("sequence", "text") else
                        "x * scale + shift (per channel for images, per column for rows)"),
            "shift": shift.flatten().tolist(),
            "scale": scale.flatten().tolist(),
            "columns": meta["data"].get("columns") or [],
            "to_pixels": ("pixel = round((x - lo) / (hi - lo) * 255) clipped to 0..255, [C, H, W] -> [H, W, C], with "
                          "[lo, hi] = network_range, or the batch's own min..max when it is null") if image else None,
            **manifest_entries(kind, G, meta),
        },
        "onnx": {"inputs": {"z": ["batch", model["z_dim"], "float32"]} | (
                     {"y": ["batch", "int64 class index"]} if model["num_classes"] else {}),
                 "outputs": {"x": ["batch", *shape, "float32, before to_data" + (
                     "; steps past each length are 0 (the lengths are not an output: see output.lengths)"
                     if kind in ("sequence", "text") else "")]}},
        "source": source,
    }
    return ExportedGenerator(manifest, G, None)


def _build(manifest: dict[str, Any]) -> torch.nn.Module:
    arch = manifest["architecture"]
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(arch["model"]) - known)
    if unknown:
        raise GankitError(f"manifest: model settings {', '.join(unknown)} are unknown to gankit {__version__}; "
                          f"load it with the gankit version that exported it ({manifest.get('gankit_version')})")
    model = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in arch["model"].items()})
    return build_generator(manifest["family"], model, arch)


def export(run_dir: str | Path, out: str | Path, formats: Sequence[str] = ("safetensors",), ema: bool | None = None,
           checkpoint: str = "latest", tolerance: float = ONNX_TOLERANCE) -> ExportResult:
    """Write a run's generator to ``out``: manifest + safetensors, and with ``"onnx"`` in ``formats`` an ONNX model
    whose outputs onnxruntime checks against PyTorch (``GankitError`` beyond ``tolerance``: nothing is written)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise GankitError(f"--format {','.join(formats)}: expected one or more of {', '.join(FORMATS)}")
    bundle = from_run(run_dir, checkpoint, ema)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GankitError(f"--out {out}: exists and is not a folder")
    if bundle.kind in TAKERS:  # files of its own: scorer.* or classifier.* (.safetensors, .onnx)
        return write_export(bundle, out, formats, tolerance)
    manifest = dict(bundle.manifest)
    decoder = bundle.decoder_files() if bundle.kind == "table" else {}  # {manifest key: (file, bytes)}
    manifest["files"] = {"weights": WEIGHTS} | {key: name for key, (name, _) in decoder.items()}
    result = ExportResult(out, [], manifest["source"]["generator"])
    onnx_bytes = None
    if "onnx" in formats:
        onnx_bytes, result.onnx_max_abs_diff, result.checked = (
            bundle.onnx_model(tolerance) if bundle.kind == "translator" else onnx_model(bundle, tolerance))
        manifest["files"]["onnx"] = ONNX_MODEL
        manifest["onnx"]["max_abs_diff"] = result.onnx_max_abs_diff
    state = {k: v.detach().contiguous() for k, v in bundle.G.state_dict().items()}
    writes = [(WEIGHTS, save(state, metadata={"format": EXPORT_FORMAT})), *decoder.values(),
              (MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())]
    if onnx_bytes is not None:
        writes.insert(1, (ONNX_MODEL, onnx_bytes))
    stale = ([ONNX_MODEL] if onnx_bytes is None else []) + ([] if decoder else [TABLE_STATE, TABLE_TENSORS])
    for name, data in writes:  # the manifest last: a folder with a manifest is a complete export
        for old in stale if name == MANIFEST else ():  # an earlier export's: they would not match these weights
            (out / old).unlink(missing_ok=True)
        atomic_write(out / name, data)
        result.files.append(out / name)
    return result


def onnx_model(bundle: ExportedGenerator | ExportedTable, tolerance: float = ONNX_TOLERANCE
               ) -> tuple[bytes, float, list[int]]:
    """The ONNX bytes of ``bundle``'s G (dynamic batch), and the largest |onnxruntime - PyTorch| over random inputs
    at each of ``ONNX_CHECK_BATCHES``."""
    example = bundle.check_feeds(2, seed=0)  # {"z": ..., "y" or "cond": ...}: the ONNX model's inputs
    args, names = tuple(torch.from_numpy(v) for v in example.values()), list(example)

    def write(path: Path, exporter: str) -> None:
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        program = torch.onnx.export(bundle.G, args, input_names=names, output_names=["x"], dynamo=True,
                                    dynamic_shapes=tuple({0: batch} for _ in args), verbose=False)
        program.save(str(path))

    def parity(session) -> tuple[float, str | None]:
        worst = 0.0
        for i, n in enumerate(ONNX_CHECK_BATCHES):
            feeds = bundle.check_feeds(n, seed=i)
            ours, theirs = bundle.run(*feeds.values()), session.run(["x"], feeds)[0]
            if theirs.shape != ours.shape:
                return worst, f"batch {n} gave shape {list(theirs.shape)}, PyTorch {list(ours.shape)}"
            worst = max(worst, float(np.abs(theirs.astype(np.float64) - ours).max()))
        if not worst <= tolerance:
            return worst, f"onnxruntime differs from PyTorch by up to {worst:.3g} (> {tolerance:g}) on random inputs"
        return worst, None

    data, _, worst = export_checked(f"this {bundle.manifest['family']} generator", write, parity, ("dynamo",))
    return data, worst, list(ONNX_CHECK_BATCHES)


def load(path: str | Path, checkpoint: str = "latest") -> ExportedGenerator | ExportedTable | ExportedTranslator:
    """A generator from an export folder (``gankit export``), or from a run folder directly; a table run's is an
    ``ExportedTable`` (``generate(n, seed, where)`` -> DataFrame).

    From an export this reads JSON and safetensors only: no run folder, no training code, no unpickling.
    """
    path = Path(path)
    if not (path / MANIFEST).is_file():
        if (path / "config.toml").is_file():
            return from_run(path, checkpoint)
        raise GankitError(f"{path}: not a gankit export (no {MANIFEST}) nor a run folder (no config.toml)")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GankitError(f"{path / MANIFEST}: not readable JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise GankitError(f"{path / MANIFEST}: format {found!r}; expected {EXPORT_FORMAT!r}")
    weights = path / manifest.get("files", {}).get("weights", WEIGHTS)
    try:
        state = load_file(weights)
    except Exception as e:  # safetensors raises its own error types for a damaged file
        raise GankitError(f"{weights}: cannot read the weights ({str(e).splitlines()[0]})") from None
    if manifest.get("product", {}).get("kind") == "translator":  # rebuilt from its recorded arguments alone
        return load_translator_export(path, manifest, state)
    if manifest.get("product", {}).get("kind") in TAKERS:
        return TAKERS[manifest["product"]["kind"]].from_export(path, manifest, state)
    G = _build(manifest)
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        raise GankitError(f"{weights}: the weights do not fit the manifest's architecture "
                          f"({str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e})") from None
    if manifest["output"]["kind"] == "table":
        return load_table(path, manifest, G.eval())
    return ExportedGenerator(manifest, G.eval(), path)
