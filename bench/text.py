"""Text: the recurrent GAN (configs/words.toml: straight-through Gumbel-softmax G, recurrent D) against the
baseline every text-GAN paper is compared with, a maximum-likelihood character GRU language model of the same
size (G's hidden width and depth) trained for the same wall time, in one run on the same CPU.

Both are scored by ``gankit.metrics.text.text_scores`` on ``--n`` generated words: valid (in the full word list),
novel (valid and not in the training split), unique, the character-bigram Jensen-Shannon distance and the
length distribution's Wasserstein-1 distance to the held-out split.

    python bench/text.py                  # the recipe's steps, then the LM for as long as the GAN took
    python bench/text.py --steps 500      # a quick check
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import gankit
from gankit.baselines import sample_char_lm, train_char_lm
from gankit.data import load_data
from gankit.data.text import split_items
from gankit.metrics.text import text_scores
from gankit.product_loader import load_generator
from gankit.sequence_eval import evaluate_text, source_items

RECIPE = Path(__file__).parents[1] / "configs" / "words.toml"


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="override the recipe's train.steps")
    parser.add_argument("--n", type=int, default=10_000, help="generated words scored per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    overrides = [f"seed={args.seed}", *([f"train.steps={args.steps}"] if args.steps else [])]
    config = gankit.load_config(RECIPE, overrides)
    start = time.perf_counter()
    result = gankit.train(config, run_dir=f"runs/bench-text-seed{args.seed}", progress=False)
    gan_seconds = time.perf_counter() - start
    G, meta, _, _ = load_generator(result.run_dir)
    gan = evaluate_text(config, G, meta, args.n, seed=args.seed)["metrics"]

    data = load_data(config.data, args.seed)
    model = config.model
    lm, info = train_char_lm(data, hidden=model.g_hidden, layers=model.g_depth, seconds=gan_seconds, seed=args.seed)
    items = sample_char_lm(lm, data.vocab, args.n, max_steps=data.shape[0], seed=args.seed)
    all_items, _ = source_items(config)
    limit = config.data.max_length
    fits = [i for i in split_items(all_items, "test") if not limit or len(i) <= limit]
    train_items = [i for i in split_items(all_items, config.data.split) if not limit or len(i) <= limit]
    baseline = text_scores(items, train_items, all_items, fits)

    print(f"{cpu()}, torch {torch.__version__}; same wall time: {gan_seconds:.0f} s each "
          f"(GAN {result.step} steps, LM {info['steps']} steps, hidden {model.g_hidden} x {model.g_depth})")
    print(f"{'model':10} {'valid':>7} {'novel':>7} {'unique':>7} {'bigram JSD':>11} {'length W1':>10}")
    for name, s in (("GAN", gan), ("char LM", baseline)):
        print(f"{name:10} {s['valid']:7.3f} {s['novel']:7.3f} {s['unique']:7.3f} {s['bigram_jsd']:11.3f} "
              f"{s['length_distance']:10.3f}")
    print(json.dumps({"cpu": cpu(), "seconds": round(gan_seconds, 1), "gan_steps": result.step,
                      "lm_steps": info["steps"], "gan": gan, "char_lm": baseline}))


if __name__ == "__main__":
    main()
