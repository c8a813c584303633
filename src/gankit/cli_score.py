"""``gankit score``: an anomaly run's scores of a folder of images, an .npy or a CSV of rows, written as a CSV
``input,score,flag`` in the input's order (``gankit.anomaly_scores.score``)."""

from __future__ import annotations

import argparse
import sys


def add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="anomaly runs (bigan, ganomaly, fanogan): score images or rows, flag those "
                                     "above the run's threshold, and write a CSV")
    p.add_argument("run_dir", help="run folder written by gankit train with game.name = bigan, ganomaly or fanogan")
    p.add_argument("--input", required=True, metavar="DATA",
                   help="a folder of images (named by file), an .npy (rows in the data's units; images as pixels, "
                        "floats in [0, 1] or uint8), or a CSV of rows (named by row index)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the CSV to write: input,score,flag (higher scores more anomalous; flag 1 above the threshold)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="flag scores above T (default: the run's, set at game.fpr on held-out normal data)")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"), help="which checkpoint of the run")
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from .anomaly_scores import score

    result = score(args.run_dir, args.input, args.out, threshold=args.threshold, checkpoint=args.checkpoint)
    where = ("given" if result["fpr"] is None
             else f"the run's, at a false-positive rate of {result['fpr']:g} on held-out normal data")
    print(f"gankit: scored {result['n']} inputs of {args.input}: {result['flagged']} flagged above the threshold "
          f"{result['threshold']:.6g} ({where}); wrote {result['out']}", file=sys.stderr)
    return 0
