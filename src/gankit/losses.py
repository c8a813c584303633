"""GAN losses as pure functions of D's logits.

Each loss is a pair: ``d(real_logits, fake_logits)`` is minimised by D, ``g(fake_logits, real_logits=None)``
by G. Only the relativistic losses use ``real_logits`` in G's loss (``GANLoss.relativistic``); the others ignore it.
Logits are D's raw outputs, shape [B]; D(x) = sigmoid(logit) for the logistic losses.
Useful identities: -log(sigmoid(t)) = softplus(-t) and -log(1 - sigmoid(t)) = softplus(t).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import GankitError


class GANLoss(NamedTuple):
    name: str
    d: Callable[[Tensor, Tensor], Tensor]  # (real_logits, fake_logits) -> D's loss
    g: Callable[..., Tensor]  # (fake_logits, real_logits=None) -> G's loss
    relativistic: bool = False  # g needs real_logits, so G's step must also run D on a real batch


def logistic_d(real: Tensor, fake: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """D's cross-entropy: -E[t log D(x)] - E[(1-t) log(1 - D(x))] - E[log(1 - D(G(z)))], with t = 1 - s.

    Goodfellow et al. 2014, "Generative Adversarial Nets". ``label_smoothing`` s is one-sided
    smoothing (Salimans et al. 2016, "Improved Techniques for Training GANs"): only the real
    target moves from 1 to 1 - s, fake targets stay 0.
    """
    target = 1.0 - label_smoothing
    real_term = target * F.softplus(-real) + (1.0 - target) * F.softplus(real)
    return real_term.mean() + F.softplus(fake).mean()


def minimax_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises E[log(1 - D(G(z)))] = -E[softplus(fake)]: the original (saturating) minimax game.

    Goodfellow et al. 2014. Its gradient vanishes when D confidently rejects fakes, hence the
    non-saturating variant below.
    """
    return -F.softplus(fake).mean()


def nonsaturating_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises -E[log D(G(z))] = E[softplus(-fake)] (Goodfellow et al. 2014, section 3)."""
    return F.softplus(-fake).mean()


def wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    """The critic minimises E[D(G(z))] - E[D(x)] (Arjovsky et al. 2017, "Wasserstein GAN").

    D must be kept 1-Lipschitz: by weight clipping (``wasserstein``) or a gradient penalty (``wgan-gp``).
    """
    return fake.mean() - real.mean()


def wasserstein_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises -E[D(G(z))] (Arjovsky et al. 2017)."""
    return -fake.mean()


def least_squares_d(real: Tensor, fake: Tensor) -> Tensor:
    """D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] (Mao et al. 2017, "Least Squares GANs", a=0, b=c=1)."""
    return 0.5 * (real - 1.0).square().mean() + 0.5 * fake.square().mean()


def least_squares_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises 1/2 E[(D(G(z)) - 1)^2] (Mao et al. 2017)."""
    return 0.5 * (fake - 1.0).square().mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    """D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G minimises -E[D(G(z))] (Lim & Ye 2017)."""
    return -fake.mean()


def relative(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """(r, f) = (C(x_r) - E[C(x_f)], C(x_f) - E[C(x_r)]): each logit relative to the other batch's mean."""
    return real - fake.mean(), fake - real.mean()


def _needs_real(real_logits: Tensor | None) -> Tensor:
    if real_logits is None:
        raise ValueError("a relativistic G loss needs real_logits: call g(fake_logits, real_logits)")
    return real_logits


def ra_logistic_d(real: Tensor, fake: Tensor) -> Tensor:
    """RaSGAN, D minimises -E[log sigmoid(r)] - E[log(1 - sigmoid(f))] = E[softplus(-r)] + E[softplus(f)].

    r = C(x_r) - E[C(x_f)], f = C(x_f) - E[C(x_r)]: D estimates how much more realistic real data is than
    fake data on average. Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element missing
    from standard GAN".
    """
    r, f = relative(real, fake)
    return F.softplus(-r).mean() + F.softplus(f).mean()


def ra_logistic_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """RaSGAN, G minimises -E[log sigmoid(f)] - E[log(1 - sigmoid(r))]: D's loss with real and fake swapped.

    Unlike the classic losses, G's gradient also flows through the real term (Jolicoeur-Martineau 2018).
    """
    return ra_logistic_d(fake, _needs_real(real_logits))


def ra_least_squares_d(real: Tensor, fake: Tensor) -> Tensor:
    """RaLSGAN, D minimises E[(r - 1)^2] + E[(f + 1)^2] (Jolicoeur-Martineau 2018)."""
    r, f = relative(real, fake)
    return (r - 1.0).square().mean() + (f + 1.0).square().mean()


def ra_least_squares_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """RaLSGAN, G minimises E[(f - 1)^2] + E[(r + 1)^2]: D's loss with real and fake swapped (ibid.)."""
    return ra_least_squares_d(fake, _needs_real(real_logits))


def ra_hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    """RaHingeGAN, D minimises E[max(0, 1 - r)] + E[max(0, 1 + f)] (Jolicoeur-Martineau 2018)."""
    r, f = relative(real, fake)
    return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()


def ra_hinge_g(fake: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """RaHingeGAN, G minimises E[max(0, 1 - f)] + E[max(0, 1 + r)]: D's loss with real and fake swapped (ibid.)."""
    return ra_hinge_d(fake, _needs_real(real_logits))


def implicit_fake_d(real: Tensor, fake: Tensor) -> Tensor:
    """The unsupervised part of a K-class D's loss with an implicit fake class (Salimans et al. 2016, section 5):
    with class logits l [B, K] and the fake logit fixed at 0, D(x) = Z / (Z + 1) = sigmoid(logsumexp l(x)), so

        1/2 E[-log D(x_real)] + 1/2 E[-log(1 - D(G(z)))] = 1/2 E[softplus(-lse l_real)] + 1/2 E[softplus(lse l_fake)]

    (openai/improved-gan's ``loss_unl``). ``real``, ``fake``: K logits each, [B, K]."""
    return 0.5 * F.softplus(-torch.logsumexp(real, 1)).mean() + 0.5 * F.softplus(torch.logsumexp(fake, 1)).mean()


def feature_matching_g(real: Tensor, fake: Tensor) -> Tensor:
    """G's feature-matching loss (Salimans et al. 2016, section 3.1): the squared distance between the batch means
    of D's features of real and of generated samples, ``||E f(x) - E f(G(z))||^2 / n_f``; ``real``, ``fake`` [B, n_f]."""
    return (real.mean(0) - fake.mean(0)).square().mean()


LOGISTIC = ("minimax", "nonsaturating")
RELATIVISTIC = ("relativistic", "relativistic-ls", "relativistic-hinge")


def get_loss(name: str, label_smoothing: float = 0.0) -> GANLoss:
    """The loss pair for a config's ``loss.name``; ``wgan-gp`` is the Wasserstein pair (its penalty is a regularizer).

    The ``relativistic*`` losses are Jolicoeur-Martineau's relativistic average ones (RaSGAN, RaLSGAN, RaHinge).
    """
    if label_smoothing and name not in LOGISTIC:
        raise GankitError(f"loss.label_smoothing = {label_smoothing}: applies to the logistic losses "
                          f"({', '.join(LOGISTIC)}), not {name!r}")
    d_logistic = partial(logistic_d, label_smoothing=label_smoothing)
    pairs = {
        "minimax": (d_logistic, minimax_g),
        "nonsaturating": (d_logistic, nonsaturating_g),
        "wasserstein": (wasserstein_d, wasserstein_g),
        "wgan-gp": (wasserstein_d, wasserstein_g),
        "least-squares": (least_squares_d, least_squares_g),
        "hinge": (hinge_d, hinge_g),
        "relativistic": (ra_logistic_d, ra_logistic_g),
        "relativistic-ls": (ra_least_squares_d, ra_least_squares_g),
        "relativistic-hinge": (ra_hinge_d, ra_hinge_g),
    }
    if name not in pairs:
        raise GankitError(f"unknown loss {name!r}; expected one of: {', '.join(pairs)}")
    d, g = pairs[name]
    return GANLoss(name, d, g, relativistic=name in RELATIVISTIC)
