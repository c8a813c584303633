"""Text as one-hot character sequences: the built-in English word list and the user's own lines.

Text is the discrete case a GAN finds hard (no gradient through a sampled symbol), so it needs data
of its own. Items are stored as ``x`` [N, T, V] one-hot float32 rows, where feature i is the symbol
``vocab[i]``; ``vocab[0] = "\\n"`` is the end token (a newline can never occur inside an item, since
items are lines) and the rest are the distinct characters, sorted. Each item is its characters, then the
end token; ``lengths`` counts both (``len(item) + 1``) and the steps after it are all zero.

``words``: the lower-case, purely alphabetic words (``^[a-z]+$``) of Debian's wamerican list, deduplicated
and sorted. ``lines``: any UTF-8 file at ``data.path``, one item per line (stripped; blank lines skipped).
Both have a FIXED held-out split, independent of the run's seed and of the machine: an item is in the
test split when ``zlib.crc32(item.encode("utf-8")) % 10 == 0`` (about 10%), so train and test never
change and never overlap. ``data.split`` picks train (the default) | test | all; set it to "all" to train
on every line of your own file.

``data.max_length`` drops longer items (silently: the kept count is ``len(data)``); 0 = keep all. The
vocabulary and T (``data.max_length + 1``, or the longest item + 1) come from every item of the source,
before the split and the length filter, so every split of a file has the same shape (T, V).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Iterable

import torch

from ..config import DataConfig
from ..errors import GankitError
from .dataset import DATASETS, RawData, steps_mask

WORDS_FILE = Path("/usr/share/dict/american-english")  # Debian's wamerican package
END = "\n"  # vocab[0]: ends every item
TEST_SHARE = 10  # 1 in TEST_SHARE items is held out
_WORD = re.compile(r"[a-z]+")


def in_test_split(item: str) -> bool:
    """The fixed held-out split: by a CRC-32 of the item's UTF-8 bytes, the same on every machine and run."""
    return zlib.crc32(item.encode("utf-8")) % TEST_SHARE == 0


def split_items(items: Iterable[str], split: str) -> list[str]:
    """The items of ``split`` (train | test | all), in their order."""
    if split == "all":
        return list(items)
    if split not in ("train", "test"):
        raise GankitError(f"data.split = {split!r}; expected train, test or all")
    test = split == "test"
    return [item for item in items if in_test_split(item) == test]


def make_vocab(items: Iterable[str]) -> list[str]:
    """The end token, then the distinct characters of ``items``, sorted."""
    chars = set()
    for item in items:
        chars.update(item)
    chars.discard(END)
    return [END] + sorted(chars)


def encode(items: list[str], vocab: list[str], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Items -> (x [N, steps, V] one-hot float32, lengths [N] int64 = len(item) + 1).

    Each item is its characters then the end token ``vocab[0]``; later steps are zero. Every item must fit
    (``len(item) < steps``) and use only symbols of ``vocab``."""
    index = {symbol: i for i, symbol in enumerate(vocab)}
    lengths = torch.tensor([len(item) + 1 for item in items], dtype=torch.int64)
    if len(items) and int(lengths.max()) > steps:
        longest = max(items, key=len)
        raise ValueError(f"item {longest[:40]!r} has {len(longest)} characters; {steps} steps hold at most "
                         f"{steps - 1} and the end token")
    try:
        flat = torch.tensor([index[c] for item in items for c in item], dtype=torch.int64)
    except KeyError as e:
        item = next(item for item in items if e.args[0] in item)
        raise ValueError(f"item {item[:40]!r}: symbol {e.args[0]!r} is not in the vocabulary") from None
    codes = torch.zeros(len(items), steps, dtype=torch.int64)
    codes[steps_mask(lengths - 1, steps)] = flat  # row-major: each item's characters in order
    x = torch.nn.functional.one_hot(codes, len(vocab)).float()  # [N, steps, V]; the end token is code 0
    x.masked_fill_(~steps_mask(lengths, steps)[:, :, None], 0.0)  # padding after the end: zero
    return x, lengths


def decode(x: torch.Tensor, vocab: list[str]) -> list[str]:
    """[N, T, V] scores or one-hots (argmax per step) or [N, T] indices -> items, each up to its first end
    token; an item with no end token is taken whole (all T steps)."""
    codes = x.argmax(-1) if x.dim() == 3 else x
    if codes.dim() != 2:
        raise ValueError(f"expected [N, T, V] scores or [N, T] indices, got shape {tuple(x.shape)}")
    items = []
    for row in codes.tolist():
        end = row.index(0) if 0 in row else len(row)
        items.append("".join(vocab[c] for c in row[:end]))
    return items


def _text_data(items: list[str], source: list[str], config: DataConfig, path: Path) -> RawData:
    """One split's items -> RawData, with the vocabulary and T of all ``source`` items."""
    steps = (config.max_length or max(map(len, source))) + 1
    if config.max_length:
        items = [item for item in items if len(item) <= config.max_length]
    if not items:
        why = f" of at most data.max_length = {config.max_length} characters" if config.max_length else ""
        hint = "; set data.split = \"all\" to use every item" if config.split == "test" else ""
        raise GankitError(f"{path}: no items{why} in the {config.split} split (1 item in {TEST_SHARE} is held out "
                          f"for test, by a hash of the item){hint}")
    vocab = make_vocab(source)
    x, lengths = encode(items, vocab, steps)
    return RawData(x=x, lengths=lengths, vocab=vocab, normalize="none", value_range=(0.0, 1.0))


def read_items(path: Path) -> list[str]:
    """The stripped, non-blank lines of a UTF-8 text file (a leading byte-order mark is ignored)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise GankitError(f"{path}: is not a UTF-8 text file (byte {e.start} cannot be decoded); expected one "
                          f"item per line") from None
    except IsADirectoryError:
        raise GankitError(f"{path}: is a directory; expected a UTF-8 text file of one item per line") from None
    except OSError as e:
        raise GankitError(f"{path}: cannot be read ({e.strerror})") from None
    if not text.strip():
        raise GankitError(f"{path}: is empty; expected a UTF-8 text file of one item per line")
    # split on "\n" only: str.splitlines would also cut at \x0b, \x1c, \u2028 ... inside an item
    return [item for item in (line.strip() for line in text.split("\n")) if item]


@DATASETS.register("words")
def words(config: DataConfig, seed: int) -> RawData:
    """The ~64,000 lower-case alphabetic English words of Debian's wamerican list, one-hot over a-z + end."""
    if config.path:
        raise GankitError(f'data.path = {config.path!r}: data.name = "words" always reads {WORDS_FILE}; for your '
                          f'own file of one item per line use data.name = "lines"')
    if not WORDS_FILE.is_file():
        raise GankitError(f"{WORDS_FILE}: word list not found; install it with `apt-get install wamerican` "
                          f"(or `./dev.sh setup`)")
    source = sorted({item for item in read_items(WORDS_FILE) if _WORD.fullmatch(item)})
    if not source:
        raise GankitError(f"{WORDS_FILE}: holds no lower-case words of only a-z; expected Debian's wamerican list")
    return _text_data(split_items(source, config.split), source, config, WORDS_FILE)


@DATASETS.register("lines")
def lines(config: DataConfig, seed: int) -> RawData:
    """The user's UTF-8 text file at data.path, one item per line, in file order (duplicates kept)."""
    if not config.path:
        raise GankitError('data.path is empty: data.name = "lines" needs a UTF-8 text file of one item per line')
    path = Path(config.path).expanduser()
    if not path.exists():
        raise GankitError(f"{path}: text file not found")
    source = read_items(path)
    return _text_data(split_items(source, config.split), source, config, path)
