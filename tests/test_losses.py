"""Losses against closed forms computed by hand with plain ``math``."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.losses import get_loss

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


def relative(real, fake):
    """r = C(x_r) - mean C(x_f), f = C(x_f) - mean C(x_r)."""
    return [x - mean(fake) for x in real], [x - mean(real) for x in fake]


REL_R, REL_F = relative(REAL, FAKE)  # r = [2.5, -0.5, 1.0], f = [-3.5, -0.5, 1.0]
EXPECTED_RA = {  # name -> (D's loss, G's loss) on REAL, FAKE (Jolicoeur-Martineau 2018)
    "relativistic": (mean(-math.log(sigmoid(r)) for r in REL_R) + mean(-math.log(1 - sigmoid(f)) for f in REL_F),
                     mean(-math.log(sigmoid(f)) for f in REL_F) + mean(-math.log(1 - sigmoid(r)) for r in REL_R)),
    "relativistic-ls": (mean((r - 1) ** 2 for r in REL_R) + mean((f + 1) ** 2 for f in REL_F),
                        mean((f - 1) ** 2 for f in REL_F) + mean((r + 1) ** 2 for r in REL_R)),
    "relativistic-hinge": (mean(max(0.0, 1 - r) for r in REL_R) + mean(max(0.0, 1 + f) for f in REL_F),
                           mean(max(0.0, 1 - f) for f in REL_F) + mean(max(0.0, 1 + r) for r in REL_R)),
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
    # Classic losses ignore real_logits, so G's step need not run D on a real batch.
    assert loss.g(tensor(FAKE), tensor(REAL)).item() == pytest.approx(g_expected, rel=1e-12, abs=1e-12)
    assert loss.g(tensor(FAKE), real_logits=None).item() == pytest.approx(g_expected, rel=1e-12, abs=1e-12)
    assert loss.relativistic is False


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


@pytest.mark.parametrize("name", sorted(EXPECTED) + sorted(EXPECTED_RA))
def test_extreme_logits_give_finite_losses_and_gradients(name):
    for smoothing in ([0.0, 0.1] if name in ("minimax", "nonsaturating") else [0.0]):
        loss = get_loss(name, label_smoothing=smoothing)
        real = torch.tensor([100.0, -100.0], requires_grad=True)  # float32, as in training
        fake = torch.tensor([-100.0, 100.0], requires_grad=True)
        d, g = loss.d(real, fake), loss.g(fake, real)
        (d + g).backward()
        assert torch.isfinite(d) and torch.isfinite(g)
        assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


def test_logistic_losses_at_extreme_logits_are_the_linear_asymptote():
    # -log(sigmoid(-100)) = 100 + log(1 + e^-100) = 100 in float32: softplus, not log(sigmoid()), is used.
    loss = get_loss("nonsaturating")
    assert loss.d(torch.tensor([-100.0]), torch.tensor([100.0])).item() == pytest.approx(200.0)
    assert loss.g(torch.tensor([-100.0])).item() == pytest.approx(100.0)
    assert get_loss("minimax").g(torch.tensor([100.0])).item() == pytest.approx(-100.0)


@pytest.mark.parametrize("name", ["wasserstein", "wgan-gp", "least-squares", "hinge", "relativistic",
                                  "relativistic-ls", "relativistic-hinge"])
def test_label_smoothing_on_a_non_logistic_loss_is_refused(name):
    with pytest.raises(GankitError, match=name):
        get_loss(name, label_smoothing=0.1)


def test_unknown_loss_name_is_refused_with_the_choices():
    with pytest.raises(GankitError, match="'hindge'.*nonsaturating"):
        get_loss("hindge")


# ------------------------------------------------------------------------------- relativistic average losses


def test_relative_logits_by_hand():
    # mean(REAL) = 0.5, mean(FAKE) = -0.5. RaLSGAN's D: (2.25 + 2.25 + 0)/3 + (6.25 + 0.25 + 4)/3 = 5.
    # RaHinge's D: (0 + 1.5 + 0)/3 + (0 + 0.5 + 2)/3 = 4/3; its G: (4.5 + 1.5 + 0)/3 + (3.5 + 0.5 + 2)/3 = 4.
    assert REL_R == [2.5, -0.5, 1.0] and REL_F == [-3.5, -0.5, 1.0]
    assert EXPECTED_RA["relativistic-ls"][0] == pytest.approx(5.0, rel=1e-15)
    assert EXPECTED_RA["relativistic-hinge"] == pytest.approx((4 / 3, 4.0), rel=1e-15)


@pytest.mark.parametrize("name", sorted(EXPECTED_RA))
def test_relativistic_pair_matches_closed_form(name):
    loss = get_loss(name)
    d_expected, g_expected = EXPECTED_RA[name]
    assert loss.name == name and loss.relativistic is True
    assert loss.d(tensor(REAL), tensor(FAKE)).item() == pytest.approx(d_expected, rel=1e-12, abs=1e-12)
    assert loss.g(tensor(FAKE), tensor(REAL)).item() == pytest.approx(g_expected, rel=1e-12, abs=1e-12)
    assert loss.g(tensor(FAKE), real_logits=tensor(REAL)).item() == pytest.approx(g_expected, rel=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED_RA))
def test_relativistic_g_is_d_with_real_and_fake_swapped(name):
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(7, generator=gen, dtype=torch.float64)
    loss = get_loss(name)
    assert loss.g(fake, real).item() == pytest.approx(loss.d(fake, real).item(), rel=1e-12)
    assert loss.g(real, fake).item() == pytest.approx(loss.d(real, fake).item(), rel=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED_RA))
def test_relativistic_losses_see_only_differences_of_logits(name):
    loss = get_loss(name)
    shifted = [tensor(REAL) + 7.0, tensor(FAKE) + 7.0]
    assert loss.d(*shifted).item() == pytest.approx(EXPECTED_RA[name][0], rel=1e-12)
    assert loss.g(shifted[1], shifted[0]).item() == pytest.approx(EXPECTED_RA[name][1], rel=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED_RA))
def test_relativistic_g_without_real_logits_is_refused(name):
    with pytest.raises(ValueError, match="real_logits"):
        get_loss(name).g(tensor(FAKE))


def test_relativistic_g_gets_a_gradient_from_the_real_term_too():
    # RaSGAN's G loss mean_i softplus(-f_i) + mean_j softplus(r_j), with r_j = real_j - mean(fake), has
    # d/dfake_i = -(sigmoid(-f_i) + mean_j sigmoid(r_j)) / n: the real term keeps G's gradient alive when D is
    # confident (sigmoid(-f_i) small), unlike the standard GAN's.
    real_values, fake_values = [3.0, 2.0], [-2.0, -3.0]
    r, f = relative(real_values, fake_values)
    real = torch.tensor(real_values, dtype=torch.float64, requires_grad=True)
    fake = torch.tensor(fake_values, dtype=torch.float64, requires_grad=True)
    get_loss("relativistic").g(fake, real).backward()
    expected = [-(sigmoid(-fi) + mean(sigmoid(rj) for rj in r)) / 2 for fi in f]
    assert fake.grad.tolist() == pytest.approx(expected, rel=1e-12)
