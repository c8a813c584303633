"""InfoGAN on the digits: how well the categorical code recovers the digit classes (Chen et al. 2016, fig. 2;
the paper reports 5% error on MNIST).

For each value k of the first categorical code, ``--n`` samples with c0 = k (noise and the other codes drawn
from their priors) are classified by the bundled digits classifier; k is mapped to its majority class, and the
accuracy is the share of all samples whose class is their code's mapped class. A G that draws one digit for
every code would score well on that alone, so also printed: the accuracy of the best one-to-one matching of
code values to classes (Hungarian), and how many distinct classes the majority mapping reaches.

    python bench/infogan_codes.py                      # trains configs/infogan-digits.toml (seed 0), then scores
    python bench/infogan_codes.py --run runs/infogan   # scores a finished run
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

import gankit
from gankit.metrics.features import get_extractor
from gankit.models.codes import code_slots
from gankit.product_loader import load_generator
from gankit.sampling import run_generator, seeded_inputs


@torch.no_grad()
def code_accuracy(run: str, n: int = 1000, seed: int = 0) -> dict:
    G, meta, _, _ = load_generator(run)
    codes = meta["model"]["infogan"]
    k0 = codes["categorical"][0]
    classify = get_extractor("digits")
    predicted = []
    for k in range(k0):
        z, _ = seeded_inputs(n, meta["model"]["z_dim"], seed + k)
        z[:, codes["noise"]] = code_slots(codes["categorical"][:1], 0, [k], n)[:, 0]  # c0 = k, the rest random
        x = ((run_generator(G, z) + 1) / 2).clamp(0, 1)  # minmax digits: [-1, 1] -> pixels in [0, 1]
        predicted.append(classify(x)[1].argmax(1).numpy())
    counts = np.stack([np.bincount(p, minlength=10) for p in predicted])  # [code value, class]
    mapping = counts.argmax(1)
    rows, cols = linear_sum_assignment(-counts)  # one code value per class: what a collapsed G cannot game
    return {"run": run, "step": meta["step"], "accuracy": float(counts.max(1).sum() / counts.sum()),
            "accuracy_one_to_one": float(counts[rows, cols].sum() / counts.sum()),
            "classes_reached": int(len(set(mapping.tolist()))), "mapping": mapping.tolist(),
            "purity": (counts.max(1) / counts.sum(1)).round(3).tolist(), "n_per_code": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a finished infogan run (default: train the recipe)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--n", type=int, default=1000, help="samples per code value")
    args = parser.parse_args()
    run, seconds = args.run, None
    if run is None:
        started = time.perf_counter()
        result = gankit.train("infogan-digits", overrides=[f"seed={args.seed}"], steps=args.steps,
                              run_dir=f"runs/infogan-digits-seed{args.seed}")
        run, seconds = str(result.run_dir), round(time.perf_counter() - started, 1)
    out = code_accuracy(run, args.n)
    out["train_seconds"] = seconds
    print(f"categorical code -> digit class: accuracy {out['accuracy']:.1%} (majority per code), "
          f"{out['accuracy_one_to_one']:.1%} (one class per code), {out['classes_reached']} of 10 classes "
          f"reached; mapping {out['mapping']}, purity {out['purity']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
