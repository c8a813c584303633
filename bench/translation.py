"""Image-to-image: gankit's four translation recipes beside their baselines, measured in one run.

For each built-in task the recipe (configs/<task>.toml) trains, then ``gankit eval`` scores it on the task's
held-out images; beside it, in the same run:
- super-resolution (sr-fashion-mnist, sr-photos): bicubic upsampling, and the same generator trained with the
  pixel loss alone (``loss.adversarial_weight = 0``: SRResNet's setting);
- pix2pix (edges2fashion): the same U-Net trained with L1 alone (the paper's "L1" row);
- CycleGAN (sneaker2boot): the share of translations the bundled classifier puts in the target class.
SRGAN's published 4x figures on Set5 are printed for context (other images: not a comparison).

    python bench/translation.py                          # all four tasks (about an hour on 2 cores)
    python bench/translation.py --tasks sr-fashion-mnist --set train.steps=200   # a quick look
Ends with one JSON line; also writes bench/results/translation.json (unless --no-save).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import gankit

sys.path.insert(0, str(Path(__file__).parent))
from tabular import cpu  # noqa: E402  (the CPU's name and flags, as every benchmark reports them)

TASKS = ("sr-fashion-mnist", "sr-photos", "edges2fashion", "sneaker2boot")
BASELINE = {"sr-fashion-mnist": "pixel loss only", "sr-photos": "pixel loss only", "edges2fashion": "L1 only"}
SRGAN_SET5 = {"bicubic": 28.43, "SRResNet": 32.05, "SRGAN": 29.40}  # dB, 4x, Ledig et al. 2017 table 2
RESULTS = Path(__file__).parent / "results" / "translation.json"
TARGETS = {"psnr_gain_db": 1.5, "target_class_share": 0.90, "minutes": 15.0}


def run_recipe(task: str, root: Path, overrides: list[str]) -> dict:
    """Train the recipe with ``overrides`` and score it: the eval result plus the training time."""
    start = time.perf_counter()
    result = gankit.train(task, run_dir=root / f"{task}-{len(list(root.iterdir()))}", overrides=overrides,
                          progress=False)
    seconds = time.perf_counter() - start
    scores = gankit.evaluate(result.run_dir)
    scores.pop("how", None)
    return {**scores, "train_s": round(seconds, 1), "run_dir": str(result.run_dir)}


def headline(task: str, scores: dict) -> str:
    keys = ("psnr", "ssim", "fid", "target_class_share", "cycle_error")
    return "  ".join(f"{k} {scores[k]:.4g}" for k in keys if isinstance(scores.get(k), (int, float)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated built-in tasks")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every recipe")
    parser.add_argument("--no-baselines", action="store_true", help="skip the pixel-loss-only generators")
    parser.add_argument("--keep", metavar="DIR", help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/translation.json")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"--tasks: unknown {unknown}; expected some of {', '.join(TASKS)}")
    machine = f"{cpu()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    print(f"# {machine}", file=sys.stderr)
    out: dict = {"machine": machine, "tasks": {}, "srgan_set5_4x_db": SRGAN_SET5, "targets": TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            row: dict = {"gankit": run_recipe(task, root, args.set)}
            print(f"{task:18s} gankit    {headline(task, row['gankit'])}  ({row['gankit']['train_s']:.0f} s)",
                  file=sys.stderr)
            if "bicubic" in row["gankit"]:
                row["bicubic"] = row["gankit"].pop("bicubic")
                print(f"{task:18s} bicubic   {headline(task, row['bicubic'])}", file=sys.stderr)
            if task in BASELINE and not args.no_baselines:
                row["baseline"] = run_recipe(task, root, [*args.set, "loss.adversarial_weight=0"])
                row["baseline"].pop("bicubic", None)
                print(f"{task:18s} {BASELINE[task]:9s} {headline(task, row['baseline'])}  "
                      f"({row['baseline']['train_s']:.0f} s)", file=sys.stderr)
            out["tasks"][task] = row
    print(f"# SRGAN's published 4x Set5 PSNR (context only, other images): {SRGAN_SET5}", file=sys.stderr)
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
