"""Tables: gankit's tabular recipe against CTGAN and TVAE (the ``ctgan`` package) on the built-in tables, scored
by SDMetrics itself (``sdmetrics``'s QualityReport and DCROverfittingProtection, not gankit's copies) and by
machine-learning efficacy, in one run with the same seed and split.

For each table: 80% of the rows train every synthesizer (timed), 20% are held out; each synthesizer then draws as
many rows as it trained on. CTGAN and TVAE run with their defaults (300 epochs) and ``--peer-epochs`` if given;
gankit runs its recipe (configs/<table>.toml).

    pip install -e ".[bench]"        # ctgan and sdmetrics: for this benchmark only
    python bench/tabular.py                               # all four tables, all three synthesizers
    python bench/tabular.py --tables wine --peers ctgan   # one table, gankit and CTGAN
Ends with one JSON line; also writes bench/results/tabular.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import gankit
from gankit.data.dataset import DATASETS
from gankit.config import DataConfig
from gankit.metrics.table_utility import ml_efficacy

TABLES = {"breast-cancer": "target", "wine": "target", "diabetes": "target", "seattle-weather": "weather"}
RESULTS = Path(__file__).parent / "results" / "tabular.json"


def cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags"))
        return f"{name} ({' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_tile') if f in flags)})"
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def real_frame(name: str) -> tuple[pd.DataFrame, "object"]:
    """The table as typed values (the schema's kinds) and its schema, as gankit reads it."""
    schema = DATASETS.get(name)(DataConfig(name=name), 0).table.schema
    return _typed(name, schema), schema


def _typed(name: str, schema):
    from gankit.data.tables import seattle_weather_path, _sklearn_frame
    from gankit.data.table_io import read_csv_table
    from gankit.data.table_schema import typed_frame
    from sklearn import datasets

    if name == "seattle-weather":
        frame = read_csv_table(seattle_weather_path())
    elif name == "diabetes":
        frame = _sklearn_frame(datasets.load_diabetes, False, scaled=False)
    else:
        frame = _sklearn_frame(getattr(datasets, f"load_{name.replace('-', '_')}"), True)
    return typed_frame(frame, schema)


def metadata(schema) -> dict:
    columns = {}
    for column, sdtype in schema.sdtypes().items():
        spec = schema.column(column)
        columns[column] = {"sdtype": sdtype, **({"datetime_format": spec.date_format} if sdtype == "datetime" else {})}
    return {"columns": columns}


def to_peer(frame: pd.DataFrame, schema) -> pd.DataFrame:
    """CTGAN and TVAE take numbers and categories only: dates become seconds since the epoch."""
    out = frame.copy()
    for column, sdtype in schema.sdtypes().items():
        if sdtype == "datetime":
            out[column] = out[column].astype("int64") / 1e9
    return out


def from_peer(frame: pd.DataFrame, schema) -> pd.DataFrame:
    out = frame.copy()
    for column, sdtype in schema.sdtypes().items():
        if sdtype == "datetime":
            out[column] = pd.to_datetime(out[column] * 1e9).dt.floor("D")
        elif sdtype == "numerical" and schema.column(column).kind == "integer":
            out[column] = out[column].round()
    return out


def score(train: pd.DataFrame, holdout: pd.DataFrame, fake: pd.DataFrame, schema, target: str, seed: int) -> dict:
    with warnings.catch_warnings():  # the single-table report is deprecated in name only (0.32): same scores
        warnings.simplefilter("ignore", FutureWarning)
        from sdmetrics.reports.single_table import QualityReport
    from sdmetrics.single_table import DCROverfittingProtection

    meta = metadata(schema)
    report = QualityReport()
    report.generate(train, fake, meta, verbose=False)
    properties = report.get_properties()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcr = DCROverfittingProtection.compute(train, fake, holdout, {"tables": {"table": meta}}, "table",
                                               num_rows_subsample=len(holdout))
    ml = ml_efficacy(train, holdout, fake, target, schema.sdtypes(), seed=seed)
    return {"quality": report.get_score(),
            "column_shapes": float(properties.loc[properties.Property == "Column Shapes", "Score"].iloc[0]),
            "column_pair_trends": float(properties.loc[properties.Property == "Column Pair Trends", "Score"].iloc[0]),
            "ml": ml, "dcr_overfitting_protection": float(dcr)}


def run_gankit(name: str, train: pd.DataFrame, schema, seed: int, steps: int | None, overrides: list[str]
               ) -> tuple[pd.DataFrame, float]:
    config = gankit.load_config(Path(gankit.recipe(name)), [f"seed={seed}", *([f"train.steps={steps}"] if steps else []),
                                                           *overrides])
    kinds = {c.name: c.kind for c in schema.columns}  # the full table's kinds, so a split cannot change them
    data = gankit.from_dataframe(train, columns=kinds, name=name, seed=seed)
    run_dir = Path("runs/bench-tabular") / f"{name}-gankit-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run each time
    start = time.perf_counter()
    result = gankit.train(config, data=data, run_dir=run_dir, progress=False)
    seconds = time.perf_counter() - start
    return gankit.sample_table(result.run_dir, n=len(train), seed=seed), seconds


def run_peer(kind: str, train: pd.DataFrame, schema, seed: int, epochs: int | None) -> tuple[pd.DataFrame, float]:
    from ctgan import CTGAN, TVAE

    discrete = [c for c, t in schema.sdtypes().items() if t in ("categorical", "boolean")]
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = (CTGAN if kind == "ctgan" else TVAE)(**({"epochs": epochs} if epochs else {}))
    start = time.perf_counter()
    model.fit(to_peer(train, schema), discrete_columns=discrete)
    seconds = time.perf_counter() - start
    return from_peer(model.sample(len(train)), schema), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--peers", default="ctgan,tvae")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="gankit's training steps (default: the recipe's)")
    parser.add_argument("--peer-epochs", type=int, help="CTGAN's and TVAE's epochs (default: theirs, 300)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a change to gankit's recipe, e.g. --set train.ema=0.999 (repeatable)")
    parser.add_argument("--no-save", action="store_true", help="print only (experiments)")
    args = parser.parse_args()
    rows = []
    for name in args.tables.split(","):
        frame, schema = real_frame(name)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(frame))
        cut = int(0.8 * len(frame))
        train, holdout = frame.iloc[order[:cut]].reset_index(drop=True), frame.iloc[order[cut:]].reset_index(drop=True)
        for kind in ["gankit", *[p for p in args.peers.split(",") if p]]:
            fake, seconds = (run_gankit(name, train, schema, args.seed, args.steps, args.overrides) if kind == "gankit"
                             else run_peer(kind, train, schema, args.seed, args.peer_epochs))
            result = {"table": name, "synthesizer": kind, "train_s": round(seconds, 1),
                      **score(train, holdout, fake, schema, TABLES[name], args.seed)}
            rows.append(result)
            ml = result["ml"]
            print(f"{name:16s} {kind:7s} quality {result['quality']:.4f} (shapes {result['column_shapes']:.4f}, "
                  f"pairs {result['column_pair_trends']:.4f})  ML {ml['metric']} {ml['synthetic'][ml['metric']]:.3f} "
                  f"(real {ml['real'][ml['metric']]:.3f})  DCR {result['dcr_overfitting_protection']:.3f}  "
                  f"{seconds:6.1f} s", flush=True)
    import sdmetrics
    import ctgan

    summary = {"bench": "tabular", "cpu": cpu(), "torch": torch.__version__, "sdmetrics": sdmetrics.__version__,
               "ctgan": ctgan.__version__, "python": sys.version.split()[0], "seed": args.seed, "overrides": args.overrides, "results": rows}
    if not args.no_save:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
