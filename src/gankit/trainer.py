"""The training loop: ``k`` discriminator steps, then one generator step, repeated.

Per step, everything stays on the device: losses and D's scores are summed into a small tensor and
read back (one host sync) only every ``train.log_every`` steps and at checkpoints. A NaN/Inf in a
loss is caught at the next such sync, before any checkpoint could store it.

Extension point: callbacks (``gankit.callbacks.Callback``) see the trainer at the start, at every
logged step, after every step and at the end. ``request_stop()`` ends training cleanly after the
current step and writes a checkpoint; Ctrl-C calls it.
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor, nn

from . import __version__, distributed
from .checkpoint import (join_optimizer_state, load_checkpoint, prefixed, save_checkpoint, split_optimizer_state,
                         unprefixed)
from .config import Config, TrainConfig
from .data import Dataset
from .errors import GankitError, TrainingDiverged
from .augment import annealed_std, diff_augment, instance_noise, parse_policy
from .losses import get_loss
from .regularizers import clip_weights, dragan_penalty, gradient_penalty, r1_penalty, r2_penalty
from .speed import (autocast, autocast_dtype, has_convolutions, optimizer_options, step_threads, thread_limit,
                    use_fast_dropout)

CHECKPOINT_FORMAT = 1
# Names of the window statistics, in the order they are accumulated.
# D's seven come first, so one D step adds to a slice; "d_acc_fake" is summed as the share of fakes *above* the
# threshold (one comparison for both batches) and turned around at the log.
STATS = ("d_loss", "d_real", "d_fake", "p_real", "p_fake", "d_acc_real", "d_acc_fake", "g_loss")
D_WON_LOGS = 5  # logged intervals in a row with D rejecting fakes confidently before the warning


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"train.device = {name!r}, but PyTorch sees no CUDA device here; use \"cpu\" or \"auto\"")
    return torch.device(name)


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig, lr: float, betas: tuple[float, float],
                   device: torch.device = torch.device("cpu")):
    options = optimizer_options(cfg.optimizer, device, cfg.fused_optimizer)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, **options)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **options)
    return torch.optim.SGD(params, lr=lr, momentum=betas[0], **options)


class BatchSampler:
    """Shuffled epochs over N rows. Epoch e's order comes from (seed, e), so the state is two integers."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > n:
            raise GankitError(f"data.batch_size = {batch_size} is larger than the data set ({n} rows); "
                              f"expected at most {n}")
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self.epoch, self.pos = 0, 0
        self._order: Tensor | None = None

    def _epoch_order(self) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).to(self.device)

    def next(self) -> Tensor:  # [B] row indices on the device
        if self.pos + self.batch_size > self.n:  # the incomplete tail of an epoch is skipped
            self.epoch, self.pos, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._order = self._epoch_order()
        idx = self._order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self._order = state["epoch"], state["pos"], None


def make_ema(G: nn.Module) -> nn.Module:
    """A frozen copy of G whose weights will follow G's as an exponential moving average."""
    ema = copy.deepcopy(G).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, G: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * G for weights; buffers (batch-norm statistics) are copied.

    Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training": the average sits
    near the centre of the generator's oscillation around equilibrium, so its samples are steadier.
    """
    torch._foreach_lerp_(list(ema.parameters()), list(G.parameters()), 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up over ``warmup_steps``, then the schedule to 0."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = min((step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1), 1.0)
    return 1.0 - progress if cfg.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))


class HistoricalAverage:
    """lambda ||theta - mean of past theta||^2 (Salimans et al. 2016, "Improved Techniques for Training GANs",
    section 3.3): a pull towards each player's own past, which damps the oscillations of gradient play.

    The mean is the running average over all of a network's updates so far; it is part of the checkpoint.
    """

    def __init__(self, module: nn.Module, weight: float):
        self.weight = weight
        self.mean = [p.detach().clone() for p in module.parameters()]
        self.count = 1  # the initial weights count as the first

    def penalty(self, module: nn.Module) -> Tensor:
        return self.weight * sum((p - m).square().sum() for p, m in zip(module.parameters(), self.mean))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.count += 1
        torch._foreach_lerp_(self.mean, [p.detach() for p in module.parameters()], 1.0 / self.count)


def match_layouts(opt: torch.optim.Optimizer) -> None:
    """Lay loaded optimizer state out as its parameter is (NHWC for channels_last): the fused kernels walk
    parameter and state memory in step, so a state in another layout would be paired with the wrong weights."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def grad_norm(module: nn.Module) -> Tensor:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm() if norms else torch.zeros(())


STOP_CHECK_EVERY = 10  # steps between the ranks' agreement on a stop request (Ctrl-C) under torchrun


class Trainer:
    """Trains G against D on a ``Dataset`` as the config says.

    ``G(z, y=None) -> x`` and ``D(x, y=None) -> logits [B]`` may be any modules. ``model_info``
    (family and shapes) is stored in checkpoints so ``gankit sample`` can rebuild G without code.
    """

    def __init__(self, config: Config, data: Dataset, G: nn.Module, D: nn.Module, *,
                 callbacks: Iterable[Any] = (), checkpoint_path: str | Path | None = None,
                 model_info: dict[str, Any] | None = None):
        self.config, self.data = config, data
        train = config.train
        self.device = resolve_device(train.device)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.world = distributed.current()  # several ranks under torchrun: each trains on a slice of every batch
        if train.sync_batchnorm and self.world.distributed:
            if self.device.type != "cuda":
                raise GankitError("train.sync_batchnorm = true needs GPUs (PyTorch's SyncBatchNorm has no CPU "
                                  "version); on the CPU each process normalises over its own slice of the batch")
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        if self.world.distributed:
            distributed.broadcast_state(self.G)
            distributed.broadcast_state(self.D)
        self.channels_last = train.channels_last and data.is_image and has_convolutions(self.G, self.D)
        if self.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        # D's real and fake batches in one pass, where D says each sample's score depends on that sample alone
        self.joint_d = train.joint_d_batch and bool(getattr(self.D, "batch_independent", False))
        self.fast_dropout = train.fast_dropout and self.device.type == "cpu" and use_fast_dropout(self.G, self.D) > 0
        self.threads = step_threads(train.threads, self.device, self.G, self.D)
        self.G_ema = make_ema(self.G) if train.ema else None
        self._d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.loss = get_loss(config.loss.name, config.loss.label_smoothing)
        loss_cfg = config.loss
        self.penalty = loss_cfg.penalty if loss_cfg.penalty != "none" else ("gp" if loss_cfg.name == "wgan-gp" else "none")
        self.augment = parse_policy(train.augment)
        if self.augment and not data.is_image:
            raise GankitError(f"train.augment = {train.augment!r}: DiffAugment transforms images; this data is rows "
                              f"of {data.num_features} values (use train.instance_noise instead)")
        if loss_cfg.feature_matching and not callable(getattr(D, "features", None)):
            raise GankitError("loss.feature_matching needs D.features(x, y) (the built-in models have it); "
                              "your D has no features method")
        self.history = ({"G": HistoricalAverage(G, loss_cfg.historical_averaging),
                         "D": HistoricalAverage(D, loss_cfg.historical_averaging)}
                        if loss_cfg.historical_averaging else None)
        self.lr_scale = 1.0  # lowered after each NaN rollback
        self.retries = 0
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._d_won_logs = 0
        self._d_updates = 0
        # Where D's output separates real (above) from fake (below): 0 for logits, 1/2 for least squares' targets.
        self.d_threshold = 0.5 if loss_cfg.name == "least-squares" else 0.0
        self.opt_g = make_optimizer(self.G.parameters(), train, train.g_lr, train.g_betas, self.device)
        self.opt_d = make_optimizer(self.D.parameters(), train, train.d_lr, train.d_betas, self.device)
        self.amp_dtype = autocast_dtype(train.precision, self.device)
        # fp16's narrow range needs loss scaling (one scaler per player: their losses differ in size); bf16 does not
        scaling = self.amp_dtype is torch.float16
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=scaling)
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=scaling)
        if train.compile:
            if self.penalty != "none":
                raise GankitError(f"train.compile = true cannot be combined with a gradient penalty (loss.penalty = "
                                  f"{self.penalty!r}): torch.compile does not support double backward")
            self.G.compile()  # in place: state_dict keys stay the same
            self.D.compile()
        self.conditional = data.y is not None and config.model.conditional
        self.x = data.x.to(self.device)
        if self.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = data.y.to(self.device) if self.conditional else None
        self.label_probs = data.class_frequencies().to(self.device) if self.conditional else None
        self.global_batch = config.data.batch_size
        self.batch_size = self.global_batch // self.world.size  # this rank's share
        if self.batch_size * self.world.size != self.global_batch or self.batch_size % config.model.pack:
            raise GankitError(f"data.batch_size = {self.global_batch} does not split into {self.world.size} processes "
                              f"of a whole number of packs of {config.model.pack}; expected a multiple of "
                              f"{self.world.size * config.model.pack}")
        self.sampler = BatchSampler(len(data), self.global_batch, config.seed, self.device)
        self.noise = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.z_dim = config.model.z_dim
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.model_info = model_info or {"family": "custom"}
        self.step = 0
        self.stop_reason: str | None = None
        self.last_record: dict[str, Any] = {}
        self.last_checkpoint_step: int | None = None
        self._reset_window()
        self._kept_fake: tuple[Tensor, Tensor | None] | None = None  # the last D step's fake batch, for G's step
        self._checked_step = 0

    # ------------------------------------------------------------------------------------- one step

    def noise_batch(self, n: int) -> Tensor:  # [n, z_dim]
        return self.share(torch.randn(n * self.world.size, self.z_dim, generator=self.noise, device=self.device))

    def label_batch(self, n: int) -> Tensor | None:  # [n], drawn with the data's class frequencies
        if not self.conditional:
            return None
        return self.share(torch.multinomial(self.label_probs, n * self.world.size, replacement=True,
                                            generator=self.noise))

    def share(self, batch: Tensor) -> Tensor:
        """This rank's rows of a global batch: every rank draws the same global batch (same seed, same data order)
        and takes its slice, so N processes see what one process would, a slice each."""
        if not self.world.distributed:
            return batch
        n = len(batch) // self.world.size
        return batch[self.world.rank * n:(self.world.rank + 1) * n]

    def d_step(self, measure: bool = False, keep_fake: bool = False) -> None:
        """One update of D on a fresh real batch and a fresh fake batch. ``keep_fake``: generate it with G's graph
        and keep it for the G step that follows (``train.reuse_fake``), which saves that step a forward pass of G."""
        idx = self.share(self.sampler.next())
        real = self.x[idx]  # [B, F]
        y = self.y[idx] if self.conditional else None
        with autocast(self.amp_dtype, self.device):
            with torch.set_grad_enabled(keep_fake):
                fake = self.G(self.noise_batch(self.batch_size), y).float()
            if keep_fake:
                self._kept_fake, fake = (fake, y), fake.detach()
            real, fake = self.d_input(real), self.d_input(fake)
            if self.joint_d:  # one pass over both batches: half the calls, larger products
                both = self.D(torch.cat([real, fake]), None if y is None else torch.cat([y, y])).float()
                real_logits, fake_logits = both.chunk(2)
            else:
                real_logits, fake_logits = self.D(real, y).float(), self.D(fake, y).float()
            loss = self.loss.d(real_logits, fake_logits)
            penalty = self.d_penalty(real, fake, y)
            logged = loss
            if penalty is not None:
                loss = loss + penalty
                # fp16: a loss scale too large for the penalty's inner gradient makes it inf at this step; the
                # scaler then skips the step and halves its scale, which is not divergence (nor logged as such)
                logged = logged + (penalty.nan_to_num(0.0, 0.0, 0.0) if self.scaler_d.is_enabled() else penalty)
            if self.history is not None:
                h = self.history["D"].penalty(self.D)
                loss, logged = loss + h, logged + h
        norm = self.update(self.opt_d, self.scaler_d, loss, self.D, measure)
        if measure:
            self._d_grad_norm = norm
        if self.history is not None:
            self.history["D"].update(self.D)
        if self.config.loss.name == "wasserstein":
            clip_weights(self.D, self.config.loss.clip)
        logits = torch.stack([real_logits.detach(), fake_logits.detach()])  # [2, B]: few, batched ops per step
        self._acc[:7] += torch.cat([logged.detach().reshape(1), logits.mean(1), torch.sigmoid(logits).mean(1),
                                    (logits > self.d_threshold).float().mean(1)])
        self._window_d += 1

    def g_step(self, measure: bool = False) -> None:
        """One update of G through D on the kept fake batch or a fresh one (and a real batch, for the relativistic
        losses and feature matching)."""
        kept, self._kept_fake = self._kept_fake, None
        for p in self._d_params:  # G's step needs gradients through D, not of D's weights
            p.requires_grad_(False)
        with autocast(self.amp_dtype, self.device):
            if kept is not None:
                fake, y = kept
            else:
                y = self.label_batch(self.batch_size)
                fake = self.G(self.noise_batch(self.batch_size), y).float()
            fake = self.d_input(fake)
            fake_logits = self.D(fake, y).float()
            real_logits = None
            fm_weight = self.config.loss.feature_matching
            if self.loss.relativistic or fm_weight:
                idx = self.share(self.sampler.next())
                real, y_real = self.d_input(self.x[idx]), (self.y[idx] if self.conditional else None)
                if self.loss.relativistic:
                    with torch.no_grad():
                        real_logits = self.D(real, y_real).float()
            loss = self.loss.g(fake_logits, real_logits)
            if fm_weight:  # Salimans et al. 2016, 3.1: match the mean of D's features on real and generated batches
                with torch.no_grad():
                    real_features = self.D.features(real, y_real).mean(0)
                loss = loss + fm_weight * (self.D.features(fake, y).mean(0) - real_features).square().sum()
            if self.history is not None:
                loss = loss + self.history["G"].penalty(self.G)
        for p in self._d_params:
            p.requires_grad_(True)
        norm = self.update(self.opt_g, self.scaler_g, loss, self.G, measure)
        if measure:
            self._g_grad_norm = norm
        if self.history is not None:
            self.history["G"].update(self.G)
        if self.G_ema is not None:
            update_ema(self.G_ema, self.G, self.config.train.ema)
        self._acc[7] += loss.detach()  # a NaN/Inf loss makes the window's sum non-finite: checked at the log
        self._window_g += 1

    def update(self, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: Tensor, net: nn.Module,
               measure: bool) -> Tensor | None:
        """Backward, the gradients' mean over ranks, and one optimizer step through fp16's loss scaler (a
        pass-through otherwise). Returns the (unscaled) gradient norm of ``net`` when ``measure``."""
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        distributed.average_gradients(net.parameters(), self.world)
        norm = None
        if measure:
            scaler.unscale_(opt)
            norm = grad_norm(net)
        scaler.step(opt)
        scaler.update()
        return norm

    def d_input(self, x: Tensor) -> Tensor:
        """What D sees of a real or generated batch: DiffAugment, then annealed instance noise, when configured.

        Both go to real and fake alike (and to G's step): augmenting only the real data would teach G to
        generate the augmentations (Zhao et al. 2020).
        """
        if self.augment:
            x = diff_augment(x, self.augment, self.noise)
        train = self.config.train
        if train.instance_noise:
            x = instance_noise(x, annealed_std(train.instance_noise, self.step, train.steps), self.noise)
        return x

    def d_penalty(self, real: Tensor, fake: Tensor, y: Tensor | None) -> Tensor | None:
        """The configured gradient penalty, every ``loss.penalty_every`` D updates and then weighted as many times
        (lazy regularisation, Karras et al. 2020): the same expected push for a fraction of the cost."""
        every = self.config.loss.penalty_every
        if self.penalty == "none" or self._d_updates % every:
            return None
        weight = self.config.loss.gp_weight * every
        # fp16: the inner gradient is taken at the loss scale too (the scaler's factor, kept on the device)
        scaled = {"scale": self.scaler_d.scale(torch.ones((), device=self.device))} if self.scaler_d.is_enabled() else {}
        if self.penalty == "gp":
            return weight * gradient_penalty(self.D, real, fake, y, self.noise, **scaled)
        if self.penalty == "r1":
            return weight / 2 * r1_penalty(self.D, real, y, **scaled)  # gamma/2 E||grad D(x)||^2, Mescheder et al. 2018
        if self.penalty == "r2":
            return weight / 2 * r2_penalty(self.D, fake, y, **scaled)
        return weight * dragan_penalty(self.D, real, y, self.noise, **scaled)

    def set_learning_rates(self) -> None:
        """The learning rates of this step: the configured ones x schedule x any NaN back-off. Derived from the
        step alone, so a resumed run follows the same schedule."""
        train = self.config.train
        factor = lr_factor(train, self.step) * self.lr_scale
        for opt, lr in ((self.opt_g, train.g_lr), (self.opt_d, train.d_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def train_step(self, measure: bool = False) -> None:
        self.set_learning_rates()
        d_steps = self.config.train.d_steps
        with thread_limit(self.threads):
            for i in range(d_steps):
                self._d_updates = self.step * d_steps + i
                self.d_step(measure, keep_fake=self.config.train.reuse_fake and i == d_steps - 1)
            self.g_step(measure)
        self.step += 1

    # ------------------------------------------------------------------------------------- the loop

    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` generator steps (default: the config's), or a stop request. Returns the last record."""
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
        if self._window_g:
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

    def _snapshot(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
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
                "channels_last": self.channels_last, "joint_d_batch": self.joint_d, "threads": self.threads or torch.get_num_threads(),
                "fast_dropout": self.fast_dropout, "compile": train.compile,
                "reuse_fake": train.reuse_fake}

    @property
    def sampling_G(self) -> nn.Module:
        """The generator to draw samples from: the moving average of G when ``train.ema`` is on."""
        return self.G_ema if self.G_ema is not None else self.G

    def request_stop(self, reason: str = "stopped") -> None:
        """End training after the current step; a checkpoint is written."""
        self.stop_reason = reason

    def emit(self, event: str, *args) -> None:
        """Call ``event`` (``on_log``, ``on_eval``, ...) on every callback that has it, in list order."""
        for cb in self.callbacks:
            getattr(cb, event, lambda *a: None)(self, *args)

    def _reset_window(self) -> None:
        self._acc = torch.zeros(len(STATS), device=self.device)
        self._window_d = self._window_g = 0
        self._d_grad_norm = self._g_grad_norm = torch.full((), float("nan"), device=self.device)

    def _log(self) -> None:
        if self.world.distributed:  # the mean over ranks: every rank logs, and judges divergence, alike
            self._acc = distributed.sum_over_ranks(self._acc) / self.world.size
        values = torch.cat([self._acc, self._d_grad_norm.reshape(1), self._g_grad_norm.reshape(1)]
                           ).tolist()  # the one host sync of a log interval
        self._check_finite(not (math.isfinite(values[0]) and math.isfinite(values[7])))
        now = time.perf_counter()
        record: dict[str, Any] = {"step": self.step}
        for i, name in enumerate(STATS):
            record[name] = values[i] / (self._window_g if name == "g_loss" else max(self._window_d, 1))
        if self._window_d:
            record["d_acc_fake"] = 1.0 - record["d_acc_fake"]
        record["d_grad_norm"], record["g_grad_norm"] = values[len(STATS)], values[len(STATS) + 1]
        record["steps_per_s"] = self._window_g / max(now - self._window_start, 1e-9)
        record["samples_per_s"] = record["steps_per_s"] * self.global_batch  # real (and fake) samples per G step
        self.last_record = record
        self._reset_window()
        self._window_start = now
        self.emit("on_log", record)
        self._watch(record)

    def _watch(self, record: dict[str, Any]) -> None:
        """Warn once when D has won: it rejects generated samples confidently for several logged intervals."""
        name = self.config.loss.name
        if name in ("wasserstein", "wgan-gp"):
            return  # a critic's scores have no 'confident' level
        won = (record["d_fake"] < 0.1 and record["d_real"] > 0.9) if name == "least-squares" \
            else record["p_fake"] < 0.05 and record["d_acc_fake"] > 0.99
        self._d_won_logs = self._d_won_logs + 1 if won else 0
        if self._d_won_logs >= D_WON_LOGS:
            self.warn("d-won", f"D has won: it has rejected generated samples with confidence (D(fake) = "
                               f"{record['p_fake']:.3f}) for {D_WON_LOGS} logged intervals up to step {self.step}, so "
                               f"G's gradients are vanishing. Try loss.penalty = \"r1\", model.spectral_norm = true, "
                               f"a lower train.d_lr, train.instance_noise, or the non-saturating loss")

    def _check_finite(self, bad: bool | None = None) -> None:
        """Raise TrainingDiverged if a loss of this window was NaN/Inf (default: look at the losses' sums)."""
        bad = not bool(torch.isfinite(self._acc[[0, 7]]).all()) if bad is None else bad
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

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Everything needed to continue exactly: weights, optimizers, RNG states, batching position."""
        tensors = {**prefixed("G", self.G.state_dict()), **prefixed("D", self.D.state_dict())}
        if self.G_ema is not None:
            tensors.update(prefixed("G_ema", self.G_ema.state_dict()))
        opt_g_tensors, opt_g_meta = split_optimizer_state("opt_g", self.opt_g.state_dict())
        opt_d_tensors, opt_d_meta = split_optimizer_state("opt_d", self.opt_d.state_dict())
        tensors.update(opt_g_tensors)
        tensors.update(opt_d_tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = self.noise.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["data.shift"], tensors["data.scale"] = self.data.shift, self.data.scale
        meta = {
            "format": CHECKPOINT_FORMAT,
            "gankit_version": __version__,
            "step": self.step,
            "model": {**self.model_info, "z_dim": self.z_dim,
                      "num_classes": self.data.num_classes if self.conditional else 0},
            "data": {"name": self.data.name, "class_names": self.data.class_names if self.conditional else [],
                     "class_frequencies": self.label_probs.tolist() if self.conditional else [],
                     "columns": self.data.columns, "normalize": self.data.normalize},
            "opt_g": opt_g_meta,
            "opt_d": opt_d_meta,
            "sampler": self.sampler.state_dict(),
            "lr_scale": self.lr_scale,
        }
        if self.scaler_d.is_enabled():
            meta["scalers"] = {"d": self.scaler_d.state_dict(), "g": self.scaler_g.state_dict()}
        if self.history is not None:
            for name, h in self.history.items():
                tensors.update({f"history.{name}.{i}": m for i, m in enumerate(h.mean)})
            meta["history_count"] = {name: h.count for name, h in self.history.items()}
        return tensors, meta

    def save_checkpoint(self, path: str | Path | None = None, extra: dict[str, Any] | None = None) -> None:
        """Write the state to ``path`` (default: the run's latest checkpoint), with ``extra`` metadata."""
        target = Path(path) if path is not None else self.checkpoint_path
        if target is None:
            return
        self._check_finite()  # never store a diverged state
        # Every rank writes the run's checkpoint on schedule (path None), so only then may it talk to the others; a
        # checkpoint to a given path (the best one, from rank 0's evaluation) is written by rank 0 alone.
        scheduled = path is None
        if self.world.distributed:
            extra = {**(extra or {}), "world_size": self.world.size}
            if scheduled:  # every rank must hold the same weights: checked, then rank 0 writes
                replicas = distributed.digests(self.G, self.D)
                if any(r != replicas[0] for r in replicas):
                    raise GankitError(f"step {self.step}: the {self.world.size} processes' weights differ; stopping "
                                      f"before a checkpoint is written")
                extra["replica_digests_equal"] = True
        if self.world.is_main:
            tensors, meta = self.state()
            save_checkpoint(target, tensors, {**meta, **(extra or {})})
        if scheduled:
            distributed.barrier()  # the others wait until it is on disk (a rollback reads it)
            self.last_checkpoint_step = self.step

    def load_checkpoint(self, path: str | Path) -> None:
        tensors, meta = load_checkpoint(path)
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise GankitError(f"{path}: checkpoint format {meta.get('format')!r}; this gankit reads {CHECKPOINT_FORMAT}")
        self.restore(tensors, meta, source=path)

    def restore(self, tensors: dict[str, Tensor], meta: dict[str, Any], source: str | Path = "snapshot",
                checkpointed: bool = True) -> None:
        """Set every piece of training state from ``state()``'s output; ``checkpointed``: it is the one on disk."""
        try:
            self.G.load_state_dict(unprefixed("G", tensors))
            self.D.load_state_dict(unprefixed("D", tensors))
            if self.G_ema is not None:
                self.G_ema.load_state_dict(unprefixed("G_ema", tensors))
            self.opt_g.load_state_dict(join_optimizer_state("opt_g", tensors, meta["opt_g"]))
            self.opt_d.load_state_dict(join_optimizer_state("opt_d", tensors, meta["opt_d"]))
            match_layouts(self.opt_g)
            match_layouts(self.opt_d)
        except (RuntimeError, ValueError, KeyError) as e:
            lines = [line.strip() for line in str(e).strip().splitlines()]
            # PyTorch's first line only says that loading failed; the next ones say which tensor and why
            why = next((line for line in lines if line.startswith(("size mismatch", "Missing key", "Unexpected key"))),
                       lines[0])
            raise GankitError(f"{source}: checkpoint does not match the configured models ({why[:300]})") from None
        torch.set_rng_state(tensors["rng.torch"])
        self.noise.set_state(tensors["rng.noise"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.sampler.load_state_dict(meta["sampler"])
        self._kept_fake = None
        if self.scaler_d.is_enabled() and "scalers" in meta:
            self.scaler_d.load_state_dict(meta["scalers"]["d"])
            self.scaler_g.load_state_dict(meta["scalers"]["g"])
        self.lr_scale = meta.get("lr_scale", 1.0)
        if self.history is not None:
            for name, h in self.history.items():
                if f"history.{name}.0" in tensors:
                    h.mean = [tensors[f"history.{name}.{i}"].to(self.device) for i in range(len(h.mean))]
                    h.count = meta["history_count"][name]
        self.step = self._checked_step = meta["step"]
        self.last_checkpoint_step = meta["step"] if checkpointed else None
