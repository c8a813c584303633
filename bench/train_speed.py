"""Training speed: gankit's trainer against the loop a user would otherwise write, side by side in one run.

    .venv/bin/python bench/train_speed.py            # ~5 minutes on a 2-core CPU
    .venv/bin/python bench/train_speed.py --quick    # under 2 minutes
    .venv/bin/python bench/train_speed.py --set train.precision=fp32   # gankit with a fast setting off
    python bench/train_speed.py --device cuda        # on a GPU: adds the 64x64 DCGAN (dcgan64)

Two workloads, each trained by (a) a plain eager fp32 PyTorch loop written here the way the
tutorials write it, and (b) ``gankit.Trainer`` with its default settings, on the same modules
(identical initial weights), the same data and the same batch size:

- dcgan: the TensorFlow DCGAN tutorial's networks (28x28x1 Fashion-MNIST; G: dense 7x7x256 and
  transposed convolutions 128/64/1 with batch norm, LeakyReLU and tanh; D: convolutions 64/128 of
  stride 2 with LeakyReLU and dropout 0.3, dense 1), batch 256, Adam 1e-4, BCE with logits.
- mlp: gankit's default MLP GAN (2x128 hidden units each) on ring8, batch 512, the non-saturating loss.
- dcgan64 (with ``--device cuda``, or ``--only dcgan64``): the PyTorch DCGAN tutorial's 64x64 networks
  (pytorch.org/tutorials/beginner/dcgan_faces_tutorial: transposed convolutions 512/256/128/64 with batch
  norm and ReLU, D the mirror with LeakyReLU 0.2), on Fashion-MNIST resized to 64x64, batch 128,
  Adam 2e-4 (0.5, 0.999).

On a GPU both loops run there: the plain loop moves each DataLoader batch to the device, as the
tutorials do; gankit keeps the data set on the device.

After a warm-up, the two loops run in alternating rounds, so drifts of the machine's clock hit both
alike; the figure of each is its median round. It prints samples/s, the gankit/plain ratio, the
achieved GFLOP/s (matrix products and convolutions, forward and backward, counted by
torch.utils.flop_counter) and the machine's fp32 and bf16 peaks (matrix product or convolution)
measured in this run, then one JSON line with every figure (``dcgan_speedup``, ``mlp_speedup``: gankit/plain).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

import gankit
from gankit.api import build_models
from gankit.config import apply_overrides
from gankit.data import load_data
from gankit.speed import autocast_dtype
from gankit.errors import GankitError
from gankit.trainer import Trainer, resolve_device

# --------------------------------------------------------------------------------------------- models


class TutorialGenerator(nn.Module):
    """tensorflow.org/tutorials/generative/dcgan's make_generator_model, in PyTorch."""

    def __init__(self, z_dim: int = 100):
        super().__init__()
        self.z_dim = z_dim
        self.project = nn.Sequential(nn.Linear(z_dim, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256),
                                     nn.LeakyReLU(0.3))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.3),
            nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.3),
            nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1, bias=False), nn.Tanh())

    def forward(self, z, y=None):  # [B, 100] -> [B, 1, 28, 28]
        return self.net(self.project(z).view(-1, 256, 7, 7))


class Tutorial64Generator(nn.Module):
    """The PyTorch DCGAN tutorial's generator (ngf 64), one channel: z [B, 100] -> [B, 1, 64, 64]."""

    def __init__(self, z_dim: int = 100, ngf: int = 64):
        super().__init__()
        self.z_dim = z_dim
        chans = (ngf * 8, ngf * 4, ngf * 2, ngf)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, chans[0], 4, 1, 0, bias=False), nn.BatchNorm2d(chans[0]),
                                   nn.ReLU(True)]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.net = nn.Sequential(*layers, nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z, y=None):
        return self.net(z.view(-1, self.z_dim, 1, 1))


class Tutorial64Discriminator(nn.Module):
    """The PyTorch DCGAN tutorial's discriminator (ndf 64), without the final sigmoid (BCE with logits)."""

    def __init__(self, ndf: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for c_in in (ndf, ndf * 2, ndf * 4):
            layers += [nn.Conv2d(c_in, c_in * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c_in * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.net = nn.Sequential(*layers, nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))

    def forward(self, x, y=None):  # [B, 1, 64, 64] -> [B]
        return self.net(x).flatten()


class TutorialDiscriminator(nn.Module):
    """The tutorial's make_discriminator_model: one logit per image."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1))

    def forward(self, x, y=None):  # [B, 1, 28, 28] -> [B]
        return self.net(x).squeeze(1)


# --------------------------------------------------------------------------------------------- workloads


IMAGE_WORKLOADS = {  # name: (config overrides, G, D)
    "dcgan": (["data.batch_size=256", "train.g_lr=1e-4", "train.d_lr=1e-4", "train.g_betas=[0.9, 0.999]",
               "train.d_betas=[0.9, 0.999]"], TutorialGenerator, TutorialDiscriminator),
    "dcgan64": (["data.batch_size=128", "data.image_size=64", "train.g_lr=2e-4", "train.d_lr=2e-4",
                 "train.g_betas=[0.5, 0.999]", "train.d_betas=[0.5, 0.999]"], Tutorial64Generator,
                Tutorial64Discriminator),
}


def workload(name: str, overrides: list[str]):
    """(config, data, G, D): G and D with the seed's initial weights; call it again for an identical pair."""
    if name in IMAGE_WORKLOADS:
        settings, make_g, make_d = IMAGE_WORKLOADS[name]
        config = gankit.load_config(None, ["data.name=fashion-mnist", "model.family=dcgan", "model.z_dim=100",
                                           "loss.name=nonsaturating", "model.conditional=false", *settings,
                                           *overrides])
        data = load_data(config.data, config.seed)
        torch.manual_seed(config.seed)
        return config, data, make_g(config.model.z_dim), make_d()
    config = gankit.load_config(None, ["data.name=ring8", "data.batch_size=512", "loss.name=nonsaturating",
                                       *overrides])
    data = load_data(config.data, config.seed)
    G, D, _ = build_models(config, data)
    return config, data, G, D


class PlainLoop:
    """The loop of the PyTorch DCGAN tutorial: a shuffling DataLoader, one fake batch per step used for D's
    update (detached) and G's, BCE with logits, plain Adam, the losses read every step for the log."""

    def __init__(self, config, data, G, D):
        self.device = resolve_device(config.train.device)
        self.G, self.D, self.z_dim = G.to(self.device), D.to(self.device), config.model.z_dim
        self.loader = DataLoader(TensorDataset(data.x), batch_size=config.data.batch_size, shuffle=True,
                                 drop_last=True)
        self.batches = iter(self.loader)
        t = config.train
        self.opt_g = torch.optim.Adam(G.parameters(), lr=t.g_lr, betas=t.g_betas)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=t.d_lr, betas=t.d_betas)
        self.bce = nn.BCEWithLogitsLoss()
        self.losses: list[tuple[float, float]] = []

    def next_batch(self):
        try:
            return next(self.batches)[0].to(self.device)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)[0].to(self.device)

    def step(self) -> None:
        real = self.next_batch()
        b = real.shape[0]
        ones, zeros = torch.ones(b, device=self.device), torch.zeros(b, device=self.device)
        fake = self.G(torch.randn(b, self.z_dim, device=self.device))
        self.opt_d.zero_grad()
        d_loss = self.bce(self.D(real), ones) + self.bce(self.D(fake.detach()), zeros)
        d_loss.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        g_loss = self.bce(self.D(fake), ones)
        g_loss.backward()
        self.opt_g.step()
        self.losses.append((d_loss.item(), g_loss.item()))


class GankitLoop:
    """gankit's Trainer, stepped as ``fit`` steps it (without checkpoints: no run folder)."""

    def __init__(self, config, data, G, D):
        config = apply_overrides(config, ["train.steps=1000000000", "train.checkpoint_every=1000000000"])
        self.trainer = Trainer(config, data, G, D)
        self.trainer._window_start = time.perf_counter()  # as fit() sets it
        self.log_every = config.train.log_every

    def step(self) -> None:
        t = self.trainer
        measure = (t.step + 1) % self.log_every == 0
        t.train_step(measure)
        if measure:
            t._log()

    def sync(self) -> None:
        self.trainer.stats.sync()


# --------------------------------------------------------------------------------------------- measuring


def step_flops(name: str, overrides: list[str]) -> int:
    """Floating-point operations of one plain-loop step (one D and one G update), forward and backward."""
    loop = PlainLoop(*workload(name, overrides))
    with FlopCounterMode(display=False) as counter:
        loop.step()
    return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured_peak(dtype: torch.dtype, device: torch.device, seconds: float = 1.0) -> float:
    """GFLOP/s of the faster of an n^3 matrix product (n = 2048 on a CPU, 8192 on a GPU) and a 3x3 convolution
    (256x128x14x14 -> 128 channels) repeated in ``dtype``: the machine's practical peak through PyTorch's
    kernels (MKL and oneDNN; cuBLAS and cuDNN)."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    x = torch.randn(256, 128, 14, 14, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
    w = torch.randn(128, 128, 3, 3, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
    work = [(lambda: torch.mm(a, b), 2 * n ** 3),
            (lambda: torch.nn.functional.conv2d(x, w, padding=1), 2 * 256 * 128 * 14 * 14 * 128 * 9)]
    best = 0.0
    for fn, flops in work:
        for _ in range(3):
            fn()
        synchronize(device)
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            for _ in range(10 if device.type == "cuda" else 1):  # a GPU queues work: time batches of it
                fn()
                count += 1
            synchronize(device)
        best = max(best, flops * count / (time.perf_counter() - t0) / 1e9)
    return best


def timed_rounds(loops: dict, steps: int, rounds: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per step of each loop, in ``rounds`` alternating rounds of ``steps`` steps after ``warmup``."""
    for loop in loops.values():
        for _ in range(warmup):
            loop.step()
        getattr(loop, "sync", lambda: None)()
        synchronize(device)
    times: dict[str, list[float]] = {k: [] for k in loops}
    for r in range(rounds):
        order = list(loops) if r % 2 == 0 else list(reversed(loops))
        for key in order:
            loop = loops[key]
            t0 = time.perf_counter()
            for _ in range(steps):
                loop.step()
            getattr(loop, "sync", lambda: None)()
            synchronize(device)
            times[key].append((time.perf_counter() - t0) / steps)
    return times


def measure(name: str, overrides: list[str], steps: int, rounds: int, warmup: int) -> dict:
    config, data, G, D = workload(name, overrides)
    plain = PlainLoop(config, data, G, D)
    config2, data2, G2, D2 = workload(name, overrides)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    fast = GankitLoop(config2, data2, G2, D2)
    times = timed_rounds({"plain": plain, "gankit": fast}, steps, rounds, warmup, plain.device)
    batch = config.data.batch_size
    flops = step_flops(name, overrides)
    out = {"batch": batch, "gflop_per_step": round(flops / 1e9, 3)}
    for key, ts in times.items():
        per_step = statistics.median(ts)
        out[f"{key}_samples_per_s"] = round(batch / per_step, 1)
        out[f"{key}_gflops"] = round(flops / per_step / 1e9, 1)
    out["speedup"] = round(out["gankit_samples_per_s"] / out["plain_samples_per_s"], 3)
    out["gankit_settings"] = fast.trainer.fast_settings
    return out


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (figures differ a lot between CPUs of the same core count)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (under 2 minutes)")
    parser.add_argument("--only", choices=("dcgan", "mlp", "dcgan64"), help="one workload")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where both loops train")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for gankit's side (both sides share the model and batch)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: PyTorch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except GankitError as e:
        parser.error(str(e))
    gpu = device.type == "cuda"
    where = (f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}" if gpu else
             f"{cpu_model()}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
             f"{', AMX' if getattr(torch.cpu, '_is_amx_tile_supported', lambda: False)() else ''}")
    print(f"gankit {gankit.__version__}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{os.cpu_count()} CPUs, {platform.machine()}, {where}")
    peaks = {"fp32": measured_peak(torch.float32, device)}
    fast = autocast_dtype("auto", device)
    if fast is not None:
        peaks[str(fast).removeprefix("torch.").replace("bfloat16", "bf16").replace("float16", "fp16")] = \
            measured_peak(fast, device)
    side = 8192 if gpu else 2048
    print(f"peak (the faster of a {side}^3 matrix product and a 3x3 convolution): "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    # (steps per round, rounds, warm-up steps); a GPU steps much faster, so it takes more of them per round
    plan = {"dcgan": (10, 3, 5) if args.quick else (20, 6, 10), "mlp": (200, 3, 100) if args.quick else (500, 6, 300)}
    if gpu:
        plan = {"dcgan": (100, 3, 30) if args.quick else (200, 6, 50), "mlp": plan["mlp"],
                "dcgan64": (50, 3, 20) if args.quick else (100, 6, 30)}
    elif args.only == "dcgan64":
        plan["dcgan64"] = (3, 3, 2) if args.quick else (5, 6, 3)
    overrides = [f"train.device={args.device}", *args.overrides]
    results = {}
    for name, (steps, rounds, warmup) in plan.items():
        if args.only and name != args.only:
            continue
        r = measure(name, overrides, steps, rounds, warmup)
        results[name] = r
        print(f"{name}: batch {r['batch']}, {r['gflop_per_step']} GFLOP/step; plain {r['plain_samples_per_s']:.0f}/s "
              f"({r['plain_gflops']:.0f} GFLOP/s), gankit {r['gankit_samples_per_s']:.0f}/s "
              f"({r['gankit_gflops']:.0f} GFLOP/s): x{r['speedup']:.2f}  [{r['gankit_settings']}]", flush=True)
    summary = {"device": where, "threads": torch.get_num_threads(), "quick": args.quick, "overrides": args.overrides,
               "peak_gflops": {k: round(v, 1) for k, v in peaks.items()}, **results}
    for name in results:
        summary[f"{name}_speedup"] = results[name]["speedup"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
