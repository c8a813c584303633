"""ONNX files for every product: the exporters tried in turn, the parity check's harness, the onnxruntime sessions.

What a product exports (its module, inputs, dynamic axes) and what its check compares stay with the product
(``export``'s generators and tables, ``translator_export``, ``scorer_export``); this module writes the model to
a temporary file with each exporter in turn, checks it on onnxruntime, and hands back the bytes only when it
agrees with PyTorch, so a failed export writes nothing.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import GankitError

EXPORTERS = ("dynamo", "legacy")  # torch.onnx's exporters, in the order tried: the second only if the first fails
ONNX_MODEL = "generator.onnx"  # a generator's, a table's and a translator's file in an export folder


def require_onnx() -> None:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError as e:
        raise GankitError(f"--format onnx needs onnx, onnxscript and onnxruntime ({e.name} is missing): "
                          f"pip install 'gankit[onnx]'") from None


@contextmanager
def quiet():
    """torch.onnx's warnings and log lines (torchvision missing, deprecations) silenced while it exports."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_checked(what: str, write: Callable[[Path, str], None], parity: Callable[[Any], tuple[Any, str | None]],
                   exporters: Sequence[str] = EXPORTERS) -> tuple[bytes, str, Any]:
    """(ONNX bytes, the exporter that made them, ``parity``'s result) of the first exporter whose model
    ``write(path, exporter)`` writes and whose onnxruntime session passes ``parity(session) -> (result, None)``;
    a one-line ``GankitError`` naming every exporter's failure ("ONNX export of {what} failed") otherwise."""
    require_onnx()
    failures = []
    for exporter in exporters:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                with quiet():
                    write(path, exporter)
                data = path.read_bytes()
                session = onnx_session(path)
            except Exception as e:  # an exporter failure names an operator, not a user mistake: report it plainly
                failures.append(f"{exporter} exporter: {str(e).strip().splitlines()[0][:300]}")
                continue
        result, problem = parity(session)
        if problem is None:
            return data, exporter, result
        failures.append(f"{exporter} exporter: {problem}")
    raise GankitError(f"ONNX export of {what} failed, so no ONNX model was written: {'; '.join(failures)}")


def onnx_session(path: Path, threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: onnxruntime's default (all cores)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bundle_session(bundle, threads: int = 0, name: str = ONNX_MODEL):
    """The onnxruntime session of a loaded export's ONNX file ``name``, made once per bundle (``bundle._onnx``),
    with a one-line error where the bundle is a run folder or was exported without ONNX."""
    if bundle._onnx is None:
        if bundle.path is None:
            raise GankitError(f"{bundle.manifest['source']['run']} is a run folder, which holds no ONNX model: "
                              f"gankit export it with --format onnx and use the export")
        if not (bundle.path / name).is_file():
            raise GankitError(f"{bundle.path}: no {name}; export with --format onnx to use the onnx backend")
        bundle._onnx = onnx_session(bundle.path / name, threads)
    return bundle._onnx
