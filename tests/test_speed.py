"""The fast settings: each must change how fast a step runs, never what it computes (beyond rounding)."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.speed import autocast_dtype, cpu_has_fast_bf16, optimizer_options
from gankit.trainer import Trainer

from conftest import tiny_config

CPU = torch.device("cpu")


def make_trainer(*overrides: str) -> Trainer:
    config = tiny_config(*overrides)
    data = gankit.load_data(config.data, config.seed)
    G, D, info = gankit.build_models(config, data)
    return Trainer(config, data, G, D, model_info=info)


def image_trainer(*overrides: str) -> Trainer:
    return make_trainer("data.name=digits", "model.family=dcgan", "model.conditional=false", "data.image_size=16", "model.g_hidden=8",
                        "model.d_hidden=8", "data.batch_size=16", *overrides)


def weights(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for m in (trainer.G, trainer.D) for p in m.parameters()])


def test_precision_is_resolved_per_device():
    assert autocast_dtype("fp32", CPU) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16
    assert autocast_dtype("auto", CPU) is (torch.bfloat16 if cpu_has_fast_bf16() else None)
    with pytest.raises(GankitError, match="fp16"):
        autocast_dtype("fp16", CPU)


def test_optimizer_kernels():
    assert optimizer_options("adam", CPU, True) == {"fused": True}
    assert optimizer_options("rmsprop", CPU, True) == {"foreach": True}  # RMSprop has no fused kernel
    assert optimizer_options("adam", CPU, False) == {"foreach": False}
    trainer = make_trainer("train.precision=fp32")
    assert trainer.opt_g.defaults["fused"] and trainer.opt_d.defaults["fused"]


def test_fused_optimizer_computes_what_the_plain_one_does():
    fused, plain = (make_trainer("train.precision=fp32", f"train.fused_optimizer={flag}") for flag in ("true", "false"))
    assert torch.equal(weights(fused), weights(plain))
    for _ in range(10):
        fused.train_step()
        plain.train_step()
    assert torch.allclose(weights(fused), weights(plain), rtol=1e-4, atol=1e-6)
    assert not torch.equal(weights(fused), weights(make_trainer()))  # it did train


def count_calls(module: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_hook(lambda m, args, out: calls.append(len(out)))
    return calls


@pytest.mark.parametrize("d_steps", [1, 3])
def test_reused_fake_batch_saves_one_pass_of_G_per_step(d_steps):
    for reuse, expected in (("true", d_steps), ("false", d_steps + 1)):
        trainer = make_trainer(f"train.d_steps={d_steps}", f"train.reuse_fake={reuse}")
        calls = count_calls(trainer.G)
        for _ in range(4):
            trainer.train_step()
        assert len(calls) == 4 * expected


def test_reused_fake_batch_gives_G_the_gradient_of_that_batch():
    """G's update from the kept batch equals the update computed by hand from the same z."""
    trainer = make_trainer("train.precision=fp32", "train.fused_optimizer=false", "train.d_steps=1",
                           "train.reuse_fake=true")
    inputs = []
    trainer.G.register_forward_hook(lambda m, args, out: inputs.append(args[0].clone()))
    d_phase, g_phase = trainer.game.phases
    trainer.run_phase(d_phase)  # the last D update keeps its fake batch (train.reuse_fake)
    z = inputs[-1]
    for p in trainer.D.parameters():
        p.requires_grad_(False)
    loss = trainer.game.loss.g(trainer.D(trainer.G(z)), None)
    expected = torch.autograd.grad(loss, list(trainer.G.parameters()))
    for p in trainer.D.parameters():
        p.requires_grad_(True)
    trainer.run_phase(g_phase)
    assert len(inputs) == 2  # the pass by hand only: G's phase ran no forward pass of G
    for p, g in zip(trainer.G.parameters(), expected):
        assert torch.allclose(p.grad, g, rtol=1e-5, atol=1e-8)


def test_bf16_keeps_fp32_weights_and_close_losses():
    fast, exact = make_trainer("train.precision=bf16"), make_trainer("train.precision=fp32")
    fast.train_step()
    exact.train_step()
    assert all(p.dtype == torch.float32 for p in fast.G.parameters())
    d_fast, d_exact = (t.stats.read(t.world)[0]["d_loss"] for t in (fast, exact))
    assert d_fast == pytest.approx(d_exact, rel=0.02)
    assert torch.allclose(weights(fast), weights(exact), atol=3e-3)  # one Adam step of lr 2e-4, rounding aside


def test_channels_last_for_convolutions_only():
    images = image_trainer("train.precision=fp32")
    assert images.channels_last and images.fast_settings["channels_last"]
    assert images.batches.fields["x"].is_contiguous(memory_format=torch.channels_last)
    conv = next(m for m in images.D.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not make_trainer().channels_last  # rows and MLPs: nothing to do


def test_channels_last_computes_what_nchw_does():
    """Same weights, same batch: the same logits and gradients, in either memory layout."""
    nhwc, nchw = (image_trainer("train.precision=fp32", f"train.channels_last={flag}") for flag in ("true", "false"))
    grads = []
    for trainer in (nhwc, nchw):
        z = torch.randn(16, trainer.z_dim, generator=torch.Generator().manual_seed(0))
        logits = trainer.D(trainer.G(z)) + trainer.D(trainer.batches.fields["x"][:16])
        logits.square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for m in (trainer.G, trainer.D) for p in m.parameters()]))
        grads.append(logits.detach())
    assert torch.allclose(grads[1], grads[3], rtol=1e-4, atol=1e-5)
    assert (grads[0] - grads[2]).abs().max() <= 1e-5 * grads[2].abs().max()  # summation order differs


def test_throughput_is_logged(tmp_path):
    config = tiny_config("train.log_every=5")
    result = gankit.train(config, run_dir=tmp_path / "run", progress=False)
    record = result.record
    assert record["samples_per_s"] == pytest.approx(record["steps_per_s"] * 64)


def test_compile_refuses_double_backward():
    with pytest.raises(GankitError, match="double backward"):
        make_trainer("train.compile=true", "loss.penalty=r1")


def test_fp16_loss_scaling_is_checkpointed(monkeypatch, tmp_path):
    """fp16 (CUDA's fast path) trains through loss scalers whose state survives a resume; exercised here on the
    CPU, where autocast also runs fp16."""
    monkeypatch.setattr("gankit.engine.loop.autocast_dtype", lambda precision, device: torch.float16)
    trainer = make_trainer("train.log_every=2")
    assert trainer.scaler_d.is_enabled() and trainer.scaler_g.is_enabled()
    for _ in range(4):
        trainer.train_step(measure=True)
    assert torch.isfinite(trainer.stats.last["d_grad_norm"]) and torch.isfinite(trainer.stats.last["g_grad_norm"])
    trainer.scaler_d.update(1234.0)
    trainer.save_checkpoint(tmp_path / "c.safetensors")
    again = make_trainer()
    again.load_checkpoint(tmp_path / "c.safetensors")
    assert again.scaler_d.get_scale() == 1234.0
    assert again.scaler_g.get_scale() == trainer.scaler_g.get_scale()


def test_resumed_optimizer_state_is_laid_out_as_its_weights(tmp_path):
    """A checkpoint stores NCHW tensors; the fused Adam kernel pairs state and weights by memory position, so the
    loaded moments must be NHWC again when the weights are (else a resumed run trains on scrambled moments)."""
    trainer = image_trainer()
    for _ in range(2):
        trainer.train_step()
    trainer.save_checkpoint(tmp_path / "c.safetensors")
    again = image_trainer()
    again.load_checkpoint(tmp_path / "c.safetensors")
    for opt in (again.opt_g, again.opt_d):
        for p in opt.param_groups[0]["params"]:
            assert opt.state[p]["exp_avg"].stride() == p.stride()
            assert opt.state[p]["exp_avg_sq"].stride() == p.stride()


def test_small_mlps_step_on_one_thread_and_restore_the_count():
    trainer = make_trainer()
    assert trainer.threads == 1 and trainer.fast_settings["threads"] == 1
    assert image_trainer().threads is None  # convolutions: PyTorch's own setting
    assert make_trainer("train.threads=3").threads == 3
    seen = []
    trainer.D.register_forward_hook(lambda m, args, out: seen.append(torch.get_num_threads()))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        trainer.train_step()
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_window_statistics_match_their_definitions():
    """One D step's logged figures from its logits, computed here the long way."""
    trainer = make_trainer("train.precision=fp32", "loss.name=nonsaturating")
    captured = []
    trainer.D.register_forward_hook(lambda m, args, out: captured.append(out.detach()))
    trainer._window_start = 0.0
    trainer.run_phase(trainer.game.phases[0])
    real, fake = captured[-1].chunk(2) if trainer.game.joint_d else captured[-2:]
    trainer._window_steps = 1
    trainer._log()
    record = trainer.last_record
    assert record["d_real"] == pytest.approx(real.mean().item(), rel=1e-5)
    assert record["d_fake"] == pytest.approx(fake.mean().item(), rel=1e-5)
    assert record["p_real"] == pytest.approx(torch.sigmoid(real).mean().item(), rel=1e-5)
    assert record["d_acc_real"] == pytest.approx((real > 0).float().mean().item())
    assert record["d_acc_fake"] == pytest.approx((fake < 0).float().mean().item())
    assert record["p_fake"] == pytest.approx(torch.sigmoid(fake).mean().item(), rel=1e-5)
