"""Sequences on TimeGAN's own benchmark (Yoon et al. 2019, Table 2): sines, stocks and energy, scored by its
discriminative and predictive scores (``gankit.metrics.sequences``, after the reference code), beside the
paper's figures for TimeGAN and RCGAN and the real data's own predictive score, measured in the same run.

For each data set and recipe (``rnn``: configs/<data>.toml, the recurrent GAN; ``timegan``:
configs/timegan-<data>.toml, the TimeGAN game) and each training seed: train (timed), draw as many sequences
as the data has (as the reference does), score them ``--repeats`` times; print mean +- std over the seeds.

    python bench/sequences.py                                  # everything: 3 data sets x 2 recipes x 3 seeds
    python bench/sequences.py --data sines --recipes rnn --seeds 1 --repeats 3
    python bench/sequences.py --steps 200 --repeats 1          # a quick check that it all runs
Ends with one JSON line; also writes bench/results/sequences.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import gankit
from gankit.data import load_data
from gankit.metrics.sequences import predictive_score, scores

# TimeGAN, NeurIPS 2019, Table 2 (lower is better): TimeGAN's discriminative and predictive scores, RCGAN's
# discriminative score, and the predictive score of a model trained on the real data ("Original")
PAPER = {
    "sines": {"timegan": (0.011, 0.093), "rcgan_discriminative": 0.022, "real_predictive": 0.094},
    "stocks": {"timegan": (0.102, 0.038), "rcgan_discriminative": 0.196, "real_predictive": 0.036},
    "energy": {"timegan": (0.236, 0.273), "rcgan_discriminative": 0.336, "real_predictive": 0.250},
}
RECIPES = Path(__file__).parents[1] / "configs"


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_one(data: str, recipe: str, seed: int, steps: int | None, repeats: int, iterations: tuple[int, int]) -> dict:
    path = RECIPES / (f"{data}.toml" if recipe == "rnn" else f"timegan-{data}.toml")
    overrides = [f"seed={seed}", "eval.every=0", *([f"train.steps={steps}"] if steps else [])]
    config = gankit.load_config(path, overrides)
    run_dir = Path("runs/bench-sequences") / f"{data}-{recipe}-seed{seed}"
    start = time.perf_counter()
    result = gankit.train(config, run_dir=run_dir, progress=False)
    train_s = time.perf_counter() - start
    real_data = load_data(config.data, seed)
    real = real_data.to_raw(real_data.x)
    fake, _ = gankit.sample(result.run_dir, n=len(real), seed=seed)
    s = scores(real, torch.as_tensor(fake), repeats=repeats, seed=seed, iterations=iterations)
    return {"data": data, "recipe": recipe, "seed": seed, "steps": result.step, "train_s": round(train_s, 1),
            "discriminative": s["discriminative"]["mean"], "predictive": s["predictive"]["mean"],
            "discriminative_repeats": s["discriminative"]["values"], "predictive_repeats": s["predictive"]["values"]}


def real_predictive(data: str, repeats: int, iterations: int) -> float:
    """Train on real, test on real: the paper's "Original" predictive row, measured here."""
    config = gankit.load_config(RECIPES / f"{data}.toml")
    real_data = load_data(config.data, 0)
    real = real_data.to_raw(real_data.x)
    return float(np.mean([predictive_score(real, real, iterations=iterations, seed=r) for r in range(repeats)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="sines,stocks,energy")
    parser.add_argument("--recipes", default="rnn,timegan")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per recipe")
    parser.add_argument("--repeats", type=int, default=10, help="repeats of each score per trained model")
    parser.add_argument("--steps", type=int, help="override train.steps (a quick check, not the benchmark)")
    parser.add_argument("--iterations", default="2000,5000", help="the post-hoc models' iterations (disc,pred)")
    args = parser.parse_args()
    iterations = tuple(int(v) for v in args.iterations.split(","))
    rows, floors = [], {}
    for data in args.data.split(","):
        floors[data] = real_predictive(data, min(args.repeats, 3), iterations[1])
        for recipe in args.recipes.split(","):
            for seed in range(args.seeds):
                row = run_one(data, recipe, seed, args.steps, args.repeats, iterations)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\n{cpu()}, torch {torch.__version__}, {torch.get_num_threads()} threads; mean +- std over training seeds")
    print(f"{'data':8} {'recipe':8} {'train min':>9} {'discriminative':>16} {'predictive':>16} | "
          f"{'TimeGAN d/p':>11} {'RCGAN d':>7} {'real pred (paper / here)':>24}")
    summary = []
    for data in args.data.split(","):
        for recipe in args.recipes.split(","):
            mine = [r for r in rows if r["data"] == data and r["recipe"] == recipe]
            d = np.array([r["discriminative"] for r in mine])
            p = np.array([r["predictive"] for r in mine])
            minutes = max(r["train_s"] for r in mine) / 60
            paper = PAPER[data]
            print(f"{data:8} {recipe:8} {minutes:9.1f} {d.mean():9.3f} +- {d.std():.3f} {p.mean():9.3f} +- "
                  f"{p.std():.3f} | {paper['timegan'][0]:.3f}/{paper['timegan'][1]:.3f} "
                  f"{paper['rcgan_discriminative']:7.3f} {paper['real_predictive']:>15.3f} / "
                  f"{floors[data]:.3f}")
            summary.append({"data": data, "recipe": recipe, "discriminative": [float(d.mean()), float(d.std())],
                            "predictive": [float(p.mean()), float(p.std())], "train_minutes_max": round(minutes, 1),
                            "real_predictive_here": floors[data], "paper": paper})
    out = {"cpu": cpu(), "torch": torch.__version__, "seeds": args.seeds, "repeats": args.repeats,
           "steps": args.steps, "summary": summary, "runs": rows}
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    Path("bench/results/sequences.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out["summary"]))


if __name__ == "__main__":
    main()
