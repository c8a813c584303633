"""Synthetic tables from a trained generator: seeded rows decoded into a DataFrame with the source's columns, and
``where`` conditions (``weather=sun``) met by conditional generation, with rejection only as a fallback.

A condition on a categorical or boolean column sets that category in G's conditional vector (CTGAN's training
makes G honour it, the conditional loss measures how well), so a trained G has most draws kept; any other
condition (a number, a date, a second category) is met by drawing more rows and keeping those that satisfy it.
Every row returned is checked against every condition, and the caller learns how many draws it took.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .errors import GankitError

MAX_DRAWS_PER_ROW = 200  # rejection gives up after this many draws per wanted row


@dataclass(frozen=True)
class Condition:
    column: str
    text: str  # as the user wrote it
    value: object  # parsed to the column's kind: float, numpy datetime64, or the category's text
    conditional: bool = False  # met by G's conditional vector (the first condition on a category)


def parse_where(table, where: Sequence[str]) -> list[Condition]:
    """``column=value`` strings -> conditions, checked against the table's schema: the column must be one the
    samples hold and the value one it can take."""
    schema = table.schema
    conditions: list[Condition] = []
    conditioned = False
    for item in where:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise GankitError(f"--where {item!r}: expected column=value, e.g. --where weather=sun")
        written = {c.name: c for c in schema.written()}
        if name not in written:
            raise GankitError(f"--where {item}: no column {name!r} in the samples; columns: {', '.join(written)}")
        column = written[name]
        if column.kind in ("categorical", "boolean", "constant"):
            if text not in column.categories:
                shown = ", ".join(column.categories[:20]) + (", ..." if len(column.categories) > 20 else "")
                raise GankitError(f"--where {item}: column {name!r} has no category {text!r}; categories: {shown}")
            use_cond = column.kind != "constant" and not conditioned
            conditioned |= use_cond
            conditions.append(Condition(name, text, text, use_cond))
        elif column.kind == "datetime":
            try:
                value = np.datetime64(_parse_date(text, column.date_format))
            except ValueError:
                raise GankitError(f"--where {item}: {text!r} is not a date like the column's "
                                  f"({column.date_format or 'ISO'})") from None
            conditions.append(Condition(name, text, value))
        else:
            try:
                value = float(text)
            except ValueError:
                raise GankitError(f"--where {item}: column {name!r} holds numbers; {text!r} is not one") from None
            conditions.append(Condition(name, text, value))
    return conditions


def _parse_date(text: str, date_format: str):
    from datetime import datetime

    return datetime.strptime(text, date_format) if date_format else datetime.fromisoformat(text)


def matches(frame, condition: Condition) -> np.ndarray:
    """[n] bool: the rows of a decoded frame that meet the condition (numbers: equal as written, to the column's
    decimals)."""
    column = frame[condition.column]
    if isinstance(condition.value, str):
        return (column == condition.value).to_numpy(dtype=bool)
    if isinstance(condition.value, np.datetime64):
        return (column.to_numpy() == condition.value.astype(column.dtype)).astype(bool)
    values = column.to_numpy(dtype=float)
    return np.isclose(values, condition.value, rtol=0, atol=1e-9 * max(1.0, abs(condition.value)))


def generate_rows(draw: Callable[[int, int, tuple[int, int] | None], "object"], table, n: int, seed: int,
                  where: Sequence[str] = (), batch_size: int = 8192):
    """``n`` decoded rows meeting ``where``, and the number of rows drawn to get them (every row is checked; a
    condition on a category is also set in G's conditional vector, so few are turned away).

    ``draw(count, seed, fixed)`` returns ``count`` decoded rows (a DataFrame) from noise seeded by ``seed``, with
    the conditional vector fixed to ``fixed`` = (discrete span, category) when given (else drawn like the data's)."""
    import pandas as pd

    if n <= 0:
        raise GankitError(f"--n {n}: expected a positive number of rows")
    conditions = parse_where(table, where)
    if not conditions:
        return draw(n, seed, None), n
    fixed = next((table.category(c.column, c.text) for c in conditions if c.conditional), None)
    checked = conditions  # G honours its condition mostly, not always: every row is checked
    kept, drawn, round_ = [], 0, 0
    count = 0
    while count < n:
        if drawn >= MAX_DRAWS_PER_ROW * n:
            what = " and ".join(f"{c.column}={c.text}" for c in checked)
            raise GankitError(f"--where {what}: only {count} of {n} rows matched after {drawn:,} draws; the "
                              f"generator rarely makes such rows (ask for fewer, or for a value it makes)")
        size = n if round_ == 0 else min(batch_size, max(2 * (n - count), 256))
        rows = draw(size, seed + 1_000_003 * round_, fixed)  # each round its own seeded noise
        ok = np.ones(len(rows), dtype=bool)
        for condition in checked:
            ok &= matches(rows, condition)
        kept.append(rows[ok])
        count += int(ok.sum())
        drawn += size
        round_ += 1
    return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True), drawn


@torch.no_grad()
def table_rows(G, model: dict, table, n: int, seed: int, fixed: tuple[int, int] | None = None,
               batch_size: int = 8192):
    """``n`` decoded rows of G from the seeded inputs of ``models.tabular.tabular_inputs`` (conditions drawn like
    the data's, or all ``fixed``)."""
    from .models.tabular import tabular_inputs
    from .sampling import run_generator

    z, cond = tabular_inputs(model, n, seed, fixed)
    encoded = run_generator(G, z, cond, batch_size)
    return table.decode(encoded.numpy(), seed=seed)


def sample_table(run_dir, n: int, seed: int = 0, where: Sequence[str] = (), checkpoint: str = "latest",
                 batch_size: int = 8192):
    """``n`` synthetic rows of a table run as a pandas DataFrame: the source's columns in its order, with its
    types, categories and date formats. ``where``: ``column=value`` conditions every row meets (a category by
    conditional generation; numbers, dates and further categories by rejection); ``frame.attrs["draws"]`` says
    how many rows were drawn to get them. The same seed gives the same rows."""
    from .product_loader import load_generator

    G, meta, _, _ = load_generator(run_dir, checkpoint)
    table = meta.get("table")
    if table is None:
        raise GankitError(f"{run_dir}: this run's samples are not a table (a CSV of mixed columns, a DataFrame or a "
                          f"built-in table is); use gankit.sample")
    frame, draws = generate_rows(lambda count, s, fixed: table_rows(G, meta["model"], table, count, s, fixed,
                                                                    batch_size), table, n, seed, where, batch_size)
    frame.attrs["draws"] = draws
    return frame


def schema_of(meta: dict):
    """The ``TableSchema`` a checkpoint's metadata records (what each column was read as)."""
    from .data.table_schema import TableSchema

    return TableSchema.from_json(meta["data"]["table"]["schema"])


def write_table(frame, schema, path) -> None:
    """Rows to a .csv or .parquet file in the source's formats (``gankit.data.table_io.write_table``)."""
    from .data.table_io import write_table as write

    write(frame, schema, path)
