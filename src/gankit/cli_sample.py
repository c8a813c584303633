"""``gankit sample``: a run's samples to the file its kind calls for: rows to .npy/.csv, images to a PNG grid or a
folder of PNGs, sequences to .npy/.npz/long CSV, text to .txt, tables to .csv/.parquet (with --where)."""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

import numpy as np

from .api import sample, sample_images, sample_sequences, sample_text
from .checkpoint import read_meta
from .data.files import is_number
from .errors import GankitError
from .runs import RunDir
from .sampling import image_grid, to_image
from .sequence_output import check_out, meta_kind, write_sequences, write_texts
from .table_output import sample_table, schema_of, write_table


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    run = RunDir(Path(args.run_dir))
    kind = None  # not a run folder: sample() says so, after the file name's check
    if run.config_path.is_file():
        meta = read_meta(run.checkpoint_file(args.checkpoint))
        data, kind = meta["data"], meta_kind(meta)
        if meta["model"].get("kind") == "scorer":  # whatever --out is: an anomaly run draws no samples
            raise GankitError(f"{run.path}: this run is an anomaly scorer ({meta['model']['family']}), not a "
                              f"generator; use gankit score {args.run_dir} --input DATA --out scores.csv")
        if kind == "translator":
            raise GankitError(f"{run.path}: this run translates images rather than drawing them from noise; use "
                              f"gankit apply {args.run_dir} --input IMAGES --out {args.out}")
    to_folder = args.out.endswith(("/", os.sep)) or out.is_dir()
    if to_folder or out.suffix.lower() == ".png":
        return _sample_pictures(args, out, to_folder)
    if kind is not None:
        if kind == "table":
            return _sample_table(args, out, meta)
        if kind in ("sequence", "text"):
            return _sample_sequences(args, out, run, data, kind)
    if args.where and kind is not None:
        raise GankitError(f"--where {args.where[0]}: conditions on columns apply to table runs; this run's samples "
                          f"are {kind or 'not a table'}")
    if out.suffix.lower() == ".txt" and kind is not None:
        raise GankitError(f"--out {out}: a .txt file holds text; this run's samples are "
                          f"{'images' if kind == 'image' else 'rows of numbers'} (write a .npy or .csv file)")
    if out.suffix.lower() not in (".npy", ".csv"):
        raise GankitError(f"--out {out}: expected a .npy, .csv or .png file name, or a folder (DIR/) for one PNG "
                          f"per image")
    x, y = sample(args.run_dir, args.n, seed=args.seed, label=args.label, checkpoint=args.checkpoint, code=args.code)
    if x.ndim > 2 and (out.suffix.lower() == ".csv" or y is not None):
        x = x.reshape(len(x), -1)  # images as rows of pixels: a CSV has rows, and a label needs a column
    columns = data["columns"] if len(data["columns"]) == x.shape[1] else [f"x{i}" for i in range(x.shape[1])]
    if y is not None:  # the label goes back as the last column, named and valued as in the training file
        values, name = _label_values(run, data, y)
        x = np.column_stack([x, values])
        columns = columns + [name]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, x)
    else:
        np.savetxt(out, x, delimiter=",", header=",".join(columns), comments="", fmt="%.7g")
    print(f"wrote {len(x)} samples to {out}")
    return 0


def _sample_table(args: argparse.Namespace, out: Path, meta: dict) -> int:
    """Rows with the source's columns and types to a .csv or .parquet file, meeting any --where conditions."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise GankitError(f"--out {out}: a table run's samples go to a .csv or .parquet file")
    for flag, value in (("--label", args.label), ("--code", args.code)):
        if value is not None:
            raise GankitError(f"{flag}: a table run is conditioned with --where COLUMN=VALUE")
    frame = sample_table(args.run_dir, args.n, seed=args.seed, where=args.where, checkpoint=args.checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(frame, schema_of(meta), out)
    how = (f" ({frame.attrs['draws']:,} draws for {' and '.join(args.where)})" if args.where else "")
    print(f"wrote {len(frame)} rows to {out}{how}")
    return 0


def _label_values(run: RunDir, data: dict, y: np.ndarray) -> tuple[np.ndarray, str]:
    """Class indices -> the labels' values in the training file (numbers where the names are), and their name."""
    label_column = run.config().data.label_column
    names = data["class_names"]
    values = np.array([float(names[i]) if is_number(names[i]) else i for i in y])
    return values, label_column if label_column and not label_column.lstrip("-").isdigit() else "label"


def _sample_sequences(args: argparse.Namespace, out: Path, run: RunDir, data: dict, kind: str) -> int:
    """Text items to a .txt file; sequences to a .npy [n, T, F], an .npz (x, lengths, y) or a long-format CSV."""
    check_out(out, kind, bool(data.get("variable_length")), bool(data["class_names"]))
    if args.code is not None:
        raise GankitError("--code: this run's generator has no latent codes (game.name = \"infogan\" has)")
    if kind == "text":
        items = sample_text(args.run_dir, args.n, seed=args.seed, label=args.label, checkpoint=args.checkpoint)
        write_texts(out, items)
        print(f"wrote {len(items)} items to {out}")
        return 0
    x, lengths, y = sample_sequences(args.run_dir, args.n, seed=args.seed, label=args.label,
                                     checkpoint=args.checkpoint)
    labels, name = _label_values(run, data, y) if y is not None else (None, "label")
    if labels is not None and (labels == labels.round()).all():
        labels = labels.astype(np.int64)  # an .npz's y and a long CSV's labels are integer classes
    write_sequences(out, x, lengths, data["columns"], labels, name)
    print(f"wrote {len(x)} sequences to {out}")
    return 0


def _sample_pictures(args: argparse.Namespace, out: Path, to_folder: bool) -> int:
    """A grid of the images in one PNG, or one PNG per image (at its own size) in a folder."""
    pixels, y = sample_images(args.run_dir, args.n, seed=args.seed, label=args.label, checkpoint=args.checkpoint,
                              code=args.code)  # [n, H, W, C]
    if not to_folder:
        out.parent.mkdir(parents=True, exist_ok=True)
        image_grid(pixels, nrow=math.ceil(math.sqrt(len(pixels)))).save(out)
        print(f"wrote a grid of {len(pixels)} samples to {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    names = read_meta(RunDir(Path(args.run_dir)).checkpoint)["data"]["class_names"]
    width = max(5, len(str(len(pixels) - 1)))
    for i, image in enumerate(pixels):
        label = "" if y is None else "_" + re.sub(r"[^\w.-]+", "_", names[y[i]])  # 00012_7.png, 00013_cat.png
        to_image(image).save(out / f"{i:0{width}d}{label}.png")
    print(f"wrote {len(pixels)} samples as PNG files to {out}{os.sep}")
    return 0
