"""Data: built-in sets and the user's files, all as one in-memory ``Dataset``.

Loaders return raw values; ``load_data`` applies the configured normalisation and records its inverse,
so generated samples can be mapped back to the data's own units.
"""

from .dataset import DATASETS, Dataset, from_arrays, label_index, load_data
from . import files, synthetic, digits, idx, images, text, sequences, tables  # noqa: F401  (register the built-ins)
from . import translation, pairs  # noqa: F401  (image-to-image: the built-in tasks, the user's folders)
from .sequences import from_sequences
from .tables import from_dataframe

__all__ = ["DATASETS", "Dataset", "from_arrays", "from_dataframe", "from_sequences", "label_index", "load_data"]
