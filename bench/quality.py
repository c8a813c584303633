"""Quality benchmark of the built-in recipes: train each, sample it, score the samples.

    .venv/bin/python bench/quality.py                          # gauss1d, ring8, grid25; seeds 0-4
    .venv/bin/python bench/quality.py --sets ring8 --seeds 0 --set model.latent_classes=0   # one ablation
    .venv/bin/python bench/quality.py --quick                  # a smoke check with few steps

Each recipe (src/gankit/configs/<set>.toml) is trained with the public API into a temporary folder,
then scored on samples exactly as the generator gives them: z from N(0, I) as in training, no
truncation, no rejection, the final checkpoint. Figures:

- gauss1d: mean and std of 10,000 samples (bar: |mean| < 0.01, std within 5% of 0.1).
- ring8, grid25: of 2,500 samples, the share that are "high quality" (within 3 std of their nearest
  mode), the modes covered (nearest mode of at least one high-quality sample) and the KL divergence
  of the high-quality samples' histogram over modes from the uniform one (gankit.metrics.mode_scores,
  as `gankit eval` computes them). The bar, in every seed, beats PacGAN4's published figures (Lin et
  al. 2018): all modes, KL at most 0.03, at least 96% high quality on ring8 and 94% on grid25, in
  under 5 minutes of training. True data scores 98.9% under this rule.

This prints numbers; it is not a test. Wall times include building the models, writing checkpoints
and plots; they do not include the interpreter's start-up and `import torch` (printed once at the
top). It prints one line per set and seed, a mean per set, then one JSON line with every figure.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gankit  # noqa: E402
from gankit.metrics import mode_scores  # noqa: E402

T_IMPORTED = time.perf_counter()

SETS = ("gauss1d", "ring8", "grid25")
N_SAMPLES = {"gauss1d": 10_000, "ring8": 2_500, "grid25": 2_500}
WALL_BAR_S = {"gauss1d": 60.0, "ring8": 300.0, "grid25": 300.0}  # training time allowed on a 2-core CPU
# The bar of issue 5: beat PacGAN4's published figures (Lin et al. 2018, tables on the VEEGAN protocol) in every
# seed: all modes, KL at most 0.03, and this share of high-quality samples.
HIGH_QUALITY_BAR = {"ring8": 0.96, "grid25": 0.94}
KL_BAR = 0.03
PACGAN4 = {"ring8": "7.8/8 modes, 95.9% high quality, KL 0.07", "grid25": "24.8/25 modes, 93.6% high quality, KL 0.04"}
QUICK_STEPS = 200


# --------------------------------------------------------------------------------------------- scoring


def gauss_scores(samples: np.ndarray) -> dict:
    return {"mean": float(samples.mean()), "std": float(samples.std())}


def passes(name: str, s: dict) -> bool | None:
    """Whether a run meets its set's bar (None: no bar yet)."""
    if name == "gauss1d":
        quality = abs(s["mean"]) < 0.01 and 0.095 <= s["std"] <= 0.105
    else:
        quality = (s["modes_covered"] == s["modes_total"] and s["high_quality"] >= HIGH_QUALITY_BAR[name]
                   and s["mode_kl"] is not None and s["mode_kl"] <= KL_BAR)
    return quality and s["train_s"] < WALL_BAR_S[name]


# --------------------------------------------------------------------------------------------- running


def run_one(name: str, seed: int, quick: bool, overrides: list[str], keep: Path | None) -> dict:
    config = gankit.load_config(gankit.recipe(name), [f"seed={seed}", *overrides])
    if quick:
        config = gankit.load_config(base=config, overrides=[f"train.steps={min(QUICK_STEPS, config.train.steps)}"])
    with tempfile.TemporaryDirectory(prefix=f"gankit-bench-{name}-") as tmp:
        run_dir = (keep / f"{name}-seed{seed}") if keep else Path(tmp) / "run"
        t0 = time.perf_counter()
        result = gankit.train(config, run_dir=run_dir, progress=False)
        train_s = time.perf_counter() - t0
        x, _ = gankit.sample(result.run_dir, N_SAMPLES[name], seed=seed)
    data = gankit.load_data(config.data, config.seed)
    if name == "gauss1d":
        scores = gauss_scores(x)
    else:
        scores = mode_scores(x, data.modes, data.mode_std)  # as gankit eval computes them
    scores.update(set=name, seed=seed, steps=result.step, train_s=train_s,
                  steps_per_s=result.step / train_s, n=len(x))
    scores["pass"] = passes(name, scores)
    return scores


def line(s: dict) -> str:
    head = f"{s['set']:<8} seed {s['seed']:<3}"
    if s["set"] == "gauss1d":
        body = f"mean {s['mean']:+.4f}  std {s['std']:.4f}"
    else:
        kl = "n/a" if s["mode_kl"] is None else f"{s['mode_kl']:.3f}"
        body = (f"modes {s['modes_covered']:>2}/{s['modes_total']:<2}  high quality {100 * s['high_quality']:5.1f}%  "
                f"KL {kl}")
    verdict = {True: "PASS", False: "FAIL", None: "(no bar)"}[s["pass"]]
    return f"{head}  {body}  train {s['train_s']:6.1f} s ({s['steps']} steps, {s['steps_per_s']:.0f}/s)  {verdict}"


def mean_line(name: str, runs: list[dict]) -> str:
    def avg(key):
        return float(np.mean([r[key] for r in runs]))

    head = f"{name:<8} mean    "
    if name == "gauss1d":
        body = f"mean {avg('mean'):+.4f}  std {avg('std'):.4f}"
    else:
        kls = [r["mode_kl"] for r in runs if r["mode_kl"] is not None]
        kl = f"{np.mean(kls):.3f}" if kls else "n/a"
        body = (f"modes {avg('modes_covered'):4.1f}/{runs[0]['modes_total']:<2}  high quality "
                f"{100 * avg('high_quality'):5.1f}%  KL {kl}")
    n_pass = sum(bool(r["pass"]) for r in runs)
    verdict = "(no bar)" if runs[0]["pass"] is None else f"{n_pass}/{len(runs)} pass"
    ref = f"  [PacGAN4: {PACGAN4[name]}]" if name in PACGAN4 else ""
    return (f"{head}  {body}  train {avg('train_s'):6.1f} s (max {max(r['train_s'] for r in runs):.1f})  {verdict}"
            + ref)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated sets (default {','.join(SETS)})")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    parser.add_argument("--quick", action="store_true", help=f"train at most {QUICK_STEPS} steps: a smoke check")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: these small MLPs gain little from more, and the "
                             "machine may be shared)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key for every set, e.g. --set train.steps=2000 (for tuning)")
    parser.add_argument("--keep", metavar="DIR", help="keep the run folders under DIR instead of a temporary one")
    args = parser.parse_args(argv)

    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        parser.error(f"--sets: unknown {', '.join(unknown)}; expected some of {', '.join(SETS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(args.threads)
    keep = Path(args.keep) if args.keep else None

    print(f"gankit {gankit.__version__}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"start-up and imports {T_IMPORTED - T_START:.1f} s" + ("; QUICK (not the real figures)" if args.quick else ""),
          flush=True)
    results: dict[str, list[dict]] = {}
    for name in sets:
        for seed in seeds:
            r = run_one(name, seed, args.quick, args.overrides, keep)
            results.setdefault(name, []).append(r)
            print(line(r), flush=True)
        if len(seeds) > 1:
            print(mean_line(name, results[name]), flush=True)
    print(json.dumps({"quick": args.quick, "threads": torch.get_num_threads(), "overrides": args.overrides,
                      "startup_s": round(T_IMPORTED - T_START, 2), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
