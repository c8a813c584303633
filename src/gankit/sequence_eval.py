"""``gankit eval`` of sequence and text runs (image and row runs go through ``metrics.Evaluator``).

Sequences: ``n`` generated sequences (the seeded inputs of ``gankit sample``) against as many real ones (all of
them when there are fewer, else a seeded subset), scored as TimeGAN (Yoon et al. 2019) scores them: the
discriminative and predictive scores, each trained ``repeats`` times (seeds seed, seed + 1, ...; mean and std),
the same two scores of real against real (two random halves of the real set: the floor a perfect generator
would reach), and the training-free per-feature KS statistic and autocorrelation difference (with their
real-vs-real floors on the same halves). Every feature is first min-max scaled to [0, 1] by the real data's
range (for minmax data, its own range: TimeGAN's benchmarks are in [0, 1] already and stay as they are), as the
predictive score's sigmoid expects; KS and the autocorrelations do not change under that scaling.

Text: ``n`` generated items against the data's items with ``metrics.text.text_scores``: ``train`` is the split the
run trained on, ``reference_all`` every item of the source (the full word list, or every line of the file) and
``held_out`` the fixed test split, with the run's ``data.max_length`` applied to train and held-out items.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import Config
from .data import Dataset
from .errors import GankitError
from .sampling import run_generator, seeded_inputs
from .sequence_output import sample_lengths, texts, zero_padding

REPEATS = 10  # TimeGAN reports the mean and std of 10 runs of each score
ITERATIONS = (2000, 5000)  # training steps of the discriminative and the predictive score's networks
MIN_SEQUENCES = 4  # the real-vs-real floor splits the real sequences in halves of >= 2

_SHARED: tuple | None = None  # a worker's (real, fake, lengths_real, lengths_fake, floor orders)


def _pair(shared: tuple, key: str, r: int) -> tuple:
    """The (real, fake, lengths_real, lengths_fake) one score compares: the generated set, or repeat r's halves."""
    real, fake, lr, lf, orders = shared
    if key == "scores":
        return real, fake, lr, lf
    a, b = orders[r][:len(real) // 2], orders[r][len(real) // 2:]
    return real[a], real[b], None if lr is None else lr[a], None if lr is None else lr[b]


def _share(shared: tuple) -> None:
    global _SHARED
    _SHARED = shared


def _score(task: tuple[str, int, str], seed: int, iterations: tuple[int, int], shared: tuple | None = None) -> float:
    """One trained score: ``task`` = (scores | real_floor, repeat, discriminative | predictive), seed + repeat."""
    from .metrics.sequences import discriminative_score, predictive_score

    key, r, name = task
    a, b, la, lb = _pair(shared if shared is not None else _SHARED, key, r)
    if name == "discriminative":
        return discriminative_score(a, b, la, lb, iterations[0], seed=seed + r)
    return predictive_score(a, b, la, lb, iterations[1], seed=seed + r)


def _train_scores(tasks: list, shared: tuple, seed: int, iterations: tuple[int, int], workers: int | None,
                  progress: bool) -> dict:
    """{task: score} for every task, in worker processes (spawned: forking a process that has run PyTorch's
    thread pools can hang) or in this one; a progress bar counts training steps."""
    if workers is None:  # one process: on this project's 2-core machines two workers gave no speed-up (each ran at half)
        workers = 1
    workers = max(1, min(workers, len(tasks)))
    steps = {"discriminative": iterations[0], "predictive": iterations[1]}
    bar = None
    if progress and tasks:
        from tqdm import tqdm
        bar = tqdm(total=sum(steps[t[2]] for t in tasks), desc=f"sequence scores ({workers} process"
                   f"{'es' if workers > 1 else ''})", unit="step", unit_scale=True)
    done = {}
    try:
        if workers == 1:
            for task in tasks:
                done[task] = _score(task, seed, iterations, shared)
                if bar is not None:
                    bar.update(steps[task[2]])
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_share,
                                     initargs=(shared,)) as pool:
                futures = {pool.submit(_score, task, seed, iterations): task for task in tasks}
                for future in as_completed(futures):
                    done[futures[future]] = future.result()
                    if bar is not None:
                        bar.update(steps[futures[future][2]])
    finally:
        if bar is not None:
            bar.close()
    return done


def _summary(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def _unit_range(data: Dataset, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature (lo, hi) that map the data to [0, 1]: the minmax normalisation's own, else the observed range."""
    if data.normalize == "minmax":
        return data.shift - data.scale, data.shift + data.scale
    mask = data.mask()
    values = raw.reshape(-1, raw.shape[2]) if mask is None else raw[mask]
    return values.amin(0), values.amax(0)


def evaluate_sequences(data: Dataset, G: nn.Module, meta: dict[str, Any], n: int, seed: int = 0,
                       repeats: int = REPEATS, iterations: tuple[int, int] = ITERATIONS,
                       progress: bool = False, workers: int | None = None) -> dict[str, Any]:
    """The sequence metrics of G against ``data`` (``metrics``, per-score details, the floor and ``how``).

    ``workers``: processes that train the scores (default 1: measured no faster with 2 on the 2-core machines);
    every score is seeded and single-threaded, so the numbers do not depend on it."""
    from .metrics.sequences import autocorrelation_difference, marginal_ks

    started = time.perf_counter()
    if repeats < 0 or min(iterations) < 1:
        raise GankitError(f"--repeats {repeats} --iterations {','.join(map(str, iterations))}: expected repeats >= 0 "
                          f"(0: no trained scores) and iterations >= 1")
    count = min(n, len(data))
    if count < MIN_SEQUENCES:
        raise GankitError(f"--n {n}: sequence metrics need at least {MIN_SEQUENCES} sequences (the real-vs-real "
                          f"floor splits them in halves); this run's data has {len(data)}")
    raw = data.to_raw(data.x)
    lo, hi = _unit_range(data, raw)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))

    def units(x: torch.Tensor, lengths: np.ndarray | None) -> np.ndarray:
        return zero_padding(((x - lo) / span).numpy(), lengths)

    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    variable = data.lengths is not None
    lr = data.lengths[index].numpy() if variable else None
    real = units(raw[index], lr)
    conditional = meta["model"]["num_classes"] > 0
    z, y = seeded_inputs(count, meta["model"]["z_dim"], seed, meta["data"]["class_frequencies"] if conditional else None)
    out = run_generator(G, z, y)
    lf = sample_lengths(out, z, getattr(G, "length_cdf", None), False) if variable else None
    fake = units(data.to_raw(out), lf)

    shortest = min(int(lr.min()), int(lf.min())) if variable else real.shape[1]
    notes = []
    predictive = real.shape[2] >= 2 and shortest >= 2
    if repeats and not predictive:
        notes.append("no predictive score: it needs >= 2 features and every sequence >= 2 steps")
    orders = [torch.randperm(count, generator=torch.Generator().manual_seed(seed + r)).numpy()
              for r in range(max(repeats, 1))]  # real_floor's split per repeat: one half as "fake", the other real
    shared = (real, fake, lr, lf, orders)
    names = ["discriminative"] + (["predictive"] if predictive else [])
    tasks = [(key, r, name) for r in range(repeats) for key in ("scores", "real_floor") for name in names]
    trained = _train_scores(tasks, shared, seed, iterations, workers, progress)
    halves = [_pair(shared, "real_floor", r) for r in range(len(orders))]

    columns = data.columns if len(data.columns) == real.shape[2] else [f"x{i}" for i in range(real.shape[2])]
    ks = marginal_ks(real, fake, lr, lf)
    floor_ks = [float(np.mean(marginal_ks(*h))) for h in halves]
    metrics: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for key, prefix in (("scores", ""), ("real_floor", "floor_")):
        details[key] = {}
        for name in names if repeats else []:
            values = [trained[key, r, name] for r in range(repeats)]
            details[key][name] = _summary(values)
            metrics[f"{prefix}{name}_mean"] = details[key][name]["mean"]
            metrics[f"{prefix}{name}_std"] = details[key][name]["std"]
    metrics.update(ks_mean=float(np.mean(ks)), ks_max=float(np.max(ks)), floor_ks_mean=float(np.mean(floor_ks)))
    if shortest >= 2:
        metrics["acf_diff"] = autocorrelation_difference(real, fake, None, lr, lf)
        metrics["floor_acf_diff"] = float(np.mean([autocorrelation_difference(a, b, None, la, lb)
                                                   for a, b, la, lb in halves]))
    else:
        notes.append("no autocorrelation difference: a sequence has a single step")
    details["ks"] = dict(zip(columns, ks))
    how = {"real": data.name, "n_real": count, "n_fake": count, "seed": seed, "repeats": repeats,
           "iterations": {"discriminative": iterations[0], "predictive": iterations[1]},
           "lengths": "variable" if variable else "fixed",
           "units": "each feature min-max scaled to [0, 1] by the real data's range (TimeGAN's protocol)",
           "scores": "TimeGAN's discriminative (|accuracy - 0.5| of a post-hoc GRU, 0 best) and predictive (MAE of "
                     "a GRU trained on fake, tested on real, lower better) scores, each repeated with seeds "
                     "seed .. seed + repeats - 1",
           "real_floor": "the same scores of one random half of the real sequences against the other, per repeat"}
    if notes:
        how["note"] = "; ".join(notes)
    return {"metrics": metrics, **details, "how": how, "seconds": round(time.perf_counter() - started, 3)}


def source_items(config: Config) -> tuple[list[str], Path] | None:
    """Every item of a words/lines run's source (all splits, before the length filter), and its file."""
    from .data.text import _WORD, WORDS_FILE, read_items

    if config.data.name == "words":
        return sorted({item for item in read_items(WORDS_FILE) if _WORD.fullmatch(item)}), WORDS_FILE
    if config.data.name == "lines":
        path = Path(config.data.path).expanduser()
        if not path.is_file():
            raise GankitError(f"{path}: the run's text file is not there; the text scores compare with its lines")
        return read_items(path), path
    return None


def evaluate_text(config: Config, G: nn.Module, meta: dict[str, Any], n: int, seed: int = 0,
                  data: Dataset | None = None) -> dict[str, Any]:
    """``text_scores`` of ``n`` generated items (with a few of them), and how they were computed."""
    from .data.text import decode, split_items
    from .metrics.text import text_scores

    started = time.perf_counter()
    source = source_items(config)
    if source is None:
        raise GankitError(f"data.name = {config.data.name!r}: the text scores need the run's word list or text file "
                          f"(data.name = words or lines) for its splits")
    items, path = source
    limit = config.data.max_length

    def fits(chosen: list[str]) -> list[str]:
        return [item for item in chosen if not limit or len(item) <= limit]

    train = fits(split_items(items, config.data.split)) if data is None else decode(data.to_raw(data.x), data.vocab)
    held_out = fits(split_items(items, "test"))
    if not held_out:
        raise GankitError(f"{path}: no test-split items{f' of at most data.max_length = {limit} characters' if limit else ''}"
                          f" to compare with (1 item in 10 is held out, by a hash of the item)")
    conditional = meta["model"]["num_classes"] > 0
    z, y = seeded_inputs(n, meta["model"]["z_dim"], seed, meta["data"]["class_frequencies"] if conditional else None)
    generated = texts(run_generator(G, z, y), meta["data"]["vocab"])
    how = {"real": str(path), "n_fake": n, "n_train": len(train), "n_reference": len(set(items)),
           "n_held_out": len(held_out), "seed": seed, "train": f"the {config.data.split} split the run trained on",
           "reference_all": f"every item of {path.name}", "held_out": "the test split (1 in 10 items, by CRC-32)"
                                                                     + (f", at most {limit} characters" if limit else "")}
    if config.data.split != "train":
        how["note"] = f"the run trained on the {config.data.split} split, which holds test items: novel and the " \
                      f"held-out distances say less"
    return {"metrics": text_scores(generated, train, items, held_out), "examples": generated[:20], "how": how,
            "seconds": round(time.perf_counter() - started, 3)}
