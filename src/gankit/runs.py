"""The run folder: everything needed to understand and continue a run.

    RUN/config.toml                 the fully resolved config
    RUN/checkpoints/latest.safetensors
    RUN/checkpoints/best.safetensors  the best by eval.best, when metrics run during training
    RUN/metrics.jsonl               one JSON object per logged step; evaluations as {"step", "eval": {...}}
    RUN/eval.json                   the last `gankit eval` of the run, with how it was computed
    RUN/samples/step_XXXXXXX.png    pictures from a fixed noise batch: image grids, or real vs generated
                                    for 1-D and 2-D data
    RUN/samples/progress.gif        the image grids as an animation
    RUN/tensorboard/                TensorBoard events, when train.tensorboard = true
    RUN/report.html                 a static page of the run (its curves: report_curves.png), refreshed as
                                    it trains
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, load_config, save_config
from .errors import GankitError


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "latest.safetensors"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.safetensors"

    def checkpoint_file(self, which: str = "latest") -> Path:
        """``latest`` or ``best``, checked to exist."""
        if which not in ("latest", "best"):
            raise GankitError(f"--checkpoint {which}: expected latest or best")
        path = self.checkpoint if which == "latest" else self.best_checkpoint
        if not path.is_file():
            hint = " (kept only when metrics run during training: eval.every > 0)" if which == "best" else ""
            raise GankitError(f"{path}: checkpoint not found{hint}")
        return path

    @property
    def eval_path(self) -> Path:
        return self.path / "eval.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def picture_path(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def pictures(self) -> list[tuple[int, Path]]:
        """(step, path) of the sample pictures, by step."""
        found = ((re.fullmatch(r"step_(\d+)\.png", p.name), p) for p in self.samples.glob("step_*.png"))
        return sorted((int(m.group(1)), p) for m, p in found if m)

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    def config(self) -> Config:
        if not self.config_path.is_file():
            raise GankitError(f"{self.path}: not a gankit run folder (no config.toml)")
        return load_config(self.config_path)

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]


def default_run_path(config: Config, root: str | Path = "runs") -> Path:
    """``runs/<name>``, or ``runs/<name>-2``, ``-3``... if taken, so a new run never overwrites an old one."""
    base = Path(root) / config.run_name
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def create_run(path: str | Path, config: Config) -> RunDir:
    run = RunDir(Path(path))
    if run.checkpoint.exists():
        raise GankitError(f"{run.path}: already holds a run; continue it with --resume or choose another --run-dir")
    if run.config_path.exists():
        raise GankitError(f"{run.path}: holds a run that stopped before its first checkpoint (nothing to resume); "
                          f"delete the folder or choose another --run-dir")
    (run.path / "checkpoints").mkdir(parents=True, exist_ok=True)
    run.samples.mkdir(exist_ok=True)
    save_config(config, run.config_path)
    return run


def open_run(path: str | Path) -> RunDir:
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise GankitError(f"{run.path}: run folder not found")
    if not run.checkpoint.is_file():
        raise GankitError(f"{run.path}: no checkpoint to resume from (expected {run.checkpoint})")
    return run


class MetricsLog:
    """Appends one JSON object per logged step; on resume, drops lines past the checkpoint's step.

    Each line is appended and flushed on its own (a handful per minute), so any number of writers (the
    trainer's log, the evaluations) share the file in step order and a crash loses no line.
    """

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None:
            self.truncate(resume_step)

    def truncate(self, step: int) -> None:
        """Drop the lines past ``step``: those of a session (or a diverged stretch) that is being replaced."""
        if self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """Nothing stays open; kept so callers need not know."""
