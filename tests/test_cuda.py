"""The CUDA path: mixed precision (bf16, and fp16 with loss scaling), channels_last, fused Adam, resumption,
and NCCL with two or more GPUs. Skipped where PyTorch sees no GPU (CI); scripts/device_check.sh runs them on
a GPU machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint, read_meta

from conftest import StopAt, tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
FASHION = Path(os.environ.get("GANKIT_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))


def cuda_config(*overrides: str):
    return tiny_config("train.device=cuda", *overrides)


def latest(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")[0]


def test_mlp_trains_on_the_gpu_and_its_checkpoint_loads_on_the_cpu(tmp_path):
    result = gankit.train(cuda_config(), run_dir=tmp_path / "run", progress=False)
    t = result.trainer
    assert t.device.type == "cuda" and next(t.G.parameters()).is_cuda
    settings = t.fast_settings
    assert settings["precision"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    assert settings["fused_optimizer"] and t.opt_d.defaults.get("fused")
    assert result.step == 20 and all(map(torch.isfinite, (torch.tensor(result.record["d_loss"]),
                                                         torch.tensor(result.record["g_loss"]))))
    assert result.record["samples_per_s"] > 0
    G, meta, shift, scale = gankit.api.load_generator(tmp_path / "run")  # safetensors on the host
    assert all(p.device.type == "cpu" for p in G.parameters())
    x = G(torch.randn(256, meta["model"]["z_dim"]))
    assert torch.isfinite(x).all() and x.shape == (256, 2)


def test_same_seed_gives_the_same_weights_on_the_gpu(tmp_path):
    for name in ("a", "b"):
        gankit.train(cuda_config("train.precision=fp32"), run_dir=tmp_path / name, progress=False)
    a, b = latest(tmp_path / "a"), latest(tmp_path / "b")
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_interrupted_and_resumed_gpu_run_matches_uninterrupted(tmp_path, precision):
    """fp16 adds the loss scalers to the checkpoint; they must come back for the run to continue alike."""
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    config = cuda_config(f"train.precision={precision}", "train.checkpoint_every=7")
    gankit.train(config, run_dir=tmp_path / "full", progress=False)
    part = gankit.train(config, run_dir=tmp_path / "part", progress=False, callbacks=[StopAt(12)])
    assert part.step == 12
    if precision == "fp16":
        assert part.trainer.scaler_d.is_enabled()
        assert "scalers" in read_meta(tmp_path / "part" / "checkpoints" / "latest.safetensors")
    gankit.train(run_dir=tmp_path / "part", resume=True, progress=False)
    full, resumed = latest(tmp_path / "full"), latest(tmp_path / "part")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_wgan_gp_double_backward_runs_under_autocast_on_the_gpu(tmp_path, precision):
    """fp16 takes the penalty's inner gradient at the loss scale; the first scale (2^16) overflows it, a step the
    scaler skips: the run must go on, with finite losses logged."""
    result = gankit.train(cuda_config("loss.name=wgan-gp", "train.d_steps=2", f"train.precision={precision}"),
                          run_dir=tmp_path / "run", progress=False)
    assert result.step == 20 and torch.isfinite(torch.tensor(result.record["d_loss"]))
    if precision == "fp16":
        assert result.trainer.scaler_d.get_scale() < 2.0 ** 16


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(), reason="Fashion-MNIST files not found")
def test_conditional_dcgan_with_channels_last_learns_on_the_gpu(tmp_path):
    """150 steps of the demo's conditional DCGAN: D's accuracy on real images rises above chance, and G's
    samples stay finite and in range, in NHWC with bf16/fp16 autocast."""
    result = gankit.train("fashion-mnist", run_dir=tmp_path / "run", progress=False, overrides=[
        "train.device=cuda", f"data.path={FASHION}", "train.steps=150", "train.log_every=50", "eval.every=0",
        "train.checkpoint_every=1000", "train.plot_every=1000"])
    t = result.trainer
    conv = next(m for m in t.D.modules() if isinstance(m, torch.nn.Conv2d))
    assert t.channels_last and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert result.record["d_acc_real"] > 0.5
    with torch.no_grad():
        x = t.sampling_G(torch.randn(64, t.z_dim, device=t.device), torch.arange(64, device=t.device) % 10)
    assert torch.isfinite(x).all() and x.abs().max() <= 1.0


def torchrun(nproc: int, config: Path, run_dir: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "gankit", "train", str(config), "--run-dir", run_dir,
                           "--nproc", str(nproc), "--quiet", *extra], capture_output=True, text=True,
                          cwd=config.parent, env=env, timeout=600)


MULTI = """
[data]
name = "digits"
batch_size = 64
image_size = 16
[model]
family = "dcgan"
g_hidden = 16
d_hidden = 16
[train]
device = "cuda"
steps = 12
log_every = 4
checkpoint_every = 6
precision = "fp32"
[eval]
every = 0
"""


@pytest.mark.skipif(GPUS < 2, reason="NCCL across GPUs needs two of them")
@pytest.mark.parametrize("sync", [False, True])
def test_two_gpus_train_one_model_over_nccl(tmp_path, sync):
    """Two ranks on two GPUs (NCCL), batch norm local or synchronised: one run folder, and identical replicas,
    which the trainer checks at every checkpoint (it stops on a mismatch)."""
    (tmp_path / "multi.toml").write_text(MULTI)
    done = torchrun(2, tmp_path / "multi.toml", "runs/two", "--set", f"train.sync_batchnorm={str(sync).lower()}")
    assert done.returncode == 0, done.stderr[-3000:]
    meta = read_meta(tmp_path / "runs" / "two" / "checkpoints" / "latest.safetensors")
    assert meta["step"] == 12 and meta["world_size"] == 2 and meta["replica_digests_equal"]
