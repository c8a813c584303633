"""Losses and regularizers against closed forms computed by hand with plain ``math``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.losses import get_loss
from gankit.regularizers import clip_weights, gradient_penalty

REAL = [2.0, -1.0, 0.5]
FAKE = [-3.0, 0.0, 1.5]


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def logistic_d(real, fake, s=0.0):
    """Cross-entropy with target 1 - s for real samples, 0 for fakes."""
    t = 1.0 - s
    real_term = mean(-t * math.log(sigmoid(r)) - (1 - t) * math.log(1 - sigmoid(r)) for r in real)
    return real_term + mean(-math.log(1 - sigmoid(f)) for f in fake)


EXPECTED = {  # name -> (D's loss, G's loss) on REAL, FAKE
    "minimax": (logistic_d(REAL, FAKE), mean(math.log(1 - sigmoid(f)) for f in FAKE)),
    "nonsaturating": (logistic_d(REAL, FAKE), mean(-math.log(sigmoid(f)) for f in FAKE)),
    "wasserstein": (mean(FAKE) - mean(REAL), -mean(FAKE)),
    "wgan-gp": (mean(FAKE) - mean(REAL), -mean(FAKE)),
    "least-squares": (0.5 * mean((r - 1) ** 2 for r in REAL) + 0.5 * mean(f ** 2 for f in FAKE),
                      0.5 * mean((f - 1) ** 2 for f in FAKE)),
    "hinge": (mean(max(0.0, 1 - r) for r in REAL) + mean(max(0.0, 1 + f) for f in FAKE), -mean(FAKE)),
}


def tensor(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_pair_matches_closed_form(name):
    loss = get_loss(name)
    d_expected, g_expected = EXPECTED[name]
    assert loss.name == name
    assert loss.d(tensor(REAL), tensor(FAKE)).item() == pytest.approx(d_expected, rel=1e-12, abs=1e-12)
    assert loss.g(tensor(FAKE)).item() == pytest.approx(g_expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ["minimax", "nonsaturating"])
@pytest.mark.parametrize("s", [0.1, 0.25])
def test_one_sided_label_smoothing_moves_only_the_real_target(name, s):
    loss = get_loss(name, label_smoothing=s)
    got = loss.d(tensor(REAL), tensor(FAKE)).item()
    assert got == pytest.approx(logistic_d(REAL, FAKE, s), rel=1e-12)
    assert got != pytest.approx(logistic_d(REAL, FAKE, 0.0), rel=1e-6)
    # G's loss ignores smoothing.
    assert loss.g(tensor(FAKE)).item() == pytest.approx(EXPECTED[name][1], rel=1e-12)


def test_nonsaturating_fixes_the_vanishing_gradient_of_minimax():
    # D confidently rejects the fake: D(G(z)) = sigmoid(-10) ~ 4.5e-5.
    grads = {}
    for name in ("minimax", "nonsaturating"):
        fake = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
        get_loss(name).g(fake).backward()
        grads[name] = fake.grad.item()
    # d/df log(1 - sigmoid(f)) = -sigmoid(f); d/df -log(sigmoid(f)) = -sigmoid(-f) = -(1 - sigmoid(f)).
    assert grads["minimax"] == pytest.approx(-sigmoid(-10.0), rel=1e-9)
    assert grads["nonsaturating"] == pytest.approx(-(1 - sigmoid(-10.0)), rel=1e-9)
    assert abs(grads["nonsaturating"]) > 1e4 * abs(grads["minimax"])
    # Both push the fake logit up (G descends, so a negative gradient raises f).
    assert grads["minimax"] < 0 and grads["nonsaturating"] < 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extreme_logits_give_finite_losses_and_gradients(name):
    for smoothing in ([0.0, 0.1] if name in ("minimax", "nonsaturating") else [0.0]):
        loss = get_loss(name, label_smoothing=smoothing)
        real = torch.tensor([100.0, -100.0], requires_grad=True)  # float32, as in training
        fake = torch.tensor([-100.0, 100.0], requires_grad=True)
        d, g = loss.d(real, fake), loss.g(fake)
        (d + g).backward()
        assert torch.isfinite(d) and torch.isfinite(g)
        assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


def test_logistic_losses_at_extreme_logits_are_the_linear_asymptote():
    # -log(sigmoid(-100)) = 100 + log(1 + e^-100) = 100 in float32: softplus, not log(sigmoid()), is used.
    loss = get_loss("nonsaturating")
    assert loss.d(torch.tensor([-100.0]), torch.tensor([100.0])).item() == pytest.approx(200.0)
    assert loss.g(torch.tensor([-100.0])).item() == pytest.approx(100.0)
    assert get_loss("minimax").g(torch.tensor([100.0])).item() == pytest.approx(-100.0)


@pytest.mark.parametrize("name", ["wasserstein", "wgan-gp", "least-squares", "hinge"])
def test_label_smoothing_on_a_non_logistic_loss_is_refused(name):
    with pytest.raises(GankitError, match=name):
        get_loss(name, label_smoothing=0.1)


def test_unknown_loss_name_is_refused_with_the_choices():
    with pytest.raises(GankitError, match="'hindge'.*nonsaturating"):
        get_loss("hindge")


# --------------------------------------------------------------------------------------------- regularizers


class Linear(nn.Module):
    """D(x) = x @ w: its input gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x, y=None):
        return x @ self.w


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2]])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_penalty_of_a_linear_critic_is_closed_form(w, seed):
    g = torch.Generator().manual_seed(seed)
    D = Linear(w)
    real = torch.randn(16, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(16, 2, generator=g, dtype=torch.float64) * 5
    penalty = gradient_penalty(D, real, fake, generator=g)
    norm = math.hypot(*w)
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-12, abs=1e-12)
    # The penalty is differentiable in D's weights: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    penalty.backward()
    expected = [2 * (norm - 1) * wi / norm for wi in w]
    assert D.w.grad.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_gradient_penalty_is_per_sample_on_image_shaped_input():
    # D(x) = sum(x * W) on [B, C, H, W]: the per-sample input gradient is W, flattened.
    W = torch.full((1, 2, 2), 0.25, dtype=torch.float64)  # ||W|| = 0.5
    D = lambda x, y: (x * W).flatten(1).sum(1)  # noqa: E731
    real = torch.randn(4, 1, 2, 2, dtype=torch.float64)
    penalty = gradient_penalty(D, real, torch.zeros_like(real))
    assert penalty.item() == pytest.approx(0.25, rel=1e-12)


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
