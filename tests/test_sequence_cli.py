"""The command line picks a recurrent recipe for a sequence file, from its shape alone."""

from __future__ import annotations

import numpy as np
import pytest

from gankit.config import apply_overrides
from gankit.errors import GankitError
from gankit.file_recipes import defaults_for_file


def test_a_3d_array_gets_the_recurrent_recipe(tmp_path):
    path = tmp_path / "walks.npy"
    np.save(path, np.cumsum(np.random.default_rng(0).normal(size=(50, 12, 3)), axis=1))
    config = defaults_for_file(str(path))
    assert config.model.family == "rnn" and config.data.batch_size == 50 and config.model.z_global > 0
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((40, 3)) + np.arange(3))
    assert defaults_for_file(str(rows)).model.family == "mlp"  # rows keep the MLP recipe


def test_a_series_with_a_window_becomes_sequences(tmp_path):
    path = tmp_path / "series.csv"
    np.savetxt(path, np.random.default_rng(1).normal(size=(100, 2)), delimiter=",", header="a,b", comments="")
    config = defaults_for_file(str(path), ["data.window=10"])
    config = apply_overrides(config, ["data.window=10"])
    assert config.model.family == "rnn" and config.data.window == 10
    with pytest.raises(GankitError, match="window"):
        defaults_for_file(str(path), ["data.window=500"])  # longer than the series: one line naming it
