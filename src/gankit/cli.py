"""``gankit`` on the command line: a thin layer over the public API.

User mistakes (``GankitError``) are printed as one line and exit with code 2; an interrupted run
exits with 130 after saving its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


from . import __version__
from .api import RECIPES, evaluate, recipe, train
from .compare_files import compare
from .cli_sample import cmd_sample
from .cli_classify import add_classify_parser
from .cli_score import add_score_parser
from .config import Config, apply_overrides, load_config
from .errors import GankitError
from .file_recipes import defaults_for_file, file_data_name, toml_string
from .launch import EXIT_INTERRUPTED, launch
from .runs import RunDir

EXIT_USER_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # as given: --nproc re-runs the same command under torchrun
    try:
        return args.func(args)
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("gankit: aborted; the last checkpoint written is intact", file=sys.stderr)
        return EXIT_INTERRUPTED


def recipe_names() -> str:
    return ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gankit", description="Train, sample and ship GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a GAN from a TOML recipe and/or a data file")
    p.add_argument("config", nargs="?", help=f"TOML config or built-in recipe name ({recipe_names()})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.d_lr=1e-4 (repeatable)")
    p.add_argument("--data", metavar="FILE", help="train on this .npy/.csv file instead of the recipe's data")
    p.add_argument("--steps", type=int, help="generator steps (train.steps)")
    p.add_argument("--seed", type=int, help="the seed that makes the run repeatable")
    p.add_argument("--run-dir", help="run folder (default: runs/<name>, a free variant for a new run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--fpr", type=float, metavar="RATE",
                   help="anomaly runs (bigan, ganomaly, fanogan): the score threshold flags this share of the "
                        "held-out normal data (game.fpr, default 0.05)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train in N processes: runs torchrun --nproc_per_node=N -m gankit train ... (gloo on the "
                        "CPU, NCCL on GPUs); data.batch_size is the global batch")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run into a .npy or .csv file, or as PNG images")
    p.add_argument("run_dir", help="run folder written by gankit train")
    p.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same samples (default 0)")
    p.add_argument("--label", help="class name or index, for conditional runs")
    p.add_argument("--code", type=codes, help="InfoGAN runs: fix the latent codes, e.g. 3,0.5,-1 (categorical "
                                              "indices first, then continuous values in [-1, 1])")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"),
                   help="latest, or best (by eval.best, when metrics ran during training)")
    p.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                   help="table runs: only rows with this value (repeatable): a category by conditional generation, "
                        "numbers and dates by rejection")
    p.add_argument("--out", required=True,
                   help="output: a .npy or .csv file (values in the data's units; images as rows of pixels, "
                        "except in a .npy without labels), "
                        "a .png file (a grid of the images), or a folder, DIR/ or an existing one (one PNG per image); "
                        "sequence runs: .npy [N, T, F] (one length, no labels), .npz (x, lengths, y) or a long-format "
                        ".csv (id, time, features, label); text runs: a .txt file, one item per line; table runs: "
                        "a .csv (or .parquet) with the source's columns")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="metrics of a run's generator (FID, KID, precision/recall, modes...), or of "
                                    "two sets of samples with --real and --fake; prints JSON")
    p.add_argument("run_dir", nargs="?", help="run folder written by gankit train (the result goes to RUN/eval.json)")
    p.add_argument("--real", metavar="PATH", help="real samples: .npy/.csv file or image folder (with --fake, no run)")
    p.add_argument("--fake", metavar="PATH", help="generated samples: .npy/.csv file or image folder")
    p.add_argument("--metrics", default="auto",
                   help="comma-separated: fid,kid,is,pr,dc,modes,classes,columns (default: all the data allows)")
    p.add_argument("--features", help="raw (the values as given), standardized (rows: each column by the real "
                                      "samples' mean and std), digits, fashion-mnist, inception or a registered "
                                      "extractor (default: rows standardized; images the data's classifier, else "
                                      "Inception if its weights are set, else raw)")
    p.add_argument("--n", type=int,
                   help="generated (and at most as many real) samples (default 10000); sequence runs: as many as "
                        "the real sequences, at most N; text runs: N generated items; table runs: N rows (default: "
                        "as many as it trained on)")
    p.add_argument("--target", default="", metavar="COLUMN",
                   help="tables: the column machine-learning efficacy predicts (default: the run's eval.target)")
    p.add_argument("--seed", type=int, default=0, help="seeds the noise, the real subset and KID's subsets (default 0)")
    p.add_argument("--repeats", type=int, default=10,
                   help="sequence runs: times each TimeGAN score (discriminative, predictive) and its real-vs-real "
                        "floor is trained, for mean and std (default 10; 0: KS and autocorrelation only)")
    p.add_argument("--iterations", type=iterations, default=(2000, 5000), metavar="DISC,PRED",
                   help="sequence runs: training steps of the discriminative and predictive scores' networks "
                        "(default 2000,5000, TimeGAN's)")
    p.add_argument("--checkpoint", default="latest", choices=("latest", "best"), help="which checkpoint of the run")
    p.add_argument("--inception-weights", default="", metavar="FILE",
                   help="pt_inception-2015-12-05-6726825d.pth (else $GANKIT_INCEPTION_WEIGHTS)")
    p.add_argument("--out", metavar="FILE", help="also write the JSON here")
    p.set_defaults(func=cmd_eval)

    add_score_parser(sub)
    add_classify_parser(sub)

    p = sub.add_parser("export", help="write a run's generator as safetensors + a JSON manifest (+ ONNX), for "
                                      "gankit.load and gankit serve")
    p.add_argument("run_dir", help="run folder")
    p.add_argument("--out", required=True, metavar="DIR", help="export folder (created)")
    p.add_argument("--format", default="safetensors", metavar="LIST",
                   help="comma-separated: safetensors (always written), onnx (checked against PyTorch)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="export the moving average of G's weights (default: when the run kept one, as "
                        "gankit sample does); --no-ema exports the raw G")
    p.add_argument("--checkpoint", default="latest", choices=["latest", "best"], help="which checkpoint")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("apply", help="run an image-to-image run's generator on your images (pix2pix, srgan, cyclegan)")
    p.add_argument("run_dir", help="run folder")
    p.add_argument("--input", required=True, metavar="PATH", help="an image, a folder of images, or an .npy "
                   "[N, C, H, W] of pixels in [0, 1] (or uint8)")
    p.add_argument("--out", required=True, metavar="PATH", help="where the outputs go, in the input's layout: a "
                   "PNG file, a folder of PNGs (the same relative names), or an .npy")
    p.add_argument("--checkpoint", default="latest", choices=["latest", "best"], help="which checkpoint")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="use the moving average of G's weights (default: when the run kept one)")
    p.add_argument("--reverse", action="store_true", help="CycleGAN runs: translate B -> A with F")
    p.add_argument("--tile", type=int, default=256, help="larger images are translated in tiles of this many "
                   "input pixels, blended over --overlap pixels (no seams)")
    p.add_argument("--overlap", type=int, default=32)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("serve", help="serve a generator over HTTP (FastAPI + uvicorn), from an export or a run folder")
    p.add_argument("path", help="export folder (gankit export) or run folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"],
                   help="run the model on PyTorch or onnxruntime (needs an export with --format onnx)")
    p.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the model")
    p.add_argument("--checkpoint", default="latest", choices=["latest", "best"], help="for a run folder")
    p.add_argument("--max-n", type=int, default=1024, help="largest n one request may ask for")
    p.add_argument("--batch-window-ms", type=float, default=0.0,
                   help="how long a model batch waits for more requests after its first (default 0: it takes the "
                        "requests that queued while the model was busy)")
    p.add_argument("--max-batch", type=int, default=256,
                   help="rows per model call (1: one request at a time, no batching)")
    p.add_argument("--max-body", type=int, default=64 * 1024, metavar="BYTES", help="largest request body")
    p.add_argument("--threads", type=int, default=0, help="model threads per worker (default: (cores - 1) / workers, at least 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="train a conditional image GAN on Fashion-MNIST (under 10 minutes on 2 CPU "
                                    "cores) and show where the results are")
    p.add_argument("--recipe", help="another built-in recipe, e.g. digits-dcgan (under a minute) or ring8 (2-4 "
                                    "minutes: 40,000 small steps)")
    p.add_argument("--steps", type=int, help="generator steps (default: the recipe's)")
    p.add_argument("--run-dir", help="run folder (default: runs/demo)")
    p.set_defaults(func=cmd_demo)
    return parser


def resolve_train_config(args: argparse.Namespace) -> Config:
    """Config file or recipe, then --data, --steps, --seed, --run-dir, then --set overrides."""
    flags = []
    if args.data:  # rows and sequences are data.name = "file"; a CSV of mixed columns is a "table"
        flags += [f"data.name={file_data_name(args.data, args.overrides)}", f"data.path={toml_string(args.data)}"]
    if args.steps is not None:
        flags.append(f"train.steps={args.steps}")
    if args.seed is not None:
        flags.append(f"seed={args.seed}")
    if args.fpr is not None:
        flags.append(f"game.fpr={args.fpr}")
    if args.run_dir:
        flags.append(f"run_dir={toml_string(args.run_dir)}")
    if args.config:
        path = Path(args.config)
        return load_config(path if path.suffix == ".toml" or path.exists() else recipe(args.config),
                           flags + args.overrides)
    if args.data:
        return apply_overrides(defaults_for_file(args.data, flags + args.overrides), flags + args.overrides)
    if any(o.split("=", 1)[0].strip() == "data.name" for o in args.overrides):  # the data described by --set alone
        return apply_overrides(Config(), flags + args.overrides)
    raise GankitError(f"nothing to train: give a CONFIG.toml, a recipe name ({recipe_names()}), --data FILE or "
                      f"--set data.name=...")


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        for flag, value in (("--seed", args.seed), ("--data", args.data)):
            if value is not None:  # the checkpoint holds the random state and the data's order and units
                raise GankitError(f"{flag} with --resume: a resumed run keeps its own {flag[2:]}; start a new run "
                                  f"to change it")
    if args.nproc is not None:
        if not args.resume:
            resolve_train_config(args)  # a mistake in the config: one line here, not one per process
        return launch(args.nproc, args.argv)
    if args.resume:
        run_dir = args.run_dir or (resolve_train_config(args).run_dir if args.config else "")
        if not run_dir:
            raise GankitError("--resume needs the run folder: pass --run-dir DIR")
        fpr = [f"game.fpr={args.fpr}"] if args.fpr is not None else []
        result = train(run_dir=run_dir, resume=True, steps=args.steps, overrides=fpr + args.overrides,
                       progress=not args.quiet)
    else:
        result = train(resolve_train_config(args), progress=not args.quiet)
    return report(result)


def report(result) -> int:
    world = result.trainer.world  # the process group is down by now; the run remembers its place in it
    if not world.is_main:
        return 0  # rank 0 speaks for the job
    where = result.run_dir
    if result.stop_reason == "interrupted":
        print(f"gankit: interrupted at step {result.step}; checkpoint saved in {where}/checkpoints/\n"
              f"continue with: gankit train --resume --run-dir {where}", file=sys.stderr)
        # under torchrun a clean stop exits 0, or torchrun reports a failed worker; `--nproc` returns 130 itself
        return 0 if world.distributed else EXIT_INTERRUPTED
    print(f"trained {result.step} steps; run folder: {where}")
    return 0


def codes(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas, e.g. 3,0.5,-1") from None


def iterations(text: str) -> tuple[int, int]:
    try:
        disc, pred = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected two step counts, DISC,PRED, e.g. 2000,5000") from None
    return disc, pred


def cmd_eval(args: argparse.Namespace) -> int:
    if (args.real is None) != (args.fake is None):
        raise GankitError("--real and --fake go together: give both (two sample sets), or neither (a run folder)")
    if args.real is not None:
        if args.run_dir:
            raise GankitError(f"give a run folder or --real/--fake, not both (got {args.run_dir})")
        result = compare(args.real, args.fake, features=args.features or "auto", metrics=args.metrics,
                         seed=args.seed, inception_weights=args.inception_weights, target=args.target)
    elif args.run_dir:
        result = evaluate(args.run_dir, metrics=args.metrics, n=args.n, seed=args.seed, features=args.features,
                          checkpoint=args.checkpoint, inception_weights=args.inception_weights,
                          repeats=args.repeats, iterations=args.iterations, progress=True, target=args.target)
    else:
        raise GankitError("nothing to evaluate: give a run folder, or --real PATH --fake PATH")
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Train a ready recipe and say where to look: Fashion-MNIST when its files are here, else digits."""
    from .data.idx import FASHION_DIR, FILES
    from .runs import default_run_path

    name = args.recipe
    if name is None:
        name = "fashion-mnist" if all((FASHION_DIR / f).is_file() for f in FILES) else "digits-dcgan"
        if name != "fashion-mnist":
            print(f"gankit demo: Fashion-MNIST is not in {FASHION_DIR} (apt-get install dataset-fashion-mnist); "
                  f"training on scikit-learn's digits instead")
    config = apply_overrides(load_config(recipe(name)), ['name="demo"'])
    run_dir = args.run_dir or str(default_run_path(config))
    flags = [f"run_dir={toml_string(run_dir)}"] + ([f"train.steps={args.steps}"] if args.steps else [])
    config = apply_overrides(config, flags)
    print(f"gankit demo: training the {name} recipe ({config.train.steps} steps) into {run_dir}")
    start = time.perf_counter()
    result = train(config)
    if result.stop_reason == "interrupted":
        return report(result)
    run = RunDir(Path(run_dir))
    pictures = run.pictures()
    gif = run.samples / "progress.gif"
    out = "grid.png" if config.data.name not in ("ring8", "grid25", "gauss1d") else "samples.csv"
    print(f"done in {time.perf_counter() - start:.0f} s. Results in {run_dir}:\n"
          f"  latest samples:   {pictures[-1][1] if pictures else '(none)'}\n"
          + (f"  progress:         {gif}\n" if gif.is_file() else "")
          + f"  report:           {run.report_path}  (open it in a browser)\n"
          f"  metrics:          {run.metrics_path}\n"
          f"draw samples:  gankit sample {run_dir} --n 64 --out {out}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from .translate import apply_files

    if args.tile < 8 or not 0 <= args.overlap < args.tile // 2:
        raise GankitError(f"--tile {args.tile} --overlap {args.overlap}: expected a tile of at least 8 pixels and "
                          f"0 <= overlap < tile / 2")
    start = time.perf_counter()
    written = apply_files(args.run_dir, args.input, args.out, args.checkpoint, args.ema, args.reverse, args.tile,
                          args.overlap)
    where = written[0] if len(written) == 1 else Path(args.out)
    print(f"gankit: {len(written)} file{'s' if len(written) > 1 else ''} written to {where} in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ONNX_TOLERANCE, export

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    result = export(args.run_dir, args.out, formats, ema=args.ema, checkpoint=args.checkpoint)
    print(f"exported {result.generator} of {args.run_dir} to {result.out}: "
          + ", ".join(p.name for p in result.files))
    if result.onnx_max_abs_diff is not None:
        print(f"ONNX check: onnxruntime vs PyTorch max abs difference {result.onnx_max_abs_diff:.3g} "
              f"(limit {ONNX_TOLERANCE:g}) on batches of {', '.join(map(str, result.checked))}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import ServeSettings, serve

    for flag, value, low in (("--port", args.port, 0), ("--max-n", args.max_n, 1), ("--max-batch", args.max_batch, 1),
                             ("--max-body", args.max_body, 1), ("--threads", args.threads, 0),
                             ("--batch-window-ms", args.batch_window_ms, 0)):
        if not value >= low:
            raise GankitError(f"{flag} {value}: expected {low} or more")
    settings = ServeSettings(backend=args.backend, max_n=args.max_n, batch_window_ms=args.batch_window_ms,
                             max_batch=args.max_batch, max_body=args.max_body, threads=args.threads)
    serve(args.path, host=args.host, port=args.port, workers=args.workers, checkpoint=args.checkpoint,
          settings=settings, log_level=args.log_level)
    return 0
