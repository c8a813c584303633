"""``gankit classify``: a semi-supervised run's predicted class and class probabilities for a folder of images, an
.npy or a CSV of rows, written as a CSV ``input,class,p_<class>...`` in the input's order
(``gankit.semisup_classify.classify``)."""

from __future__ import annotations

import argparse
import sys


def add_classify_parser(sub) -> None:
    p = sub.add_parser("classify", help="semi-supervised runs (ssgan): classify images or rows with the run's "
                                        "classifier and write a CSV of classes and probabilities")
    p.add_argument("run_dir", help="run folder written by gankit train with game.name = ssgan")
    p.add_argument("--input", required=True, metavar="DATA",
                   help="a folder of images (named by file), an .npy (rows in the data's units; images as pixels, "
                        "floats in [0, 1] or uint8), or a CSV of rows (named by row index)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the CSV to write: input,class,p_<class> for each class (the predicted class has the "
                        "highest probability)")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"), help="which checkpoint of the run")
    p.set_defaults(func=cmd_classify)


def cmd_classify(args: argparse.Namespace) -> int:
    from .semisup_classify import classify

    result = classify(args.run_dir, args.input, args.out, checkpoint=args.checkpoint)
    counts = ", ".join(f"{name!r}: {count}" for name, count in result["counts"].items() if count)
    print(f"gankit: classified {result['n']} inputs of {args.input} with {result['classifier']} at step "
          f"{result['step']} (per predicted class {counts or 'none'}); wrote {result['out']}", file=sys.stderr)
    return 0
