"""Tables: a CSV of mixed columns (``data.name = "table"``), a pandas DataFrame (``gankit.from_dataframe``), and
the built-in tables that install offline: scikit-learn's ``breast-cancer``, ``wine`` and ``diabetes``, and
``seattle-weather`` from the vega_datasets package.

Each becomes a ``Dataset`` whose rows are the encoded table (``TableTransformer``: a Gaussian mixture's value and
mode per numeric column, one-hots for categories, missing values as their own mode or category) and whose
``table`` attribute decodes generated rows back into a DataFrame with the source's columns, types and formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ..config import DataConfig
from ..errors import GankitError
from .dataset import DATASETS, Dataset, RawData, _normalised

# pandas and scikit-learn's mixtures are imported where a table is read: ``import gankit`` stays light

TABLE_SUFFIXES = (".csv", ".parquet")


def table_data(frame, config: DataConfig | None, source: str, seed: int) -> RawData:
    """The encoded rows of ``frame`` (text cells from a file, or a user's typed DataFrame) and their transformer,
    with the kinds of ``config.columns`` and ``config.holdout`` of the rows (seeded) kept out of training."""
    import numpy as np

    from .table_schema import detect_schema, typed_frame
    from .table_transform import TableTransformer

    config = config or DataConfig(name="table")
    if len(frame) < 2:
        raise GankitError(f"{source}: holds {len(frame)} row(s); expected at least 2 rows to learn a table from")
    schema = detect_schema(frame, config, source)
    if not schema.modelled():
        raise GankitError(f"{source}: no column to model (every column is an id, constant or empty); "
                          f"columns: {', '.join(c.name for c in schema.columns)}")
    typed = typed_frame(frame, schema)
    held = int(round(config.holdout * len(typed)))
    if config.holdout and not 2 <= held <= len(typed) - 2:
        raise GankitError(f"{source}: data.holdout = {config.holdout} of {len(typed)} rows leaves {held} held out and "
                          f"{len(typed) - held} to train on; expected at least 2 of each")
    order = np.random.default_rng(seed).permutation(len(typed))
    train = typed.iloc[np.sort(order[held:])].reset_index(drop=True)
    holdout = typed.iloc[np.sort(order[:held])].reset_index(drop=True) if held else None
    table = TableTransformer.fit(train, schema, seed=seed)
    x = torch.from_numpy(table.encode(train, seed=seed))
    return RawData(x=x, normalize="none", table=table, frame=train, holdout=holdout)


def read_table_file(path: Path):
    """The cells of a .csv (as text) or .parquet file (as typed), with one-line errors for what is not a table."""
    if not path.exists():
        raise GankitError(f"{path}: data file not found")
    if not path.is_file():
        raise GankitError(f"{path}: expected a .csv or .parquet table, found a directory")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from .table_io import read_csv_table

        return read_csv_table(path)
    if suffix == ".parquet":
        try:
            import pandas as pd
            return pd.read_parquet(path)
        except ImportError:
            raise GankitError(f"{path}: reading .parquet needs pyarrow: pip install pyarrow") from None
        except (OSError, ValueError) as e:
            raise GankitError(f"{path}: not a readable .parquet file ({e})") from None
    raise GankitError(f"{path}: unsupported table file {suffix or '(none)'!r}; expected .csv or .parquet")


@DATASETS.register("table")
def load_table(config: DataConfig, seed: int) -> RawData:
    if not config.path:
        raise GankitError('data.name = "table": set data.path to a .csv or .parquet file')
    path = Path(config.path)
    return table_data(read_table_file(path), config, str(path), seed)


def _sklearn_frame(loader, target_names: bool, **kwargs):
    bunch = loader(as_frame=True, **kwargs)
    frame = bunch.frame.copy()
    if target_names:  # the class names, not 0..K-1: a category, and readable in the samples
        frame["target"] = [str(bunch.target_names[int(v)]) for v in frame["target"]]
    return frame


@DATASETS.register("breast-cancer")
def breast_cancer(config: DataConfig, seed: int) -> RawData:
    """Wisconsin diagnostic breast cancer (569 rows): 30 continuous measurements and the diagnosis."""
    from sklearn.datasets import load_breast_cancer

    return table_data(_sklearn_frame(load_breast_cancer, True), config, "breast-cancer", seed)


@DATASETS.register("wine")
def wine(config: DataConfig, seed: int) -> RawData:
    """UCI wine recognition (178 rows): 13 continuous chemical measurements and the cultivar."""
    from sklearn.datasets import load_wine

    return table_data(_sklearn_frame(load_wine, True), config, "wine", seed)


@DATASETS.register("diabetes")
def diabetes(config: DataConfig, seed: int) -> RawData:
    """Efron et al.'s diabetes (442 rows), in its original units: age, sex, BMI, blood pressure, six serum
    measurements and the disease progression a year later."""
    from sklearn.datasets import load_diabetes

    return table_data(_sklearn_frame(load_diabetes, False, scaled=False), config, "diabetes", seed)


def seattle_weather_path() -> Path:
    """The CSV inside the vega_datasets package (read directly: nothing is downloaded)."""
    import importlib.util

    spec = importlib.util.find_spec("vega_datasets")  # found, not imported: its import reads pandas and more
    if spec is None or not spec.submodule_search_locations:
        raise GankitError('data.name = "seattle-weather" needs the vega_datasets package: pip install vega_datasets')
    path = Path(list(spec.submodule_search_locations)[0]) / "_data" / "seattle-weather.csv"
    if not path.is_file():
        raise GankitError(f"{path}: not found in the vega_datasets package; reinstall it: "
                          f"pip install --force-reinstall vega_datasets")
    return path


@DATASETS.register("seattle-weather")
def seattle_weather(config: DataConfig, seed: int) -> RawData:
    """Seattle's daily weather 2012-2015 (1,461 rows): the date, precipitation, high and low temperature, wind and
    the kind of weather (5 categories)."""
    return table_data(read_table_file(seattle_weather_path()), config, "seattle-weather", seed)


BUILT_IN_TABLES = ("breast-cancer", "wine", "diabetes", "seattle-weather")


def from_dataframe(frame, columns: Mapping[str, str] | None = None, name: str = "dataframe", seed: int = 0,
                   holdout: float = 0.0) -> Dataset:
    """A table ``Dataset`` from a pandas DataFrame: each column's kind detected (``columns`` overrides it:
    ``{"zip": "categorical"}``), missing values kept, the transformer fitted with ``seed`` on the rows that are not
    held out (``holdout``: a share of them, for gankit.evaluate's efficacy and privacy scores).

        >>> result = gankit.train("wine", data=gankit.from_dataframe(df))  # a table recipe, any table
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        raise GankitError("gankit.from_dataframe needs pandas: pip install pandas") from None
    if not isinstance(frame, pd.DataFrame):
        raise GankitError(f"from_dataframe: expected a pandas DataFrame, got {type(frame).__name__}")
    config = DataConfig(name="table", columns=dict(columns or {}), holdout=holdout)
    raw = table_data(frame.reset_index(drop=True), config, name, seed)
    return _normalised(raw, "none", name)
