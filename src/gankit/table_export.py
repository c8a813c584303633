"""A table run's generator as an export (``gankit export``), and the rows it gives back (``gankit.load``, serve).

    EXPORT/manifest.json          output.kind "table": the columns (kind, categories, date format, decimals), the
                                  encoded layout (spans), CTGAN's conditions, and how to decode
    EXPORT/generator.safetensors  G's weights
    EXPORT/generator.onnx         optional: inputs z [batch, z_dim] and cond [batch, C] float32 -> x [batch, D]
    EXPORT/table.json             the decoder's settings (``TableTransformer.state()``): schema, per-column ranges
    EXPORT/table.safetensors      the decoder's arrays: each numeric column's Gaussian mixture and kept modes

Rows are drawn as ``gankit.sample_table`` draws them: seeded (z, cond) by ``models.tabular.tabular_inputs``, G,
``TableTransformer.decode``, and ``where`` conditions by ``table_output.generate_rows`` (a category through G's
conditional vector, the rest by rejection), so the same seed gives the same frame from the run or its export.
On onnxruntime the network agrees with PyTorch to float precision; a value on a rounding edge (a column's last
decimal, a date's day) could then land one step apart (the tests' fixed seeds show none).

JSON records (``records``, what ``gankit serve`` answers): continuous -> number, integer -> integer, datetime ->
text in the column's date format, categorical / boolean / constant -> the category's text as the source wrote it,
missing -> null. Nothing here unpickles: the decoder is JSON and safetensors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save

from .errors import GankitError
from .products import TableProduct
from .sampling import run_generator
from .table_output import generate_rows, parse_where

TABLE_STATE, TABLE_TENSORS = "table.json", "table.safetensors"
BATCH = 8192  # rows per model call, as sample_table's (so the export's rows are the run's)
Where = Sequence[str] | Mapping[str, Any] | str | None  # ["column=value", ...], {column: value} or "column=value"
DECODE = ("x [n, D] is laid out by output.encoded.spans [column, start, width, activation, role]. A numeric "
          "column (continuous, integer, datetime as seconds since 1970-01-01) has a 'value' span v (tanh) and a "
          "'mode' one-hot k (argmax; its last slot means missing when the column has missing cells): x = mu_k + 4 "
          "sigma_k clip(v, -1, 1), with mu, sigma = mixture.<j>.means / .stds at the kept modes mixture.<j>.kept "
          "(table.safetensors; j the column's index in table.json's columns), clipped to [low, high], integers "
          "rounded, continuous rounded to decimals, dates rounded to their format's resolution. A 'category' "
          "one-hot is categories[argmax] (a slot past them: missing). Constants are written as their one value. "
          "gankit.data.table_transform.TableTransformer.from_state(table.json, table.safetensors).decode does it all")
RECORDS = ("JSON records: continuous -> number, integer -> integer, datetime -> text in date_format, categorical, "
           "boolean and constant -> the category's text as the source wrote it, missing -> null")


def table_manifest(G: torch.nn.Module, meta: dict[str, Any], model_config: dict[str, Any]) -> dict[str, Any]:
    """The table-specific entries of an export's manifest (``export.from_run`` adds format, version and source)."""
    model, table = meta["model"], meta["table"]
    z_dim, cond_dim = model["z_dim"], model["cond_dim"]
    columns = [{"name": c.name, "kind": c.kind, "categories": list(c.categories), "date_format": c.date_format,
                "decimals": c.decimals, "missing": c.missing} for c in table.schema.written()]
    blocks, offset = [], 0
    for index, freqs in zip(model["discrete"], model["frequencies"]):
        name = model["spans"][index][0]
        categories = list(table.schema.column(name).categories)
        blocks.append({"column": name, "offset": offset, "categories": categories,
                       "missing_slot": len(freqs) > len(categories), "frequencies": freqs})
        offset += len(freqs)
    return {
        "product": {"kind": "table", "inputs": TableProduct(z_dim, cond_dim=cond_dim).inputs()},
        "family": model["family"],
        # what build_tabular_generator and tabular_inputs read: the checkpoint's model section, and the config's
        "architecture": {**model, "model": model_config},
        "latent": {"z_dim": z_dim, "noise_dim": model["noise_dim"], "gumbel_dim": z_dim - model["noise_dim"],
                   "distribution": "standard normal",
                   "layout": "[noise (noise_dim) | one normal e per softmax entry, G's Gumbel noise "
                             "-log(-log(Phi(e)))]; no truncation"},
        "conditions": {"cond_dim": cond_dim, "columns": blocks,
                       "draw": "cond is one-hot in one column's block: the column uniformly, then its category "
                               "with the data's frequency (CTGAN's sampling); where column=category fixes it"},
        "labels": {"names": [], "frequencies": []},
        "output": {"kind": "table", "shape": [int(G.width)], "columns": columns,
                   "encoded": {"width": int(G.width), "spans": model["spans"]},
                   "decode": DECODE, "records": RECORDS,
                   "where": "column=value conditions every row meets: a category by G's conditional vector, numbers "
                            "(equal to the column's decimals) and dates (in date_format) by rejection"},
        "onnx": {"inputs": {"z": ["batch", z_dim, "float32"]} | (
                     {"cond": ["batch", cond_dim, "float32, one-hot in one column's block (conditions)"]}
                     if cond_dim else {}),
                 "outputs": {"x": ["batch", int(G.width), "float32 encoded rows: tanh values and one-hots; see "
                                                          "output.decode"]}},
    }


class ExportedTable:
    """A table generator with its decoder: turns (n, seed, where) into a pandas DataFrame of the source's columns,
    on PyTorch or onnxruntime. ``gankit.load`` gives one for a table export (or a table run folder)."""

    kind = "table"

    def __init__(self, manifest: dict[str, Any], G: torch.nn.Module | None, table, path: Path | None = None):
        self.manifest, self.G, self.table, self.path = manifest, G, table, path
        self.model: dict[str, Any] = manifest["architecture"]  # what tabular_inputs reads
        self.z_dim: int = manifest["latent"]["z_dim"]
        self.columns: list[str] = [c["name"] for c in manifest["output"]["columns"]]
        self.calls = 0  # model calls so far (serve's /health counts them)
        self._onnx = None

    @property
    def what(self) -> str:
        return f"table rows of {len(self.columns)} columns"

    def inputs(self, n: int, seed: int = 0, fixed: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """The seeded (z [n, z_dim], cond [n, C] or None) of ``n`` rows, as ``gankit.sample_table`` draws them."""
        from .models.tabular import tabular_inputs

        z, cond = tabular_inputs(self.model, n, seed, fixed)
        return z.numpy(), None if cond is None else cond.numpy()

    def run(self, z: np.ndarray, cond: np.ndarray | None = None, backend: str = "torch") -> np.ndarray:
        """G's encoded rows [n, D] float32, in calls of at most ``BATCH`` rows."""
        self.calls += 1
        if backend == "onnx":
            session = self.onnx_session()
            return np.concatenate([session.run(["x"], {"z": z[i:i + BATCH]} | (
                {} if cond is None else {"cond": cond[i:i + BATCH]}))[0] for i in range(0, len(z), BATCH)])
        if self.G is None:
            raise GankitError("this export has no PyTorch weights")
        with torch.inference_mode():
            return run_generator(self.G, torch.from_numpy(z), None if cond is None else torch.from_numpy(cond),
                                 BATCH).numpy()

    def draw(self, count: int, seed: int, fixed: tuple[int, int] | None = None, backend: str = "torch"):
        """``count`` decoded rows (a DataFrame) from ``seed``'s inputs, conditioned on ``fixed`` when given."""
        z, cond = self.inputs(count, seed, fixed)
        return self.table.decode(self.run(z, cond, backend), seed=seed)

    def generate(self, n: int, seed: int = 0, where: Where = None, backend: str = "torch"):
        """``n`` rows as a DataFrame with the source's columns and types, every one meeting ``where``
        (["column=value", ...] or {column: value}); ``frame.attrs["draws"]`` says how many rows were drawn."""
        if n <= 0:
            raise GankitError(f"n {n}: expected a positive number of rows")
        frame, draws = generate_rows(lambda count, s, fixed: self.draw(count, s, fixed, backend), self.table, n,
                                     seed, self.where_items(where), BATCH)
        frame.attrs["draws"] = draws
        return frame

    def where_items(self, where: Where) -> list[str]:
        """``where`` as "column=value" strings, checked against the columns (``GankitError`` when one is wrong).
        A mapping's values may be numbers or booleans: true/false picks the column's true/false (yes/no) text."""
        if where is None:
            return []
        if isinstance(where, str):
            items = [where]
        elif isinstance(where, Mapping):
            items = [f"{k}={self._text(str(k), v)}" for k, v in where.items()]
        else:
            items = [str(w) for w in where]
        parse_where(self.table, items)
        return items

    def _text(self, column: str, value: Any) -> str:
        if isinstance(value, bool):
            words = ("true", "yes") if value else ("false", "no")
            spec = next((c for c in self.table.schema.written() if c.name == column), None)
            return next((c for c in (spec.categories if spec else ()) if c.casefold() in words), str(value))
        if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
            return str(int(value))  # 3.0 is the category "3" as well as the number 3
        return str(value)

    def records(self, frame) -> list[dict[str, Any]]:
        """Rows as JSON-able dicts of the source's columns (see the module docstring for the types)."""
        import pandas as pd

        values = []
        for spec in self.table.schema.written():
            column = frame[spec.name]
            if spec.kind == "datetime":
                text = pd.to_datetime(column).dt.strftime(spec.date_format or "%Y-%m-%dT%H:%M:%S")
                values.append([None if pd.isna(t) else t for t in text.tolist()])
            elif spec.kind in ("continuous", "integer"):
                cast = int if spec.kind == "integer" else float
                values.append([None if math.isnan(v) else cast(v) for v in column.to_numpy(np.float64).tolist()])
            else:
                values.append([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                               for v in column.tolist()])
        names = [spec.name for spec in self.table.schema.written()]
        return [dict(zip(names, row)) for row in zip(*values)]

    def json_body(self, n: int, seed: int, where: Where = None, backend: str = "torch") -> tuple[bytes, int, int]:
        """(``gankit serve``'s JSON answer: seed, n, draws, columns and records; draws; model calls it took)."""
        calls = self.calls
        frame = self.generate(n, seed, where, backend)
        draws = frame.attrs["draws"]
        body = {"seed": seed, "n": len(frame), "draws": draws, "columns": self.columns, "records": self.records(frame)}
        return json.dumps(body).encode(), draws, self.calls - calls

    def check_feeds(self, n: int, seed: int) -> dict[str, np.ndarray]:
        """Inputs of ``n`` rows for the ONNX check, named as the ONNX model's inputs."""
        z, cond = self.inputs(n, seed)
        return {"z": z} | ({} if cond is None else {"cond": cond})

    def decoder_files(self) -> dict[str, tuple[str, bytes]]:
        """The decoder as an export writes it: {manifest key: (file name, bytes)}, JSON and safetensors."""
        meta, tensors = self.table.state()
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        return {"decoder": (TABLE_STATE, (json.dumps(meta, indent=1) + "\n").encode()),
                "decoder_tensors": (TABLE_TENSORS, save(tensors, metadata={"format": meta["format"]}))}

    def onnx_session(self, threads: int = 0):
        from .onnx_export import bundle_session

        return bundle_session(self, threads)


def load_table(path: Path, manifest: dict[str, Any], G: torch.nn.Module) -> ExportedTable:
    """The table generator of an export folder: G (already loaded) and the decoder from JSON + safetensors."""
    from .data.table_transform import TableTransformer

    files = manifest.get("files", {})
    state, arrays = path / files.get("decoder", TABLE_STATE), path / files.get("decoder_tensors", TABLE_TENSORS)
    try:
        meta = json.loads(state.read_text())
        tensors = load_file(arrays)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GankitError(f"{path}: cannot read the table's decoder ({e})") from None
    except Exception as e:  # safetensors raises its own error types for a damaged file
        raise GankitError(f"{arrays}: cannot read the table's decoder ({str(e).splitlines()[0]})") from None
    try:
        table = TableTransformer.from_state(meta, tensors)
    except (KeyError, TypeError, AttributeError) as e:
        raise GankitError(f"{state}: not a table decoder ({type(e).__name__}: {e})") from None
    if table.width != G.width:
        raise GankitError(f"{state}: the decoder reads rows of {table.width} features; G makes {G.width}")
    return ExportedTable(manifest, G, table, path)
