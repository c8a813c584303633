"""Semi-supervised learning with a GAN (Salimans, Goodfellow, Zaremba, Cheung, Radford and Chen 2016,
"Improved Techniques for Training GANs", section 5; reference code openai/improved-gan,
``mnist_svhn_cifar10/train_mnist_feature_matching.py``).

D is a K-class classifier whose fake class K+1 is implicit, its logit fixed at 0: with l(x) D's K logits and
Z(x) = sum_k exp l_k(x), p(real | x) = Z / (Z + 1) = sigmoid(logsumexp l(x)) and p(k | x, real) = softmax l(x).
D learns from three batches a step, the labelled (x_l, y), the unlabelled x_u and the generated G(z):

    L_sup   = CE(softmax l(x_l), y)
    L_unsup = 1/2 E[softplus(-lse l(x_u))] + 1/2 E[softplus(lse l(G(z)))]        (= the reference's loss_unl)
    L_D     = w_s L_sup + w_u L_unsup

with w_s = ``game.supervised_weight`` and w_u = ``game.unsupervised_weight`` (1 and 1 in the reference; 0 trains
the same D on the labelled batches alone, with the same noise and average: the supervised-only baseline). G is
trained by feature matching on D's last hidden layer f, against a second unlabelled batch:

    L_G = || E[f(x_u')] - E[f(G(z))] ||^2 / n_f

Gaussian noise on D's input (``game.input_noise``, 0.3) and hidden layers (``game.hidden_noise``, 0.5) while it
trains, weight normalisation of every layer, and Adam with beta1 = 0.5 follow the reference. The classifier is a
moving average of D's weights (``game.d_ema``, as the reference's CIFAR-10 script averages its parameters);
``gankit classify`` and ``gankit eval`` use it, with the noise off.

The labelled batch is drawn with replacement from the labelled samples by the step's seeded generator, so
resuming is exact; the unlabelled batches are the data's shuffled epochs over every training sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Game, Group, Phase
from ..errors import GankitError
from ..losses import feature_matching_g, implicit_fake_d
from ..models import resolved
from ..models.semisup import semisup_players
from ..products import ClassifierProduct
from .image_or_rows import check_images_or_rows


class SemiSupervisedGame(Game):
    """Players G and D (K class logits); groups d = [D] (with D's moving average) and g = [G]."""

    name = "ssgan"

    def __init__(self, config: Config, data: Dataset):
        if data.semisup is None:
            raise GankitError('game.name = "ssgan" needs partly labelled data: set data.labels_per_class = N (a '
                              'labelled set: N labels per class kept) or data.semisupervised = true (your data)')
        check_images_or_rows(config, data, self.name)
        family = config.model.family
        self.config, self.data = config, data
        model, activation = resolved(config, data)
        game, semi = config.game, data.semisup
        self.settings = {"family": family, "shape": list(data.shape), "classes": len(semi.class_names),
                         "width": model.d_hidden, "widths": list(game.d_widths), "input_noise": game.input_noise,
                         "hidden_noise": game.hidden_noise, "z_dim": model.z_dim, "g_hidden": model.g_hidden,
                         "g_depth": model.g_depth, "out_activation": activation}
        torch.manual_seed(config.seed)
        self.players = semisup_players(self.settings)
        self.weights = (game.supervised_weight, game.unsupervised_weight)
        self.groups = [Group("d", ["D"], ema=game.d_ema, ema_warmup=True), Group("g", ["G"])]
        self.phases = [Phase("d", self.d_loss, repeat=config.train.d_steps), Phase("g", self.g_loss)]
        if not game.unsupervised_weight:  # the supervised-only baseline: the same D, noise and average, no GAN
            self.phases = [Phase("d", self.supervised_loss)]
        self.product = ClassifierProduct(tuple(data.shape), self.settings, tuple(semi.class_names))
        self.model_info = {"family": "ssgan", "shape": list(data.shape), "num_classes": 0,
                           "out_activation": activation, "z_dim": model.z_dim}
        self.labelled: tuple[Tensor, Tensor] = (semi.labelled_x, semi.labelled_y)

    def setup(self, engine) -> None:
        x, y = self.labelled
        self.labelled = (x.to(engine.device), y.to(engine.device))

    def labelled_batch(self, ctx: Context) -> tuple[Tensor, Tensor]:
        """This rank's share of a batch of labelled samples, drawn with replacement."""
        x, y = self.labelled
        world = ctx.world.size if ctx.world.distributed else 1
        idx = torch.randint(len(y), (ctx.batch_size * world,), generator=ctx.generator, device=y.device)
        if ctx.world.distributed:
            idx = idx[ctx.world.rank * ctx.batch_size:(ctx.world.rank + 1) * ctx.batch_size]
        return x[idx], y[idx]

    def d_loss(self, ctx: Context) -> Tensor:
        x_l, y = self.labelled_batch(ctx)
        x_u = ctx.batch()["x"]
        with torch.no_grad():
            fake = ctx.G(ctx.noise(len(x_u)))
        logits = ctx.D(torch.cat([x_l, x_u, fake])).float()  # one pass: D has no batch statistics
        l_lab, l_unl, l_gen = logits.split([len(x_l), len(x_u), len(fake)])
        supervised, unsupervised = F.cross_entropy(l_lab, y), implicit_fake_d(l_unl, l_gen)
        w_s, w_u = self.weights
        loss = w_s * supervised + w_u * unsupervised
        ctx.log_many(("d_loss", "d_sup", "d_unsup", "acc_labelled", "p_real", "p_fake"), torch.stack([
            loss, supervised, unsupervised, (l_lab.argmax(1) == y).float().mean(),
            torch.sigmoid(torch.logsumexp(l_unl, 1)).mean(), torch.sigmoid(torch.logsumexp(l_gen, 1)).mean()]).detach())
        return loss

    def supervised_loss(self, ctx: Context) -> Tensor:
        x_l, y = self.labelled_batch(ctx)
        logits = ctx.D(x_l).float()
        loss = self.weights[0] * F.cross_entropy(logits, y)
        ctx.log_many(("d_loss", "acc_labelled"), torch.stack([loss, (logits.argmax(1) == y).float().mean()]).detach())
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        x_u = ctx.batch()["x"]
        with torch.no_grad():
            real = ctx.D.features(x_u).float()
        loss = feature_matching_g(real, ctx.D.features(ctx.G(ctx.noise(len(x_u)))).float())
        ctx.log("g_loss", loss.detach())
        return loss
