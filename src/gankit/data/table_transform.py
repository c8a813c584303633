"""Typed table <-> the matrix a tabular GAN sees: CTGAN's mode-specific normalisation and one-hots.

A numeric column (continuous, integer; datetime as float seconds since the epoch) is a variational
Gaussian mixture (table_mixture.py). A value x is encoded as a scalar and a one-hot mode k drawn from
the posterior p(k | x) (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN", sec. 4.2):

    value = clip((x - mu_k) / (4 sigma_k), -0.99, 0.99)        decode: x = mu_k + 4 sigma_k clip(value, -1, 1)

with an extra mode slot meaning "missing" when the column has missing cells. Categorical and boolean
columns are one-hots over their categories (plus "missing"); constants take no features and are
written back as they were. Encode and decode are vectorised over rows; the state is JSON + tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import GankitError
from .table_mixture import Mixture, compress, fit_mixture
from .table_cells import MISSING, texts
from .table_schema import TableSchema, frame_of

FORMAT = "gankit.table_transform/1"
NUMERIC = ("continuous", "integer", "datetime")
STD_MULTIPLIER = 4  # rdt's: a value lands in [-1, 1] with 99.99% probability
ARRAYS = ("weights", "means", "stds", "precisions", "log_const")


@dataclass(frozen=True)
class Span:
    column: str
    start: int  # first feature of the encoded matrix
    width: int
    activation: str  # "tanh" (one scalar) | "softmax" (a one-hot block)
    role: str  # "value" | "mode" | "category"


class TableTransformer:
    """Fitted on a typed frame (``typed_frame``); ``encode`` -> [N, D] float32, ``decode`` -> typed frame."""

    def __init__(self, schema: TableSchema, columns: list[dict], mixtures: dict[str, Mixture],
                 kept: dict[str, np.ndarray]):
        self.schema = schema
        self._columns = columns  # per modelled column, JSON-able: name, kind, missing slot, range, modes
        self._mixtures = mixtures
        self._kept = kept  # indices of the mixture's modes with weight > threshold
        self.spans: list[Span] = []
        start = 0
        for c in columns:
            if c["kind"] in NUMERIC:
                self.spans.append(Span(c["name"], start, 1, "tanh", "value"))
                self.spans.append(Span(c["name"], start + 1, c["modes"] + c["missing"], "softmax", "mode"))
                start += 1 + c["modes"] + c["missing"]
            else:
                width = len(schema.column(c["name"]).categories) + c["missing"]
                self.spans.append(Span(c["name"], start, width, "softmax", "category"))
                start += width
        self.width = start
        self.discrete = [s for s in self.spans if s.role == "category"]
        self._at = {s.column: i for i, s in enumerate(self.spans) if s.role != "mode"}  # first span of a column

    @classmethod
    def fit(cls, typed: pd.DataFrame, schema: TableSchema, seed: int = 0, max_modes: int = 10,
            weight_threshold: float = 0.005) -> TableTransformer:
        """One mixture per numeric column (CTGAN's settings), the category lists of the others."""
        columns, mixtures, kept = [], {}, {}
        for spec in schema.modelled():
            if spec.kind in NUMERIC:
                x = _numeric(typed, spec.name, spec.kind)
                present = x[~np.isnan(x)]
                if not len(present):
                    raise GankitError(f"column {spec.name!r}: every cell is missing; nothing to fit")
                points, counts = compress(present)
                # as many modes as distinct values at most (rdt caps at the number of rows)
                mixture = fit_mixture(points, counts, min(max_modes, len(points)), seed)
                keep = np.flatnonzero(mixture.weights > weight_threshold)
                kept[spec.name] = keep if len(keep) else np.array([int(np.argmax(mixture.weights))])
                mixtures[spec.name] = mixture
                columns.append({"name": spec.name, "kind": spec.kind, "missing": int(len(present) < len(x)),
                                "low": float(present.min()), "high": float(present.max()),
                                "modes": len(kept[spec.name])})
            else:
                values = _texts(typed, spec.name)
                _codes(values, spec.categories, spec.name)  # refuses values the schema does not know
                columns.append({"name": spec.name, "kind": spec.kind, "missing": int(pd.isna(values).any())})
        return cls(schema, columns, mixtures, kept)

    def encode(self, typed: pd.DataFrame, seed: int = 0) -> np.ndarray:
        """Typed frame -> [N, D] float32; each numeric cell's mode drawn from its posterior (seeded)."""
        n = len(typed)
        out = np.zeros((n, self.width), dtype=np.float32)
        for j, c in enumerate(self._columns):
            span = self.spans[self._at[c["name"]]]
            if c["kind"] in NUMERIC:
                self._encode_numeric(out, c, span.start, _numeric(typed, c["name"], c["kind"]),
                                     np.random.default_rng([seed, j]))
                continue
            spec = self.schema.column(c["name"])
            codes = _codes(_texts(typed, c["name"]), spec.categories, c["name"])
            missing = codes < 0
            if missing.any() and not c["missing"]:
                raise GankitError(f"column {c['name']!r}: {int(missing.sum())} missing cells, but the data the "
                                  f"transformer was fitted on had none")
            codes[missing] = len(spec.categories)  # the "missing" category
            out[np.arange(n), span.start + codes] = 1.0
        return out

    def _encode_numeric(self, out, c, start, x, rng) -> None:
        mixture, kept = self._mixtures[c["name"]], self._kept[c["name"]]
        rows = np.flatnonzero(~np.isnan(x))
        if len(rows) < len(x) and not c["missing"]:
            raise GankitError(f"column {c['name']!r}: {len(x) - len(rows)} missing cells, but the data the "
                              f"transformer was fitted on had none")
        xp = x[rows]
        probs = mixture.posterior(xp)[:, kept] + 1e-6  # [n, K] as rdt: restricted to the kept modes
        cum = np.cumsum(probs, axis=1)
        u = rng.random(len(xp))[:, None] * cum[:, -1:]
        k = np.minimum((cum < u).sum(axis=1), len(kept) - 1)  # inverse CDF: mode k ~ p(k | x)
        means, stds = mixture.means[kept][k], mixture.stds[kept][k]
        out[rows, start] = np.clip((xp - means) / (STD_MULTIPLIER * stds), -0.99, 0.99)
        out[rows, start + 1 + k] = 1.0
        if c["missing"]:
            out[np.isnan(x), start + 1 + len(kept)] = 1.0  # the "missing" mode; its value stays 0

    def decode(self, matrix, seed: int = 0) -> pd.DataFrame:
        """[N, D] (activated or not: argmax per softmax span) -> typed frame of ``schema.written()``."""
        matrix = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise ValueError(f"expected a matrix [N, {self.width}], got shape {tuple(matrix.shape)}")
        n = matrix.shape[0]
        by_name = {c["name"]: c for c in self._columns}
        out = {}
        for j, spec in enumerate(self.schema.columns):
            if spec.kind == "constant":
                value = np.full(n, spec.categories[0], dtype=object)
                value[np.random.default_rng([seed, j]).random(n) < spec.missing] = None  # missing at its rate
                out[spec.name] = value
            elif spec.name in by_name:
                span = self.spans[self._at[spec.name]]
                if spec.kind in NUMERIC:
                    out[spec.name] = self._decode_numeric(matrix, by_name[spec.name], span.start, spec)
                else:
                    block = matrix[:, span.start:span.start + span.width]
                    labels = np.array(list(spec.categories) + [None], dtype=object)
                    out[spec.name] = labels[np.argmax(block, axis=1)]
        return frame_of(out, n)

    def _decode_numeric(self, matrix, c, start, spec) -> np.ndarray:
        mixture, kept = self._mixtures[c["name"]], self._kept[c["name"]]
        modes = len(kept)
        k = np.argmax(matrix[:, start + 1:start + 1 + modes + c["missing"]], axis=1)
        missing = k >= modes
        k = np.minimum(k, modes - 1)
        value = np.clip(matrix[:, start].astype(np.float64), -1.0, 1.0)
        x = np.clip(value * STD_MULTIPLIER * mixture.stds[kept][k] + mixture.means[kept][k], c["low"], c["high"])
        if spec.kind == "integer":
            x = np.round(x)
        elif spec.kind == "continuous" and spec.decimals is not None:
            x = np.round(x, spec.decimals)
        if spec.kind != "datetime":
            x[missing] = np.nan
            return x
        step = _resolution(spec.date_format)  # a date written without its time is a whole day
        ns = (np.round(x / step) * step).astype(np.int64) * 10**9
        return np.where(missing, np.datetime64("NaT"), ns.astype("datetime64[ns]"))

    def category(self, column: str, value) -> tuple[int, int]:
        """(index into ``discrete``, category index) of ``column = value``, for conditional sampling."""
        spec = self.schema.column(column)
        d = next((i for i, s in enumerate(self.discrete) if s.column == column), None)
        if d is None:
            names = ", ".join(s.column for s in self.discrete) or "none"
            raise GankitError(f"column {column!r} is {spec.kind}; a condition needs a categorical or boolean "
                              f"column ({names})")
        text = None if value is None else str(value).strip()
        if text in spec.categories:
            return d, spec.categories.index(text)
        folded = [i for i, c in enumerate(spec.categories) if text is not None and c.casefold() == text.casefold()]
        if len(folded) == 1:
            return d, folded[0]
        has_missing = self.discrete[d].width > len(spec.categories)
        if has_missing and (text is None or text in MISSING):
            return d, len(spec.categories)
        shown = ", ".join(spec.categories) + (", or missing (an empty value)" if has_missing else "")
        raise GankitError(f"column {column!r} has no value {text!r}; expected one of {shown}")

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """(JSON-able meta, tensors): everything decode needs, with no pickled object."""
        meta = {"format": FORMAT, "schema": self.schema.to_json(), "columns": [dict(c) for c in self._columns]}
        tensors = {}
        for j, c in enumerate(self._columns):
            if c["kind"] in NUMERIC:
                mixture = self._mixtures[c["name"]]
                for key in ARRAYS:
                    tensors[f"mixture.{j}.{key}"] = torch.from_numpy(np.array(getattr(mixture, key), np.float64))
                tensors[f"mixture.{j}.kept"] = torch.from_numpy(np.array(self._kept[c["name"]], np.int64))
        return meta, tensors

    @classmethod
    def from_state(cls, meta: dict, tensors: dict[str, torch.Tensor]) -> TableTransformer:
        if meta.get("format") != FORMAT:
            raise GankitError(f"table transformer state has format {meta.get('format')!r}; expected {FORMAT!r}")
        schema = TableSchema.from_json(meta["schema"])
        columns = [dict(c) for c in meta["columns"]]
        mixtures, kept = {}, {}
        for j, c in enumerate(columns):
            if c["kind"] not in NUMERIC:
                continue
            arrays = {key: _array(tensors, f"mixture.{j}.{key}", np.float64) for key in ARRAYS}
            mixtures[c["name"]] = Mixture(**arrays)
            kept[c["name"]] = _array(tensors, f"mixture.{j}.kept", np.int64)
        return cls(schema, columns, mixtures, kept)


def _array(tensors, key, dtype) -> np.ndarray:
    if key not in tensors:
        raise GankitError(f"table transformer state lacks tensor {key!r}")
    return tensors[key].detach().cpu().numpy().astype(dtype)


def _column(typed: pd.DataFrame, name: str) -> pd.Series:
    if name not in typed.columns:
        raise GankitError(f"the table lacks column {name!r}; columns are {', '.join(map(str, typed.columns))}")
    return typed[name]


def _numeric(typed, name, kind) -> np.ndarray:
    """[N] float64 with NaN for missing; datetimes as seconds since 1970-01-01."""
    series = _column(typed, name)
    if kind != "datetime":
        return series.to_numpy(np.float64, na_value=np.nan)
    ns = series.to_numpy("datetime64[ns]")
    seconds = ns.astype(np.int64) / 1e9
    seconds[np.isnat(ns)] = np.nan
    return seconds


def _texts(typed, name) -> np.ndarray:
    return texts(_column(typed, name))


def _codes(values: np.ndarray, categories: tuple[str, ...], name: str) -> np.ndarray:
    """[N] category index of each value, -1 where missing; a value outside ``categories`` is an error."""
    codes = pd.Index(list(categories), dtype=object).get_indexer(values).astype(np.int64)  # -1: missing or unknown
    unknown = (codes < 0) & ~pd.isna(values)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise GankitError(f"column {name!r}: {values[row]!r} in row {row} is not one of its categories "
                          f"({', '.join(categories[:10])}{', ...' if len(categories) > 10 else ''})")
    return codes


def _resolution(date_format: str) -> int:
    """Seconds the format resolves: 86400 for a date, 60 for minutes, 1 with seconds."""
    if "%S" in date_format:
        return 1
    if "%M" in date_format:
        return 60
    return 3600 if "%H" in date_format else 86400
