"""What happens around the loop: progress display, metrics log, sample plots, the report.

A callback is any object with some of ``on_train_start(trainer)``, ``on_log(trainer, record)``,
``on_step_end(trainer)``, ``on_train_end(trainer)``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from .runs import MetricsLog, RunDir


class Callback:
    def on_train_start(self, trainer) -> None: ...
    def on_log(self, trainer, record: dict[str, Any]) -> None: ...
    def on_step_end(self, trainer) -> None: ...
    def on_train_end(self, trainer) -> None: ...


def describe(record: dict[str, Any]) -> str:
    return (f"d_loss {record['d_loss']:.4f}  g_loss {record['g_loss']:.4f}  "
            f"D(real) {record['p_real']:.3f}  D(fake) {record['p_fake']:.3f}")


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

    def on_train_end(self, trainer) -> None:
        self.log.close()


class SamplePlotter(Callback):
    """Every ``every`` steps, plots generated samples from a fixed noise batch against real ones (1-D/2-D data)."""

    def __init__(self, run: RunDir, every: int, n: int = 2000, seed: int = 0):
        self.dir, self.every, self.n, self.seed = run.samples, every, n, seed

    def on_train_start(self, trainer) -> None:
        g = torch.Generator().manual_seed(self.seed + 2)
        n = min(self.n, len(trainer.data))
        self.z = torch.randn(n, trainer.z_dim, generator=g).to(trainer.device)
        self.real = trainer.data.to_raw(trainer.data.x[torch.randperm(len(trainer.data), generator=g)[:n]])
        self.labels = (torch.multinomial(trainer.label_probs.cpu(), n, replacement=True, generator=g)
                       .to(trainer.device) if trainer.conditional else None)
        if trainer.step == 0:
            self.plot(trainer)

    def on_step_end(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self.plot(trainer)

    def on_train_end(self, trainer) -> None:
        if trainer.step % self.every != 0 and trainer.stop_reason != "diverged":
            self.plot(trainer)

    def plot(self, trainer) -> None:
        from .plots import plot_samples

        was_training = trainer.G.training
        trainer.G.eval()
        with torch.no_grad():
            fake = trainer.data.to_raw(trainer.G(self.z, self.labels)).cpu()
        trainer.G.train(was_training)
        path = self.dir / f"step_{trainer.step:07d}.png"
        plot_samples(self.real.numpy(), fake.numpy(), path, title=f"{trainer.data.name}, step {trainer.step}")


class ReportWriter(Callback):
    """Writes ``report.md`` when training stops: where things are and how the last logged step looked."""

    def __init__(self, run: RunDir):
        self.run = run

    def on_train_start(self, trainer) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer) -> None:
        record = trainer.last_record
        plots = sorted(self.run.samples.glob("*.png"))
        lines = [
            f"# gankit run: {self.run.path.name}",
            "",
            f"- status: {trainer.stop_reason} at step {trainer.step} of {trainer.config.train.steps}",
            f"- data: {trainer.data.name} ({len(trainer.data)} samples of shape {list(trainer.data.shape)}"
            + (f", {trainer.data.num_classes} classes)" if trainer.conditional else ")"),
            f"- loss: {trainer.config.loss.name}; D steps per G step: {trainer.config.train.d_steps}",
            f"- this session: {time.perf_counter() - self.start:.1f} s",
            f"- checkpoint: {self.run.checkpoint.relative_to(self.run.path)} (step {trainer.last_checkpoint_step})",
            "- config: config.toml; metrics: metrics.jsonl",
        ]
        if record:
            lines += ["", f"Last logged step {record['step']}: {describe(record)}"]
        if plots:
            lines += ["", "## Samples", ""] + [f"![{p.stem}](samples/{p.name})" for p in plots]
        self.run.report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
