"""``gankit eval`` for tables: SDMetrics' quality score (column shapes, column pair trends), machine-learning
efficacy for a target column, and privacy (distance to the closest record, exact copies), on a run's synthetic
rows or on two CSV files (``gankit eval --real a.csv --fake b.csv``).

A run scores as many synthetic rows as it trained on against those training rows; efficacy and privacy need rows
the generator never saw, which ``data.holdout`` keeps aside at training (the built-in table recipes hold out 20%).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import GankitError


def table_scores(train, fake, sdtypes: dict[str, str], holdout=None, target: str = "", seed: int = 0
                 ) -> dict[str, Any]:
    """The scores of ``fake`` against the real ``train`` rows (and the ``holdout`` rows, where given)."""
    from .metrics.table_utility import ml_efficacy, privacy
    from .metrics.tables import quality_report

    if target and target not in sdtypes:
        raise GankitError(f"--target {target}: no such column among the scored ones; columns: {', '.join(sdtypes)}")
    quality = quality_report(train, fake, sdtypes)
    out: dict[str, Any] = {"quality": quality}
    notes = []
    if holdout is not None:
        # equal sizes (as SDMetrics advises): a holdout smaller than the synthetic rows biases the score low
        out["privacy"] = privacy(train, holdout, fake, sdtypes, seed=seed, num_rows_subsample=len(holdout))
        if target:
            out["ml_efficacy"] = ml_efficacy(train, holdout, fake, target, sdtypes, seed=seed)
    else:
        notes.append("no held-out rows (data.holdout = 0): no privacy score; machine-learning efficacy tested on "
                     "20% of the real rows, which the generator may have seen")
        if target:
            test = np.random.default_rng(seed).permutation(len(train))[: max(len(train) // 5, 2)]
            rest = np.setdiff1d(np.arange(len(train)), test)
            out["ml_efficacy"] = ml_efficacy(train.iloc[rest].reset_index(drop=True),
                                             train.iloc[test].reset_index(drop=True), fake, target, sdtypes, seed=seed)
    if not target:
        notes.append("no --target (eval.target): no machine-learning efficacy")
    out["how"] = {"real": f"{len(train)} training rows", "fake": f"{len(fake)} synthetic rows",
                  **({"holdout": f"{len(holdout)} held-out rows"} if holdout is not None else {}),
                  "target": target or None, **({"notes": notes} if notes else {})}
    return out


def evaluate_table_run(config, data, G, meta: dict, n: int | None, seed: int, target: str = "") -> dict[str, Any]:
    """A table run's scores: ``n`` (default: as many as the training rows) synthetic rows of the run's generator."""
    from .table_output import generate_rows, table_rows

    table = meta["table"]
    n = n or len(data.frame)
    fake, _ = generate_rows(lambda count, s, fixed: table_rows(G, meta["model"], table, count, s, fixed), table, n,
                            seed)
    return table_scores(data.frame, fake, table.schema.sdtypes(), data.holdout, target or config.eval.target, seed)


def compare_tables(real: str | Path, fake: str | Path, target: str = "", seed: int = 0,
                   columns: dict[str, str] | None = None) -> dict[str, Any]:
    """Scores of the rows in ``fake`` against those in ``real`` (.csv or .parquet tables), the kinds detected on
    ``real`` and applied to both."""
    from .data.table_schema import detect_schema, typed_frame
    from .data.tables import read_table_file

    real_frame, fake_frame = read_table_file(Path(real)), read_table_file(Path(fake))
    schema = detect_schema(real_frame, columns or {}, str(real))
    missing = [c.name for c in schema.written() if c.name not in fake_frame.columns]
    if missing:
        raise GankitError(f"--fake {fake}: has no column {missing[0]!r}, which --real {real} has; expected the same "
                          f"columns")
    written = [c.name for c in schema.written()]
    result = table_scores(typed_frame(real_frame, schema), typed_frame(fake_frame[written], schema), schema.sdtypes(),
                          None, target, seed)
    result["how"].update(real=str(real), fake=str(fake))
    return result
