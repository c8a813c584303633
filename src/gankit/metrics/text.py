"""Scores for generated text items (words, lines): are they real, new, varied, and shaped like the data?

Image and row metrics compare feature statistics; generated text can be checked directly against the
word list instead. ``valid`` and ``novel`` tell memorising (valid, not novel) from learning the language
(valid and novel) and from babbling (not valid); ``bigram_jsd`` and ``length_distance`` compare the
character statistics with held-out items, which still says something when few items are real words.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

START, STOP = object(), object()  # boundary symbols of bigrams: distinct from every character


def bigrams(items: Iterable[str]) -> Counter:
    """Character-bigram counts over all items, each item framed by a start and an end boundary symbol:
    "ab" -> (start, a), (a, b), (b, end); "" -> (start, end)."""
    counts: Counter = Counter()
    for item in items:
        symbols = [START, *item, STOP]
        counts.update(zip(symbols, symbols[1:]))
    return counts


def jensen_shannon_distance(p: Counter, q: Counter) -> float:
    """sqrt of the base-2 Jensen-Shannon divergence between two count tables (as
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)``): 0 for equal distributions, 1 for disjoint ones."""
    np_, nq = sum(p.values()), sum(q.values())
    if not np_ or not nq:
        raise ValueError("Jensen-Shannon distance of an empty distribution")
    divergence = 0.0
    for key in p.keys() | q.keys():
        a, b = p.get(key, 0) / np_, q.get(key, 0) / nq
        m = (a + b) / 2
        divergence += (a * math.log2(a / m) if a else 0.0) + (b * math.log2(b / m) if b else 0.0)
    return math.sqrt(max(divergence / 2, 0.0))


def length_wasserstein(a: Iterable[str], b: Iterable[str]) -> float:
    """Wasserstein-1 (earth mover's) distance in characters between the length distributions of two sets
    of items: the sum over lengths l of |F_a(l) - F_b(l)|, F the cumulative share of items up to l."""
    ca, cb = Counter(map(len, a)), Counter(map(len, b))
    na, nb = sum(ca.values()), sum(cb.values())
    if not na or not nb:
        raise ValueError("length distance of an empty set of items")
    distance, fa, fb = 0.0, 0.0, 0.0
    for length in range(max(ca.keys() | cb.keys())):
        fa, fb = fa + ca.get(length, 0) / na, fb + cb.get(length, 0) / nb
        distance += abs(fa - fb)
    return distance


def text_scores(generated: list[str], train: set[str] | list[str], reference_all: set[str] | list[str],
                held_out: list[str]) -> dict[str, float]:
    """Scores of generated items against the data set's items:

    - ``valid``: share of generated items found in ``reference_all`` (the full list, every split);
    - ``novel``: share of the valid ones not in ``train`` (0 when none is valid);
    - ``unique``: share of distinct items among the generated;
    - ``bigram_jsd``: Jensen-Shannon distance (base 2, in [0, 1]) between the character-bigram
      distributions of generated and ``held_out`` items, boundaries included (see ``bigrams``);
    - ``length_distance``: Wasserstein-1 distance in characters between their length distributions.

    Counts are with multiplicity: a valid item generated twice counts twice in ``valid`` and ``novel``."""
    if not generated:
        raise ValueError("text_scores: no generated items")
    if not held_out:
        raise ValueError("text_scores: no held-out items")
    train, reference_all = set(train), set(reference_all)
    valid = [item for item in generated if item in reference_all]
    return {
        "valid": len(valid) / len(generated),
        "novel": sum(item not in train for item in valid) / len(valid) if valid else 0.0,
        "unique": len(set(generated)) / len(generated),
        "bigram_jsd": jensen_shannon_distance(bigrams(generated), bigrams(held_out)),
        "length_distance": length_wasserstein(generated, held_out),
    }
