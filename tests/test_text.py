"""Text data (words, lines), its one-hot encoding, the text scores and the character-LM baseline."""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import replace

import pytest
import torch

from gankit.baselines import CharLM, char_lm_cross_entropy, sample_char_lm, train_char_lm
from gankit.config import DataConfig
from gankit.data import load_data
from gankit.data import text
from gankit.data.text import WORDS_FILE, decode, encode
from gankit.errors import GankitError
from gankit.metrics.text import START, STOP, bigrams, jensen_shannon_distance, length_wasserstein, text_scores

needs_words = pytest.mark.skipif(not WORDS_FILE.is_file(),
                                 reason=f"{WORDS_FILE} missing (apt-get install wamerican)")


def held_out(word: str) -> bool:
    """The split rule, restated here: test when the CRC-32 of the UTF-8 bytes is 0 mod 10."""
    return zlib.crc32(word.encode("utf-8")) % 10 == 0


@pytest.fixture(scope="module")
def words_all():
    return load_data(DataConfig(name="words", split="all"))


# --------------------------------------------------------------------------------------------- words


@needs_words
def test_words_are_lower_case_alphabetic_sorted_and_unique(words_all):
    items = decode(words_all.x, words_all.vocab)
    assert len(items) > 50_000
    assert all(re.fullmatch(r"[a-z]+", w) for w in items)
    assert items == sorted(set(items))
    assert words_all.vocab == ["\n"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert words_all.name == "words" and words_all.normalize == "none" and words_all.is_text
    longest = max(map(len, items))
    assert words_all.shape == (longest + 1, 27)
    assert torch.equal(words_all.lengths, torch.tensor([len(w) + 1 for w in items]))


@needs_words
def test_words_split_is_fixed_disjoint_and_complete(words_all):
    train, test = (load_data(DataConfig(name="words", split=s)) for s in ("train", "test"))
    train_items, test_items = decode(train.x, train.vocab), decode(test.x, test.vocab)
    all_items = decode(words_all.x, words_all.vocab)
    assert not set(train_items) & set(test_items)
    assert sorted(train_items + test_items) == all_items
    assert all(held_out(w) for w in test_items) and not any(held_out(w) for w in train_items)
    assert 0.08 < len(test_items) / len(all_items) < 0.12
    assert zlib.crc32(b"able") == 488497480  # CRC-32 is a standard: the same value on every machine
    assert "able" in test_items and "about" in train_items and "cat" in train_items
    assert train.shape == test.shape == words_all.shape  # one vocabulary and T for every split


@needs_words
def test_words_max_length_drops_longer_items():
    data = load_data(DataConfig(name="words", split="test", max_length=4))
    items = decode(data.x, data.vocab)
    assert data.shape == (5, 27) and items and max(map(len, items)) <= 4
    assert "able" in items and "abjure" not in items


def test_words_errors(monkeypatch, tmp_path):
    with pytest.raises(GankitError, match='data.name = "lines"'):
        load_data(DataConfig(name="words", path="my.txt"))
    monkeypatch.setattr(text, "WORDS_FILE", tmp_path / "american-english")
    with pytest.raises(GankitError, match=r"american-english: word list not found; .*apt-get install wamerican"):
        load_data(DataConfig(name="words"))
    (tmp_path / "american-english").write_text("Apple\ncat's\nÉlan\n")
    with pytest.raises(GankitError, match="american-english: holds no lower-case words"):
        load_data(DataConfig(name="words"))


# --------------------------------------------------------------------------------------------- lines


def write(tmp_path, content: str | bytes) -> str:
    path = tmp_path / "items.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def test_lines_reads_stripped_non_blank_items_over_their_own_characters(tmp_path):
    items = [f"item {i} é" for i in range(40)] + ["ab", "x"]
    path = write(tmp_path, "\ufeff" + "\n\n".join(f"  {s}\t" for s in items) + "\r\n\n")
    data = load_data(DataConfig(name="lines", path=path, split="all"))
    assert decode(data.x, data.vocab) == items  # file order, BOM and surrounding whitespace gone
    assert data.name == path  # a file's data set is named by its path
    assert data.vocab == ["\n"] + sorted(set("".join(items)))
    assert data.shape == (len("item 39 é") + 1, len(data.vocab))
    train, test = (load_data(DataConfig(name="lines", path=path, split=s)) for s in ("train", "test"))
    assert decode(train.x, train.vocab) == [s for s in items if not held_out(s)]  # the default split is train
    assert decode(test.x, test.vocab) == [s for s in items if held_out(s)]
    assert len(test) > 0 and train.shape == test.shape == data.shape


def test_lines_errors(tmp_path):
    def fails(match, **data):
        with pytest.raises(GankitError, match=match) as error:
            load_data(DataConfig(name="lines", **data))
        assert "\n" not in str(error.value)  # one line

    fails('data.path is empty: data.name = "lines"')
    fails("nope.txt: text file not found", path=str(tmp_path / "nope.txt"))
    fails("is a directory", path=str(tmp_path))
    fails("items.txt: is empty", path=write(tmp_path, ""))
    fails("items.txt: is empty", path=write(tmp_path, " \n\t\n\n"))
    fails("items.txt: is not a UTF-8 text file", path=write(tmp_path, b"caf\xe9\n"))
    fails(r"items.txt: no items of at most data.max_length = 2 characters in the all split",
          path=write(tmp_path, "abc\nabcd\n"), split="all", max_length=2)
    # one item, in train: nothing is held out for test
    assert not held_out("abc")
    fails(r"items.txt: no items in the test split .*data.split = \"all\"", path=write(tmp_path, "abc\n"),
          split="test")


# --------------------------------------------------------------------------------------------- encoding


def test_encode_decode_round_trip_and_one_hot_layout():
    vocab = ["\n", "a", "b", "c"]
    items = ["abc", "", "ba", "c"]
    x, lengths = encode(items, vocab, steps=5)
    assert x.shape == (4, 5, 4) and x.dtype == torch.float32
    assert lengths.tolist() == [4, 1, 3, 2] and lengths.dtype == torch.int64
    valid = torch.arange(5) < lengths[:, None]
    assert torch.equal(x.sum(-1), valid.float())  # one-hot on valid steps, zero on padding
    assert x[0, 3].tolist() == [1, 0, 0, 0] and x[1, 0, 0] == 1  # the end token closes every item
    assert decode(x, vocab) == items
    assert decode(x * 3 - 1 + 0.1 * torch.rand_like(x), vocab) == items  # scores: argmax per step
    assert decode(torch.tensor([[2, 1, 0, 3], [1, 1, 1, 1]]), vocab) == ["ba", "aaaa"]  # no end: taken whole
    with pytest.raises(ValueError, match="4 steps hold at most 3"):
        encode(["abcd"], vocab, steps=4)
    with pytest.raises(ValueError, match="symbol 'z' is not in the vocabulary"):
        encode(["az"], vocab, steps=4)


# --------------------------------------------------------------------------------------------- scores


def test_text_scores_on_hand_worked_cases():
    train, everything = {"cat", "dog"}, ["cat", "dog", "cow"]
    s = text_scores(["cat", "cat", "zzq"], train, everything, ["cow"])
    assert s["valid"] == pytest.approx(2 / 3) and s["novel"] == 0.0 and s["unique"] == pytest.approx(2 / 3)
    s = text_scores(["cow", "cat", "zzq", "qq"], train, everything, ["cow"])
    assert s["valid"] == 0.5 and s["novel"] == 0.5 and s["unique"] == 1.0
    assert text_scores(["zz"], train, everything, ["cow"])["novel"] == 0.0  # no valid item
    same = ["cat", "dog", "cow"]
    s = text_scores(same, train, everything, list(reversed(same)))
    assert s["bigram_jsd"] == 0.0 and s["length_distance"] == 0.0
    assert text_scores(["ab"], train, everything, ["cd"])["bigram_jsd"] == pytest.approx(1.0)
    # "ab" and "ba" share no bigram once the boundaries count: (^a)(ab)(b$) vs (^b)(ba)(a$)
    assert text_scores(["ab"], train, everything, ["ba"])["bigram_jsd"] == pytest.approx(1.0)
    assert bigrams(["ab", ""]) == Counter({(START, "a"): 1, ("a", "b"): 1, ("b", STOP): 1, (START, STOP): 1})


def test_jensen_shannon_distance_by_hand_and_against_scipy():
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): JSD = (log2(4/3) + (log2(2/3) + 1) / 2) / 2
    expected = math.sqrt((math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2)
    assert jensen_shannon_distance(Counter(x=1), Counter(x=3, y=3)) == pytest.approx(expected)
    assert expected == pytest.approx(0.5579, abs=1e-4)
    distance = pytest.importorskip("scipy.spatial.distance")
    p, q = Counter(a=5, b=1, c=2), Counter(b=4, c=1, d=7)
    keys = sorted(p.keys() | q.keys())
    assert jensen_shannon_distance(p, q) == pytest.approx(
        distance.jensenshannon([p[k] for k in keys], [q[k] for k in keys], base=2))


def test_length_distance_is_wasserstein_1_in_characters():
    assert length_wasserstein(["a"], ["abc"]) == pytest.approx(2.0)
    assert length_wasserstein(["a", "abc"], ["ab", "ab"]) == pytest.approx(1.0)
    assert length_wasserstein(["", "ab"], ["ba", ""]) == 0.0


# --------------------------------------------------------------------------------------------- baseline


@needs_words
def test_char_lm_learns_in_two_seconds_and_samples_items_that_end(words_all):
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(words_all), generator=g)
    train = replace(words_all, x=words_all.x[order[:200]], lengths=words_all.lengths[order[:200]])
    val = replace(words_all, x=words_all.x[order[200:400]], lengths=words_all.lengths[order[200:400]])
    torch.manual_seed(0)
    before = char_lm_cross_entropy(CharLM(len(words_all.vocab), hidden=32), val)  # ~ln 27 = 3.3 nats
    # Small and slow enough not to overfit 200 words in 2 s on a machine ~5x faster than a 2-core CI box
    # (validation stays below init - 0.2 from ~50 to ~3,000 steps; this one does ~600 here).
    model, info = train_char_lm(train, hidden=32, layers=1, seconds=2.0, batch_size=16, lr=1e-3)
    assert info["steps"] >= 5 and info["seconds"] >= 2.0 and info["parameters"] > 0
    after = char_lm_cross_entropy(model, val)
    assert after < before - 0.2, (before, after, info)
    samples = sample_char_lm(model, words_all.vocab, n=200, max_steps=40, seed=1)
    assert len(samples) == 200 and all(set(s) <= set("abcdefghijklmnopqrstuvwxyz") for s in samples)
    assert sum(len(s) < 40 for s in samples) >= 190  # they end
    assert samples == sample_char_lm(model, words_all.vocab, n=200, max_steps=40, seed=1)  # seeded
    assert sample_char_lm(model, words_all.vocab, n=3, max_steps=40, temperature=0) == \
        sample_char_lm(model, words_all.vocab, n=3, max_steps=40, temperature=0, seed=5)  # greedy


def test_char_lm_needs_text():
    data = load_data(DataConfig(name="ring8", n=100))
    with pytest.raises(GankitError, match="is not text"):
        train_char_lm(data, seconds=1)
