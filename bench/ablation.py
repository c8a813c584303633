"""Ablation of the ring8 and grid25 recipes: bench/quality.py again with one technique switched off at a time.

    .venv/bin/python bench/ablation.py                 # every row, seeds 0-4, two runs at a time (~1 h)
    .venv/bin/python bench/ablation.py --only grid25 --seeds 3

Each run is one ``bench/quality.py --sets SET --seeds S --set KEY=VALUE`` process (one thread each,
``--jobs`` at a time, so a 2-core machine runs two); its JSON line gives the figures. Every row runs
seeds 0-2; seeds 3-4 only where those three passed (one failed seed already fails the bar). Prints
each run as it finishes, then a Markdown table (the README's) and one JSON line. The recipes
themselves, and with the fast settings off, are bench/quality.py's runs (`--set train.precision=fp32`...).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from quality import HIGH_QUALITY_BAR, KL_BAR  # noqa: E402
# (set, what is switched off, overrides); the recipe itself is bench/quality.py's run.
ROWS = [
    ("ring8", "discrete latent (model.latent_classes = 0)", ["model.latent_classes=0"]),
    ("ring8", "minibatch std (model.minibatch_std = false)", ["model.minibatch_std=false"]),
    ("ring8", "fresh fake batch for G (train.reuse_fake = true)", ["train.reuse_fake=true"]),
    ("ring8", "EMA of G (train.ema = 0)", ["train.ema=0"]),
    ("ring8", "cosine decay (train.lr_schedule = constant)", ["train.lr_schedule=constant"]),
    ("grid25", "discrete latent (model.latent_classes = 0)", ["model.latent_classes=0"]),
    ("grid25", "minibatch std (model.minibatch_std = false)", ["model.minibatch_std=false"]),
    ("grid25", "PacGAN2 (model.pack = 1)", ["model.pack=1"]),
    ("grid25", "lazy R1 (loss.penalty = none)", ["loss.penalty=none"]),
    ("grid25", "EMA of G (train.ema = 0)", ["train.ema=0"]),
    ("grid25", "cosine decay (train.lr_schedule = constant)", ["train.lr_schedule=constant"]),
]


def run_seed(row, seed: int, cache: Path) -> dict:
    """One run's figures; runs already in ``cache`` (a JSON-lines file) are not run again, so an interrupted
    ablation goes on where it stopped."""
    name, label, overrides = row
    key = {"set": name, "overrides": overrides, "seed": seed}
    if cache.exists():
        for line in cache.read_text().splitlines():
            done = json.loads(line)
            if done["key"] == key:
                return done["result"]
    cmd = [sys.executable, str(HERE / "quality.py"), "--sets", name, "--seeds", str(seed)]
    for o in overrides:
        cmd += ["--set", o]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} {label} seed {seed}: {out.stderr.strip().splitlines()[-1:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])["results"][name][0]
    result["pass"] = meets_bar(name, result)
    with cache.open("a") as f:
        f.write(json.dumps({"key": key, "result": result}) + "\n")
    return result


def meets_bar(name: str, r: dict) -> bool:
    """The quality bar of bench/quality.py without its time limit: runs that share the machine take longer."""
    return (r["modes_covered"] == r["modes_total"] and r["high_quality"] >= HIGH_QUALITY_BAR[name]
            and r["mode_kl"] is not None and r["mode_kl"] <= KL_BAR)


def run_rows(rows, seeds: list[int], first: int, jobs: int, cache: Path) -> list[dict]:
    """Seeds ``seeds[:first]`` of every row, then the rest only for rows that passed all of those: one failed seed
    already fails the bar (every seed must pass), and it halves the time of an ablation where most rows fail."""
    results = {i: [] for i in range(len(rows))}
    with ThreadPoolExecutor(jobs) as pool:
        for stage, batch in enumerate((seeds[:first], seeds[first:])):
            todo = [(i, seed) for seed in batch for i in range(len(rows))
                    if stage == 0 or all(r["pass"] for r in results[i])]
            for (i, seed), r in zip(todo, pool.map(lambda item: run_seed(rows[item[0]], item[1], cache), todo)):
                results[i].append(r)
                print(f"{rows[i][0]:<7} {rows[i][1]:<48} seed {seed}: modes {r['modes_covered']}/{r['modes_total']} "
                      f"high quality {100 * r['high_quality']:.1f}%  KL {r['mode_kl']}  "
                      f"{'PASS' if r['pass'] else 'FAIL'}", flush=True)
    return [{"set": row[0], "off": row[1], "overrides": row[2], "runs": results[i]} for i, row in enumerate(rows)]


def summary(r: dict) -> dict:
    runs = r["runs"]
    return {"modes": f"{np.mean([x['modes_covered'] for x in runs]):.1f}/{runs[0]['modes_total']}",
            "high_quality": [round(100 * x["high_quality"], 1) for x in runs],
            "mean_high_quality": round(100 * float(np.mean([x["high_quality"] for x in runs])), 1),
            "max_kl": round(max(x["mode_kl"] if x["mode_kl"] is not None else float("inf") for x in runs), 3),
            "passed": sum(bool(x["pass"]) for x in runs), "seeds": len(runs),
            "train_s": round(float(np.mean([x["train_s"] for x in runs if x["train_s"] is not None] or [0])))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--only", choices=("ring8", "grid25"), help="one set's rows")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2)")
    parser.add_argument("--cache", default="ablation-runs.jsonl", help="finished runs (reused when run again)")
    parser.add_argument("--first", type=int, default=3, help="seeds every row runs; the rest only where those passed")
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.only or r[0] == args.only]
    seeds = [int(x) for x in args.seeds.split(",")]
    results = run_rows(rows, seeds, args.first, args.jobs, Path(args.cache))
    for r in results:
        r["summary"] = summary(r)
    print("\n| set | switched off | modes (mean) | high quality per seed, % | mean | max KL | seeds passing |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        s = r["summary"]
        print(f"| {r['set']} | {r['off']} | {s['modes']} | {' / '.join(map(str, s['high_quality']))} | "
              f"{s['mean_high_quality']} | {s['max_kl']} | {s['passed']}/{s['seeds']} |")
    print(json.dumps([{k: r[k] for k in ("set", "off", "overrides", "summary")} for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
