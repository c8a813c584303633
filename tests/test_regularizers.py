"""Regularizers against closed forms: D's whose input gradients are known exactly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gankit.regularizers import (clip_weights, dragan_penalty, gradient_penalty, input_gradients, r1_penalty,
                                 r2_penalty)


def f64(*shape, generator=None, scale=1.0):
    return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale


class Linear(nn.Module):
    """D(x) = x @ w: its input gradient is w for every sample."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x, y=None):
        return x @ self.w


class Pack2(Linear):
    """A PacGAN D judging packs of 2: [B, F] -> [B/2, 2F] -> [B/2]. Sample 2k sees w[:F], sample 2k+1 w[F:]."""

    def forward(self, x, y=None):
        return x.reshape(x.shape[0] // 2, -1) @ self.w


def quadratic(x, y=None):
    """D(x) = ||x||^2 / 2 per sample: its input gradient is x itself."""
    return 0.5 * x.flatten(1).square().sum(1)


def all_penalties(D, real, fake, generator=None):
    """name -> penalty, for the tests that hold for every one of them."""
    return {"gp": gradient_penalty(D, real, fake, generator=generator), "r1": r1_penalty(D, real),
            "r2": r2_penalty(D, fake), "dragan": dragan_penalty(D, real, generator=generator)}


def linear_closed_form(w):
    """A linear D's penalties: R1 = R2 = ||w||^2, GP = DRAGAN = (||w|| - 1)^2, wherever they are evaluated."""
    norm = math.hypot(*w)
    return {"gp": (norm - 1) ** 2, "r1": norm ** 2, "r2": norm ** 2, "dragan": (norm - 1) ** 2}


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2]])
@pytest.mark.parametrize("seed", [0, 1])
def test_penalties_of_a_linear_critic_are_closed_form(w, seed):
    g = torch.Generator().manual_seed(seed)
    real, fake = f64(16, 2, generator=g), f64(16, 2, generator=g, scale=5)
    expected = linear_closed_form(w)
    for name, penalty in all_penalties(Linear(w), real, fake, generator=g).items():
        assert penalty.item() == pytest.approx(expected[name], rel=1e-12, abs=1e-12), name


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.1, -0.2]])
def test_penalties_backpropagate_into_ds_weights(w):
    # d/dw ||w||^2 = 2w; d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    norm = math.hypot(*w)
    expected = {"r1": [2 * wi for wi in w], "gp": [2 * (norm - 1) * wi / norm for wi in w]}
    expected["r2"], expected["dragan"] = expected["r1"], expected["gp"]
    g = torch.Generator().manual_seed(0)
    real, fake = f64(8, 2, generator=g), f64(8, 2, generator=g)
    for name in expected:
        D = Linear(w)
        all_penalties(D, real, fake)[name].backward()
        assert D.w.grad.tolist() == pytest.approx(expected[name], rel=1e-12), name
        assert (D.w.grad != 0).all()


def test_penalties_are_detached_from_gs_graph():
    theta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)  # stands for G's weights
    g = torch.Generator().manual_seed(0)
    real, fake = f64(8, 2, generator=g) * theta, f64(8, 2, generator=g) * theta
    D = Linear([3.0, 4.0])
    for name, penalty in all_penalties(D, real, fake).items():
        penalty.backward()
        assert theta.grad is None, name


def test_r1_and_r2_of_a_quadratic_critic_are_the_mean_squared_norm():
    g = torch.Generator().manual_seed(0)
    real, fake = f64(10, 3, generator=g), f64(10, 3, generator=g, scale=3)
    for penalty, x in ((r1_penalty, real), (r2_penalty, fake)):
        expected = sum(sum(v * v for v in row) for row in x.tolist()) / len(x)
        assert penalty(quadratic, x).item() == pytest.approx(expected, rel=1e-12)


def test_gradient_penalty_of_a_quadratic_critic_with_a_seeded_generator():
    # grad D(x_hat) = x_hat = eps x + (1 - eps) x_f, with the eps an identically seeded generator draws.
    g = torch.Generator().manual_seed(0)
    real, fake = f64(6, 3, generator=g), f64(6, 3, generator=g, scale=2)
    penalty = gradient_penalty(quadratic, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand(6, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)[:, 0].tolist()
    norms = [math.sqrt(sum((e * a + (1 - e) * b) ** 2 for a, b in zip(r, f)))
             for e, r, f in zip(eps, real.tolist(), fake.tolist())]
    assert penalty.item() == pytest.approx(sum((n - 1) ** 2 for n in norms) / 6, rel=1e-12)


def test_dragan_penalty_of_a_quadratic_critic_with_a_seeded_generator():
    # x_p = x + c std(x) u (u elementwise, drawn first), x_hat = alpha x + (1 - alpha) x_p (alpha per sample).
    real, c = f64(6, 3, generator=torch.Generator().manual_seed(0)), 0.5
    penalty = dragan_penalty(quadratic, real, generator=torch.Generator().manual_seed(7), c=c)
    g = torch.Generator().manual_seed(7)
    u = torch.rand(6, 3, generator=g, dtype=torch.float64).tolist()
    alpha = torch.rand(6, 1, generator=g, dtype=torch.float64)[:, 0].tolist()
    values = [v for row in real.tolist() for v in row]
    m = sum(values) / len(values)
    std = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))  # over the whole batch
    norms = [math.sqrt(sum((x + (1 - a) * c * std * ui) ** 2 for x, ui in zip(row, urow)))
             for a, row, urow in zip(alpha, real.tolist(), u)]
    assert penalty.item() == pytest.approx(sum((n - 1) ** 2 for n in norms) / 6, rel=1e-12)
    # With no perturbation x_hat = x whatever is drawn: E[(||x|| - 1)^2].
    plain = [(math.sqrt(sum(x * x for x in row)) - 1) ** 2 for row in real.tolist()]
    assert dragan_penalty(quadratic, real, c=0.0).item() == pytest.approx(sum(plain) / 6, rel=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (5, 1, 4, 4)])
def test_gradient_penalty_interpolates_with_one_weight_per_sample(shape):
    # real = 1, fake = 0: x_hat = eps, so each sample's row is its eps, constant within the sample.
    seen = []
    D = lambda x, y: seen.append(x.detach().flatten(1)) or x.flatten(1).sum(1)  # noqa: E731
    gradient_penalty(D, torch.ones(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64),
                     generator=torch.Generator().manual_seed(0))
    (x_hat,) = seen
    eps = x_hat[:, 0]
    assert torch.equal(x_hat, eps[:, None].expand_as(x_hat))  # one eps per sample, not per element
    assert len(set(eps.tolist())) == shape[0]  # and not one shared by the batch


def test_penalties_on_image_shaped_input():
    # D(x) = sum(x * W) on [B, 1, 4, 4]: the per-sample input gradient is W, ||W|| = sqrt(16 * 0.2^2) = 0.8.
    W = torch.full((1, 4, 4), 0.2, dtype=torch.float64)
    D = lambda x, y=None: (x * W).flatten(1).sum(1)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    real, fake = f64(4, 1, 4, 4, generator=g), f64(4, 1, 4, 4, generator=g)
    expected = {"gp": 0.04, "r1": 0.64, "r2": 0.64, "dragan": 0.04}  # (0.8 - 1)^2 and 0.8^2
    for name, penalty in all_penalties(D, real, fake, generator=g).items():
        assert penalty.item() == pytest.approx(expected[name], rel=1e-12), name
    images = f64(4, 1, 4, 4, generator=g)
    assert r1_penalty(quadratic, images).item() == pytest.approx(images.square().sum().item() / 4, rel=1e-12)


def test_penalties_average_per_sample_norms_when_d_judges_packs():
    # Pack of 2 with w = (w1, w2), w1 = (3, 4), w2 = (0.6, 0.8): half the samples see ||w1|| = 5, half ||w2|| = 1.
    D = Pack2([3.0, 4.0, 0.6, 0.8])
    g = torch.Generator().manual_seed(0)
    real, fake = f64(8, 2, generator=g), f64(8, 2, generator=g)
    gp, r1 = ((5 - 1) ** 2 + (1 - 1) ** 2) / 2, (5 ** 2 + 1 ** 2) / 2
    expected = {"gp": gp, "r1": r1, "r2": r1, "dragan": gp}
    for name, penalty in all_penalties(D, real, fake, generator=g).items():
        assert penalty.item() == pytest.approx(expected[name], rel=1e-12, abs=1e-12), name


def test_clip_weights_clamps_every_parameter_and_keeps_the_rest():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    before = [p.detach().clone() for p in net.parameters()]
    clip_weights(net, 0.1)
    for old, new in zip(before, net.parameters()):
        assert torch.equal(new, old.clamp(-0.1, 0.1))
        assert new.abs().max() <= 0.1
    assert any((old.abs() > 0.1).any() for old in before)  # the clip did something
    assert any(((old.abs() < 0.1) & (old != 0)).any() for old in before)  # and left small weights alone


def test_loss_scale_keeps_fp16_input_gradients_from_flushing_to_zero():
    """D's input gradients here are 8e-9, below fp16's smallest number (6e-8): unscaled they come back as zeros
    (a penalty of nothing); taken at the loss scale and divided after, they match the fp32 computation."""

    class TwoLayers(nn.Module):  # run in fp16, as autocast runs D's layers on a GPU
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 8, bias=False), nn.Linear(8, 1, bias=False)
            nn.init.constant_(self.a.weight, 1e-4)
            nn.init.constant_(self.b.weight, 1e-5)

        def forward(self, x, y=None):
            return self.b(self.a(x.to(self.a.weight.dtype))).float().squeeze(1)

    D16 = TwoLayers().half()
    D32 = TwoLayers().half().float()  # the same (fp16-rounded) weights, computed in fp32
    x, scale = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor(32768.0)
    exact = input_gradients(D32, x)  # every entry 8 x 1e-4 x 1e-5
    assert exact.abs().min().item() == pytest.approx(8e-9, rel=2e-3)
    assert input_gradients(D16, x).abs().max().item() == 0.0  # flushed to zero
    assert torch.allclose(input_gradients(D16, x, scale=scale), exact, rtol=2e-3, atol=0)
    assert r1_penalty(D16, x).item() == 0.0
    assert r1_penalty(D16, x, scale=scale).item() == pytest.approx(r1_penalty(D32, x).item(), rel=4e-3)
    # GradScaler's first scale, 2^16, is past fp16's largest number: inf, a step the scaler skips (then halves)
    assert torch.isinf(input_gradients(D16, x, scale=torch.tensor(65536.0))).all()
