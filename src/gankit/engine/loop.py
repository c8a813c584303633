"""The engine: plays any ``Game``, step after step, with everything around the loop.

Per step, the phases that run at that step (a function of the step alone) each update their group:
the loss under autocast, backward at the group's loss scale, the gradients' mean over ranks, the
optimizer step, the group's moving averages. Statistics stay on the device and are read back (one host
sync) only every ``train.log_every`` steps and at checkpoints; a NaN/Inf in a logged ``*_loss`` is caught
there, before any checkpoint could store it, and training goes back to the last good state with lower
learning rates (``train.nan_retries``).

Extension point: callbacks (``gankit.callbacks.Callback``) see the engine at the start, at every logged
step, after every step and at the end. ``request_stop()`` ends training cleanly after the current step
and writes a checkpoint; Ctrl-C calls it.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from .. import distributed
from ..config import Config
from ..data import Dataset
from ..errors import GankitError, TrainingDiverged
from ..products import GeneratorProduct
from ..speed import autocast, autocast_dtype, has_convolutions, step_threads, thread_limit, use_fast_dropout
from . import state as checkpoint_state
from .batches import Batches
from .context import Context
from .game import Game, Phase, module_of
from .stats import Statistics
from .updates import lr_factor, make_ema, make_optimizer, update, update_ema

STOP_CHECK_EVERY = 10  # steps between the ranks' agreement on a stop request (Ctrl-C) under torchrun


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"train.device = {name!r}, but PyTorch sees no CUDA device here; use \"cpu\" or \"auto\"")
    return torch.device(name)


class Engine:
    """Trains ``game`` on a ``Dataset`` as the config says.

    ``model_info`` (family and shapes) is stored in checkpoints so a product can be rebuilt without code.
    """

    def __init__(self, config: Config, data: Dataset, game: Game, *, callbacks: Iterable[Any] = (),
                 checkpoint_path: str | Path | None = None, model_info: dict[str, Any] | None = None):
        game.check()
        self.config, self.data, self.game = config, data, game
        train = config.train
        self.device = resolve_device(train.device)
        self.world = distributed.current()  # several ranks under torchrun: each trains on a slice of every batch
        self.players = self._place(game.players)
        game.players = self.players
        modules = list(self.players.values())
        self.channels_last = train.channels_last and data.is_image and has_convolutions(*modules)
        if self.channels_last:
            for m in modules:
                m.to(memory_format=torch.channels_last)
        self.fast_dropout = train.fast_dropout and self.device.type == "cpu" and use_fast_dropout(*modules) > 0
        self.threads = step_threads(train.threads, self.device, *modules, batch_size=config.data.batch_size)
        self.groups = {g.name: g for g in game.groups}
        self.emas = {name: make_ema(self.players[name]) for g in game.groups if g.ema for name in g.players}
        self.params = {g.name: [p for name in g.players for p in module_of(self.players, name).parameters()]
                       for g in game.groups}
        self.trainable = {g: [p for p in ps if p.requires_grad] for g, ps in self.params.items()}
        self._frozen: dict[tuple, list[nn.Parameter]] = {}
        self.lr_scale = 1.0  # lowered after each NaN rollback
        self.retries = 0
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self.optimizers = {g.name: make_optimizer(self.params[g.name], train, self.base_lr(g.name), self.betas(g.name),
                                                  self.device) for g in game.groups}
        self.amp_dtype = autocast_dtype(train.precision, self.device)
        # fp16's narrow range needs loss scaling (one scaler per group: their losses differ in size); bf16 does not
        scaling = self.amp_dtype is torch.float16
        self.scalers = {g.name: torch.amp.GradScaler(self.device.type, enabled=scaling) for g in game.groups}
        self.global_batch = config.data.batch_size
        batch_size = self.global_batch // self.world.size
        if batch_size * self.world.size != self.global_batch or batch_size % config.model.pack:
            raise GankitError(f"data.batch_size = {self.global_batch} does not split into {self.world.size} processes "
                              f"of a whole number of packs of {config.model.pack}; expected a multiple of "
                              f"{self.world.size * config.model.pack}")
        game.setup(self)  # the game's own checks and state, before anything is compiled
        if train.compile:
            for m in modules:
                m.compile()  # in place: state_dict keys stay the same
        self.conditional = bool(game.conditional)
        if game.product is None and "G" in self.players:  # a user's game with a G: a generator of z ~ N(0, I)
            game.product = GeneratorProduct(int(getattr(self.players["G"], "z_dim", config.model.z_dim)))
        fields = {"x": data.x.to(self.device)}
        for name, t in game.fields().items():
            if len(t) != len(data):
                raise GankitError(f"game {type(game).__name__}: field {name!r} has {len(t)} rows; the data has "
                                  f"{len(data)}")
            fields[name] = t.to(self.device)
        if self.channels_last:
            fields = {k: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for k, t in fields.items()}
        if self.conditional:
            fields["y"] = data.y.to(self.device)
        if data.lengths is not None:
            fields["lengths"] = data.lengths.to(self.device)
        self.label_probs = data.class_frequencies().to(self.device) if self.conditional else None
        self.batches = Batches(fields, self.global_batch, config.seed, self.device, self.world, self.label_probs)
        self.stats = Statistics(self.device, last=tuple(f"{g.name}_grad_norm" for g in game.groups))
        self.ctx = Context(self)
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.model_info = model_info or {"family": "custom"}
        self.step = 0
        self.stop_reason: str | None = None
        self.last_record: dict[str, Any] = {}
        self.last_checkpoint_step: int | None = None
        self._window_steps = 0
        self._checked_step = 0

    def _place(self, players: dict[str, nn.Module]) -> dict[str, nn.Module]:
        """The players on the device, with synchronised batch norm and rank 0's weights under torchrun."""
        placed = {name: m.to(self.device) for name, m in players.items()}
        if self.config.train.sync_batchnorm and self.world.distributed:
            if self.device.type != "cuda":
                raise GankitError("train.sync_batchnorm = true needs GPUs (PyTorch's SyncBatchNorm has no CPU "
                                  "version); on the CPU each process normalises over its own slice of the batch")
            placed = {name: nn.SyncBatchNorm.convert_sync_batchnorm(m) for name, m in placed.items()}
        if self.world.distributed:
            for m in placed.values():
                distributed.broadcast_state(m)
        return placed

    def base_lr(self, group: str) -> float:
        g, train = self.groups[group], self.config.train
        return g.lr if g.lr is not None else (train.d_lr if group == "d" else train.g_lr)

    def betas(self, group: str) -> tuple[float, float]:
        g, train = self.groups[group], self.config.train
        return g.betas if g.betas is not None else (train.d_betas if group == "d" else train.g_betas)

    # ------------------------------------------------------------------------------------- one step

    def set_learning_rates(self) -> None:
        """The learning rates of this step: the configured ones x schedule x any NaN back-off. Derived from the
        step alone, so a resumed run follows the same schedule."""
        factor = lr_factor(self.config.train, self.step) * self.lr_scale
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr(name) * factor

    def train_step(self, measure: bool = False) -> None:
        """One step: every phase that runs at this step, in order, each ``repeat`` times."""
        self.set_learning_rates()
        self.ctx.scratch, self.ctx.measure = {}, measure
        with thread_limit(self.threads):
            for phase in self.game.phases_at(self.step):
                for i in range(phase.repeat):
                    self.ctx.repeat = i
                    self.run_phase(phase, measure)
        self.step += 1
        self._window_steps += 1

    def frozen(self, phase: Phase) -> list[nn.Parameter]:
        """The weights that get no gradient while ``phase``'s loss is taken (listed once per group and freeze)."""
        key = (phase.group, phase.freeze if isinstance(phase.freeze, str) else tuple(phase.freeze))
        if key not in self._frozen:
            self._frozen[key] = (
                [p for g, ps in self.trainable.items() if g != phase.group for p in ps] if phase.freeze == "others"
                else [p for name in phase.freeze for p in module_of(self.players, name).parameters() if p.requires_grad])
        return self._frozen[key]

    def run_phase(self, phase: Phase, measure: bool = False) -> None:
        frozen = self.frozen(phase)
        for p in frozen:  # gradients through these players, not of their weights
            p.requires_grad_(False)
        with autocast(self.amp_dtype, self.device):
            loss = phase.loss(self.ctx)
        for p in frozen:
            p.requires_grad_(True)
        if loss is None:  # the game chose not to update this group now
            return
        name = phase.group
        norm = update(self.optimizers[name], self.scalers[name], loss, self.params[name], measure, self.world)
        if measure:
            self.stats.add(f"{name}_grad_norm", norm, last=True)
        if phase.after is not None:
            phase.after(self.ctx)
        decay = self.groups[name].ema
        if decay and self.groups[name].ema_warmup:  # an average of the steps so far early on, not of the initial weights
            decay = min(decay, (1 + self.step) / (10 + self.step))
        for player in self.groups[name].players if decay else ():
            update_ema(self.emas[player], self.players[player], decay)

    # ------------------------------------------------------------------------------------- the loop

    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` steps (default: the config's), or a stop request. Returns the last record."""
        steps = self.config.train.steps if steps is None else steps
        cfg = self.config.train
        self.stop_reason = None
        self._window_start = time.perf_counter()
        with self._ctrl_c_stops():
            self.emit("on_train_start")
            # Where a NaN before the first checkpoint goes back to: the start (kept only if it can be needed).
            initial = self._snapshot() if cfg.nan_retries and self.last_checkpoint_step is None else None
            try:
                while True:
                    try:
                        self._run(steps)
                        break
                    except TrainingDiverged as e:
                        if self.retries >= cfg.nan_retries:
                            raise TrainingDiverged(f"{e}" + (f" (after {self.retries} retries with learning rates "
                                                             f"x{self.lr_scale:g})" if self.retries else "")) from None
                        self._rollback(initial)
            except TrainingDiverged:
                self.stop_reason = "diverged"
                raise
            finally:
                self.emit("on_train_end")
        return self.last_record

    def _run(self, steps: int) -> None:
        cfg = self.config.train
        while self.step < steps and self._keep_going():
            measure = (self.step + 1) % cfg.log_every == 0 or self.step + 1 == steps
            self.train_step(measure)
            if measure:
                self._log()
            if self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            self.emit("on_step_end")
        if self.stop_reason is None:
            self.stop_reason = "finished" if self.step >= steps else "stopped"
        if self._window_steps:
            self._log()
        if self.last_checkpoint_step != self.step:
            self.save_checkpoint()

    def _keep_going(self) -> bool:
        """Several ranks agree on stopping every STOP_CHECK_EVERY steps (a host sync each time), so all stop at the
        same step; a single process stops at once."""
        if not self.world.distributed:
            return self.stop_reason is None
        if self.step % STOP_CHECK_EVERY == 0 and distributed.any_rank(self.stop_reason is not None, self.device):
            self.stop_reason = self.stop_reason or "interrupted"  # another rank was asked to stop: all stop here
            return False
        return True

    def _snapshot(self):
        tensors, meta = self.state()
        return {k: v.detach().clone() for k, v in tensors.items()}, copy.deepcopy(meta)

    def _rollback(self, initial) -> None:
        """Back to the last good state (the latest checkpoint, else the start) with lower learning rates."""
        failed_at = self.step
        scale = self.lr_scale * self.config.train.nan_lr_factor
        if self.last_checkpoint_step is not None and self.checkpoint_path is not None:
            self.load_checkpoint(self.checkpoint_path)
        else:
            self.restore(*initial, checkpointed=False)
        self.lr_scale, self.retries = scale, self.retries + 1
        self._reset_window()
        self._window_start = time.perf_counter()
        self.emit("on_rollback", {"step": self.step, "failed_at": failed_at, "lr_scale": scale})
        self.warn(f"rollback-{self.retries}", f"a loss became NaN or Inf by step {failed_at}: back to step {self.step} "
                  f"with learning rates x{scale:g} (retry {self.retries} of {self.config.train.nan_retries})")

    def warn(self, kind: str, text: str) -> None:
        """Say ``text`` once per ``kind``: on stderr (above any progress bar), and to callbacks (metrics.jsonl)."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        self.warnings.append(text)
        from tqdm import tqdm

        tqdm.write(f"gankit: warning: {text}", file=sys.stderr)
        self.emit("on_warning", {"step": self.step, "warning": text})

    @property
    def fast_settings(self) -> dict[str, Any]:
        """The speed settings in effect (train.* after 'auto' was resolved for this device)."""
        train = self.config.train
        return {"device": str(self.device), "precision": str(self.amp_dtype).removeprefix("torch.")
                if self.amp_dtype else "fp32", "fused_optimizer": train.fused_optimizer,
                "channels_last": self.channels_last, "threads": self.threads or torch.get_num_threads(),
                "fast_dropout": self.fast_dropout, "compile": train.compile, **self.game.fast_settings()}

    @property
    def product(self):
        """What the trained game is for (``gankit.products``): a generator from a prior for the built-in games."""
        return self.game.product

    @property
    def sampling_G(self) -> nn.Module:
        """The generator to draw samples from (its moving average where the game keeps one)."""
        return self.product.module(self)

    @property
    def z_dim(self) -> int:
        return self.product.z_dim

    def request_stop(self, reason: str = "stopped") -> None:
        """End training after the current step; a checkpoint is written."""
        self.stop_reason = reason

    def emit(self, event: str, *args) -> None:
        """Call ``event`` (``on_log``, ``on_eval``, ...) on every callback that has it, in list order."""
        for cb in self.callbacks:
            getattr(cb, event, lambda *a: None)(self, *args)

    def _reset_window(self) -> None:
        self.stats.reset()
        self._window_steps = 0

    def _log(self) -> None:
        values, finite = self.stats.read(self.world)
        self._check_finite(not finite)
        now = time.perf_counter()
        record: dict[str, Any] = self.game.summarize({"step": self.step, **values})
        record["steps_per_s"] = self._window_steps / max(now - self._window_start, 1e-9)
        record["samples_per_s"] = record["steps_per_s"] * self.global_batch  # real samples per step
        self.last_record = record
        self._reset_window()
        self._window_start = now
        self.emit("on_log", record)
        self.game.watch(record, self)

    def _check_finite(self, bad: bool | None = None) -> None:
        """Raise TrainingDiverged if a loss of this window was NaN/Inf (default: look at the losses' sums)."""
        bad = not self.stats.finite() if bad is None else bad
        if bad:
            kept = (f"the last good checkpoint (step {self.last_checkpoint_step}) is kept at {self.checkpoint_path}"
                    if self.last_checkpoint_step is not None else "no checkpoint had been written yet")
            raise TrainingDiverged(
                f"training diverged: a loss became NaN or Inf between steps {self._checked_step} and {self.step}; "
                f"{kept}; try lower learning rates (train.g_lr, train.d_lr) or another loss")
        self._checked_step = self.step

    @contextmanager
    def _ctrl_c_stops(self):
        """First Ctrl-C: stop after this step and checkpoint. Second: abort at once (the last checkpoint survives)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.stop_reason == "interrupted":
                raise KeyboardInterrupt
            self.stop_reason = "interrupted"
            print("\ngankit: stopping after this step and saving a checkpoint (Ctrl-C again to abort)",
                  file=sys.stderr, flush=True)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # ------------------------------------------------------------------------------------- state

    def state(self):
        """Everything needed to continue exactly (see ``engine.state``)."""
        return checkpoint_state.collect(self)

    def save_checkpoint(self, path: str | Path | None = None, extra: dict[str, Any] | None = None) -> None:
        """Write the state to ``path`` (default: the run's latest checkpoint), with ``extra`` metadata."""
        checkpoint_state.save(self, path, extra)

    def load_checkpoint(self, path: str | Path) -> None:
        checkpoint_state.load(self, path)

    def restore(self, tensors, meta, source: str | Path = "snapshot", checkpointed: bool = True) -> None:
        """Set every piece of training state from ``state()``'s output; ``checkpointed``: it is the one on disk."""
        checkpoint_state.restore(self, tensors, meta, source, checkpointed)
