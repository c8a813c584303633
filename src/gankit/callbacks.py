"""What happens around the loop: progress display, metrics log, sample pictures, TensorBoard, the report.

A callback is any object with some of ``on_train_start(trainer)``, ``on_log(trainer, record)``,
``on_eval(trainer, record)``, ``on_warning(trainer, record)``, ``on_rollback(trainer, info)``,
``on_step_end(trainer)``, ``on_train_end(trainer)``. They are called in list order, so a callback that
reads what another writes (the report reads the pictures) comes after it.

Pictures are drawn at step 0, every ``every`` steps and at the end, from a fixed noise batch seeded by
the run's seed, so the pictures of one run (and of its resumed sessions) are comparable.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import torch

from .checkpoint import read_meta
from .config import to_toml
from .errors import GankitError
from .metrics import Evaluator, is_better
from .product_loader import eval_samples
from .report import PROGRESS_GIF, REFRESH_S, write_report
from .runs import MetricsLog, RunDir
from .sampling import fixed_batch, generator_grid, picture_range, read_frames, save_gif


class Callback:
    def on_train_start(self, trainer) -> None: ...
    def on_log(self, trainer, record: dict[str, Any]) -> None: ...
    def on_eval(self, trainer, record: dict[str, Any]) -> None: ...  # an evaluation's line of metrics.jsonl
    def on_warning(self, trainer, record: dict[str, Any]) -> None: ...  # {"step", "warning": text}, once per kind
    def on_rollback(self, trainer, info: dict[str, Any]) -> None: ...  # after a NaN: back to info["step"]
    def on_step_end(self, trainer) -> None: ...
    def on_train_end(self, trainer) -> None: ...


SHOWN = (("p_real", "D(real)", "{:.3f}"), ("p_fake", "D(fake)", "{:.3f}"))  # besides every *_loss


def describe(record: dict[str, Any]) -> str:
    """The progress line's statistics: every logged loss, D's outputs where the game logs them, the speed."""
    parts = [f"{k} {v:.4f}" for k, v in record.items() if k.endswith("_loss") and isinstance(v, (int, float))]
    parts += [f"{head} {fmt.format(record[k])}" for k, head, fmt in SHOWN if isinstance(record.get(k), (int, float))]
    if isinstance(record.get("samples_per_s"), (int, float)):
        parts.append(f"{record['samples_per_s']:.0f} samples/s")
    return "  ".join(parts)


class Progress(Callback):
    """A tqdm bar (step, losses, ETA) on a terminal; plain lines at each logged step otherwise."""

    def __init__(self, steps: int, stream=None):
        self.steps, self.stream = steps, stream or sys.stderr
        self.bar = None

    def on_train_start(self, trainer) -> None:
        self.start, self.start_step = time.perf_counter(), trainer.step
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.steps, initial=trainer.step, unit="step", file=self.stream,
                            dynamic_ncols=True, desc="train")

    def on_step_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, trainer, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(describe(record), refresh=False)
            return
        done = trainer.step - self.start_step
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        eta = (self.steps - trainer.step) / max(rate, 1e-9)
        print(f"step {trainer.step}/{self.steps}  {describe(record)}  {rate:.1f} steps/s  eta {_duration(eta)}",
              file=self.stream, flush=True)

    def on_train_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class MetricsWriter(Callback):
    """Appends each logged record to ``metrics.jsonl``."""

    def __init__(self, run: RunDir, resume_step: int | None = None):
        self.log = MetricsLog(run.metrics_path, resume_step)

    def on_log(self, trainer, record: dict[str, Any]) -> None:
        self.log.write(record)

    def on_eval(self, trainer, record: dict[str, Any]) -> None:
        self.log.write(record)

    def on_warning(self, trainer, record: dict[str, Any]) -> None:
        self.log.write(record)

    def on_rollback(self, trainer, info: dict[str, Any]) -> None:
        """Lines of the diverged stretch go; one line says what happened."""
        self.log.truncate(info["step"])
        self.log.write({"step": info["step"], "rollback": info})

    def on_train_end(self, trainer) -> None:
        self.log.close()


class Evaluate(Callback):
    """Every ``every`` steps and at the end: metrics of ``n`` samples from a fixed noise batch, sent to the
    callbacks' ``on_eval`` as ``{"step", "eval": {...}, ...}`` (``MetricsWriter`` puts it in metrics.jsonl,
    TensorBoard plots it); the checkpoint with the best ``best`` value so far is kept as
    ``checkpoints/best.safetensors`` (its metadata holds the evaluation)."""

    def __init__(self, run: RunDir, evaluator: Evaluator, every: int, n: int, best: str | None, seed: int = 0,
                 stream=None, quiet: bool = False):
        self.run, self.evaluator = run, evaluator
        self.every, self.n, self.best, self.seed = every, n, best, seed
        self.stream, self.quiet = stream or sys.stderr, quiet  # quiet: metrics.jsonl only, no line on the terminal
        self.best_value: float | None = None
        self.last_step: int | None = None
        self.most_modes: dict[str, tuple[int, int]] = {}  # covered-count key -> (most covered so far, at step)

    def on_train_start(self, trainer) -> None:
        if self.best and self.run.best_checkpoint.is_file():  # a resumed run competes with its own best
            self.best_value = read_meta(self.run.best_checkpoint).get("eval", {}).get(self.best)

    def on_step_end(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self.evaluate(trainer)

    def on_train_end(self, trainer) -> None:
        if self.last_step != trainer.step and trainer.stop_reason != "diverged" and trainer.step > 0:
            self.evaluate(trainer)

    def evaluate(self, trainer) -> dict[str, Any]:
        fake = eval_samples(self.evaluator, trainer.sampling_G, trainer.z_dim, self.n, trainer.conditional, self.seed)
        result = self.evaluator.evaluate(fake)
        metrics = result["metrics"]
        how = result["how"]
        record = {"step": trainer.step, "eval": metrics, "features": how["features"], "n_real": how["n_real"],
                  "n_fake": how["n_fake"], "seconds": result["seconds"]}
        self.last_step = trainer.step
        if self.best and is_better(self.best, metrics.get(self.best), self.best_value):
            self.best_value = metrics[self.best]
            trainer.save_checkpoint(self.run.best_checkpoint, extra={"eval": metrics, "eval_how": how})
            record["best"] = self.best
        trainer.emit("on_eval", record)
        self.watch_modes(trainer, metrics)
        if self.quiet:
            return record
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        from tqdm import tqdm  # writes above a progress bar, if one is showing

        tqdm.write(f"eval step {trainer.step}: {shown} ({how['features']} features, {result['seconds']:.1f} s)"
                   + ("  [best]" if "best" in record else ""), file=self.stream)
        return record

    def watch_modes(self, trainer, metrics: dict[str, Any]) -> None:
        """Warn once when fewer modes (or classes) are covered than at an earlier evaluation."""
        for key, total in (("modes_covered", "modes_total"), ("classes_covered", "classes_total")):
            if key not in metrics:
                continue
            most, at = self.most_modes.get(key, (-1, 0))
            if metrics[key] < most:
                trainer.warn(f"lost-{key}", f"modes are being lost: {metrics[key]} of {metrics[total]} "
                                            f"{key.split('_')[0]} covered at step {trainer.step}, down from {most} at "
                                            f"step {at}; the best checkpoint keeps the better generator")
            elif metrics[key] > most:
                self.most_modes[key] = (metrics[key], trainer.step)


def picture_step(trainer, every: int, end: bool = False) -> bool:
    """Whether this step gets a picture: every ``every`` steps, and at the end of a run that did not diverge."""
    if end:
        return trainer.step % every != 0 and trainer.stop_reason != "diverged"  # multiples were drawn already
    return trainer.step % every == 0


class Pictures(Callback):
    """A callback that draws (``draw``) every ``every`` steps and once at the end of a run that did not diverge."""

    every: int

    def on_step_end(self, trainer) -> None:
        if picture_step(trainer, self.every):
            self.draw(trainer)

    def on_train_end(self, trainer) -> None:
        if picture_step(trainer, self.every, end=True):
            self.draw(trainer)

    def draw(self, trainer) -> None:
        raise NotImplementedError

    def start(self, trainer, companions: tuple[str, ...] = ()) -> None:
        """A new run's first picture; on a resumed run, the step pictures past its checkpoint removed (they belong
        to a session the resume discards, like metrics.jsonl lines), each with its ``companions`` (suffixes)."""
        if trainer.step == 0:
            self.draw(trainer)
            return
        for step, path in self.run.pictures():
            if step > trainer.step:
                path.unlink()
                for suffix in companions:
                    path.with_suffix(suffix).unlink(missing_ok=True)


class SamplePlotter(Pictures):
    """Every ``every`` steps, plots generated samples from a fixed noise batch against real ones (1-D/2-D data)."""

    def __init__(self, run: RunDir, every: int, n: int = 2000, seed: int = 0):
        self.run, self.every, self.n, self.seed = run, every, n, seed

    def on_train_start(self, trainer) -> None:
        g = torch.Generator().manual_seed(self.seed + 2)
        n = min(self.n, len(trainer.data))
        self.z = torch.randn(n, trainer.z_dim, generator=g).to(trainer.device)
        self.real = trainer.data.to_raw(trainer.data.x[torch.randperm(len(trainer.data), generator=g)[:n]])
        self.labels = (torch.multinomial(trainer.label_probs.cpu(), n, replacement=True, generator=g)
                       .to(trainer.device) if trainer.conditional else None)
        if trainer.step == 0:
            self.draw(trainer)

    def draw(self, trainer) -> None:
        from .plots import plot_samples

        G = trainer.sampling_G
        was_training = G.training
        G.eval()
        with torch.no_grad():
            fake = trainer.data.to_raw(G(self.z, self.labels)).cpu()
        G.train(was_training)
        path = self.run.picture_path(trainer.step)
        plot_samples(self.real.numpy(), fake.numpy(), path, title=f"{trainer.data.name}, step {trainer.step}")


class ImageGrids(Pictures):
    """Grids of generated images from a fixed noise batch, ``samples/step_XXXXXXX.png``, and at the end
    ``samples/progress.gif`` of every grid in the folder (those of earlier sessions of a resumed run too).

    Unconditional: an 8 x 8 grid; conditional: one row of samples per class, named at the left.
    """

    GIF_FRAME_MS, GIF_LAST_FRAME_MS = 400, 2000  # the final grid stays a while before the loop restarts

    def __init__(self, run: RunDir, every: int, seed: int = 0):
        self.run, self.every, self.seed = run, every, seed

    def on_train_start(self, trainer) -> None:
        data = trainer.data
        self.class_names = data.class_names if trainer.conditional else []
        z, y = fixed_batch(trainer.z_dim, len(self.class_names), seed=self.seed + 2)
        self.z, self.y = z.to(trainer.device), (None if y is None else y.to(trainer.device))
        self.value_range = picture_range(data)
        self.start(trainer)

    def on_train_end(self, trainer) -> None:
        super().on_train_end(trainer)
        frames = read_frames(path for _, path in self.run.pictures())
        if frames:
            durations = [self.GIF_FRAME_MS] * (len(frames) - 1) + [self.GIF_LAST_FRAME_MS]
            save_gif(frames, self.run.samples / PROGRESS_GIF, durations)

    def draw(self, trainer) -> None:
        grid = generator_grid(trainer.sampling_G, self.z, self.y, self.class_names, self.value_range)
        grid.save(self.run.picture_path(trainer.step))


class TensorBoardLogger(Callback):
    """Every logged record as scalars (``train/d_loss``, ...) and the run's sample pictures, in ``RUN/tensorboard/``.

    View with ``tensorboard --logdir RUN``. Needs the tensorboard package, checked when the callback is
    made, so a missing one stops a run before it starts. A resumed run hides the events of the
    discarded session past its checkpoint (SummaryWriter's ``purge_step``).
    """

    def __init__(self, run: RunDir, every: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GankitError("train.tensorboard = true needs the tensorboard package: "
                              "pip install 'gankit[tensorboard]'") from None
        self.SummaryWriter, self.run, self.every = SummaryWriter, run, every

    def on_train_start(self, trainer) -> None:
        resumed = trainer.step > 0
        self.writer = self.SummaryWriter(str(self.run.path / "tensorboard"), flush_secs=30,
                                         purge_step=trainer.step + 1 if resumed else None)
        if not resumed:
            toml = to_toml(trainer.config)
            self.writer.add_text("config", "".join("    " + line + "\n" for line in toml.splitlines()), 0)
            self.picture(trainer)

    def on_log(self, trainer, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key != "step":
                self.writer.add_scalar(f"train/{key}", value, record["step"])

    def on_eval(self, trainer, record: dict[str, Any]) -> None:
        for key, value in record["eval"].items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"eval/{key}", value, record["step"])

    def on_step_end(self, trainer) -> None:
        if picture_step(trainer, self.every):
            self.picture(trainer)

    def on_train_end(self, trainer) -> None:
        if picture_step(trainer, self.every, end=True):
            self.picture(trainer)
        self.writer.close()

    def picture(self, trainer) -> None:
        """The picture another callback (ImageGrids, SamplePlotter) drew for this step, if any."""
        from PIL import Image

        path = self.run.picture_path(trainer.step)
        if path.is_file():
            with Image.open(path) as im:
                self.writer.add_image("samples", np.asarray(im.convert("RGB")), trainer.step, dataformats="HWC")


class ReportWriter(Callback):
    """Writes ``report.html`` (see ``gankit.report``) at the start and when training stops, and refreshes it
    at picture steps at most every ``min_interval`` seconds (drawing the curves takes a moment)."""

    def __init__(self, run: RunDir, every: int, min_interval: float = REFRESH_S):
        self.run, self.every, self.min_interval = run, every, min_interval

    def on_train_start(self, trainer) -> None:
        self.start = time.perf_counter()
        self.write(trainer, running=True)

    def on_step_end(self, trainer) -> None:
        if picture_step(trainer, self.every) and time.perf_counter() - self.written >= self.min_interval:
            self.write(trainer, running=True)

    def on_train_end(self, trainer) -> None:
        self.write(trainer, running=False)

    def write(self, trainer, running: bool) -> None:
        steps = trainer.config.train.steps
        status = (f"running: step {trainer.step} of {steps}" if running
                  else f"{trainer.stop_reason} at step {trainer.step} of {steps}")
        data, config = trainer.data, trainer.config
        checkpoint = (f"{self.run.checkpoint.relative_to(self.run.path)} (step {trainer.last_checkpoint_step})"
                      if trainer.last_checkpoint_step is not None else "none yet")
        facts = [
            ("data", f"{data.name}: {len(data)} samples of shape {list(data.shape)}"
                     + (f", {data.num_classes} classes" if trainer.conditional else "")),
            ("model", f"{trainer.model_info.get('family', 'custom')}"
                      + (f", z_dim {trainer.product.z_dim}" if hasattr(trainer.product, "z_dim") else
                         f", {', '.join(trainer.players)}")),
            ("loss", f"{config.loss.name}; D steps per G step: {config.train.d_steps}"),
            ("this session", f"{time.perf_counter() - self.start:.1f} s"),
            ("checkpoint", checkpoint),
            ("files", "config.toml, metrics.jsonl, samples/" + (", tensorboard/" if config.train.tensorboard else "")),
        ]
        write_report(self.run, status, facts, running=running)
        self.written = time.perf_counter()
