"""What a configuration may hold, beyond its types: the allowed choices, the settings that must be positive,
and the combinations a game or a model family rules out. Checked once the TOML and every override are in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GankitError

if TYPE_CHECKING:
    from .config import Config

CHOICES = {
    "data.normalize": ("auto", "none", "standard", "minmax"),
    "model.out_activation": ("auto", "none", "tanh"),
    "model.d_conditioning": ("concat", "projection"),
    "model.d_norm": ("auto", "batch", "none"),
    "model.cell": ("gru", "lstm"),
    "model.d_judge": ("sequence", "step"),
    "data.split": ("train", "test", "all"),
    "data.bad_files": ("error", "skip"),
    "loss.name": ("minimax", "nonsaturating", "wasserstein", "wgan-gp", "least-squares", "hinge",
                  "relativistic", "relativistic-ls", "relativistic-hinge"),
    "loss.penalty": ("none", "gp", "r1", "r2", "dragan"),
    "train.lr_schedule": ("constant", "linear", "cosine"),
    "train.optimizer": ("adam", "rmsprop", "sgd"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "game.name": ("classic", "acgan", "infogan", "timegan", "ctgan", "pix2pix", "srgan", "cyclegan", "bigan", "ganomaly", "fanogan", "ssgan"),
    "game.score_term": ("auto", "fm", "ce", "izif", "knn"),
    "data.layout": ("folders", "side-by-side"),
}
POSITIVE = {"data.n", "data.batch_size", "model.z_dim", "model.g_hidden", "model.d_hidden", "model.embed_dim",
            "train.steps", "train.d_steps", "train.g_lr", "train.d_lr", "train.log_every", "train.checkpoint_every",
            "loss.clip", "eval.n", "model.pack", "data.factor", "data.crop", "loss.penalty_every", "train.nan_lr_factor", "model.gumbel_tau"}
NON_NEGATIVE = {"data.labels_per_class", "game.supervised_weight", "game.unsupervised_weight", "game.input_noise", "game.hidden_noise", "model.z_global", "data.window", "data.max_length", "eval.every", "model.minibatch_features", "model.latent_classes", "loss.feature_matching", "loss.historical_averaging",
                "train.warmup_steps", "train.threads", "train.instance_noise", "train.nan_retries", "seed", "data.std", "data.image_size", "model.g_depth", "model.d_depth", "loss.gp_weight", "train.plot_every",
                "game.aux_weight_d", "game.aux_weight_g", "game.aux_fake_d", "game.continuous_codes", "game.info_weight",
                "game.embedding_steps", "game.supervised_steps", "game.d_threshold", "game.history",
                "game.encoder_weight", "game.feature_weight", "game.encoder_steps", "game.memory",
                "loss.adversarial_weight", "loss.pixel_weight", "loss.content_weight", "loss.cycle_weight",
                "loss.identity_weight"}


def shown(value: Any) -> str:
    """A value as a user wrote it in TOML (true, not True); strings quoted as Python quotes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def validate(config: "Config", source: str = "config") -> None:
    from .config import _flatten, to_dict

    flat = dict(_flatten(to_dict(config)))
    for key, allowed in CHOICES.items():
        if flat[key] not in allowed:
            raise GankitError(f"{source}: {key} = {shown(flat[key])}: expected one of {', '.join(allowed)}")
    for key in POSITIVE:
        if not flat[key] > 0:
            raise GankitError(f"{source}: {key} = {shown(flat[key])}: expected a value > 0")
    for key in NON_NEGATIVE:
        if not flat[key] >= 0:
            raise GankitError(f"{source}: {key} = {shown(flat[key])}: expected a value >= 0")
    if config.eval.n < 2:  # a distribution's statistics (a covariance, a kernel mean) need two samples
        raise GankitError(f"{source}: eval.n = {config.eval.n!r}: expected at least 2 samples")
    if not 0 <= config.loss.label_smoothing < 1:
        raise GankitError(f"{source}: loss.label_smoothing = {config.loss.label_smoothing!r}: expected 0 <= s < 1")
    for key in ("train.g_betas", "train.d_betas"):
        if not all(0 <= b < 1 for b in flat[key]):
            raise GankitError(f"{source}: {key} = {list(flat[key])!r}: expected two numbers in [0, 1)")
    if not 0 <= config.data.holdout < 1:
        raise GankitError(f"{source}: data.holdout = {config.data.holdout!r}: expected a share in [0, 1), e.g. 0.2")
    validate_anomaly_data(config, source)
    validate_semisup_data(config, source)
    kinds = ("continuous", "integer", "categorical", "boolean", "datetime", "id")
    for name, kind in config.data.columns.items():
        if kind not in kinds:
            raise GankitError(f"{source}: data.columns.{name} = {shown(kind)}: expected one of {', '.join(kinds)}")
    if config.data.name == "file" and not config.data.path:
        raise GankitError(f"{source}: data.path is empty: data.name = \"file\" needs the path of a .npy or .csv file")
    if not 0 <= config.train.ema < 1:
        raise GankitError(f"{source}: train.ema = {config.train.ema!r}: expected 0 (off) or a decay in (0, 1), "
                          f"e.g. 0.999")
    if config.model.latent_classes == 1 or (config.model.latent_classes and config.model.family != "mlp"):
        raise GankitError(f"{source}: model.latent_classes = {config.model.latent_classes}: expected 0 (off) or at "
                          f"least 2, with model.family = \"mlp\"")
    if config.model.latent_classes and config.model.z_dim < 2:
        raise GankitError(f"{source}: model.latent_classes needs model.z_dim >= 2 (z_0 picks the category)")
    if config.data.batch_size % config.model.pack:
        raise GankitError(f"{source}: model.pack = {config.model.pack}: data.batch_size = {config.data.batch_size} "
                          f"must be a multiple of it (D judges packs of {config.model.pack} samples)")
    policies = [p.strip() for p in config.train.augment.split(",") if p.strip()]
    unknown = [p for p in policies if p not in ("color", "translation", "cutout")]
    if unknown:
        raise GankitError(f"{source}: train.augment = {config.train.augment!r}: unknown {unknown[0]!r}; expected a "
                          f"comma-separated list of color, translation, cutout (or \"\" for none)")
    if config.train.nan_lr_factor >= 1:
        raise GankitError(f"{source}: train.nan_lr_factor = {config.train.nan_lr_factor}: expected a factor in (0, 1)")
    if config.data.channels not in (0, 1, 3):
        raise GankitError(f"{source}: data.channels = {config.data.channels}: expected 0 (as they come), 1 or 3")
    device = config.train.device
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise GankitError(f"{source}: train.device = {device!r}: expected auto, cpu, cuda or cuda:N")
    penalty = config.loss.penalty if config.loss.penalty != "none" else ("gp" if config.loss.name == "wgan-gp" else "none")
    if config.train.compile and penalty != "none":
        raise GankitError(f"{source}: train.compile = true cannot be combined with a gradient penalty (loss.penalty = "
                          f"{penalty!r}): torch.compile does not support double backward")
    validate_game(config, source)


def validate_anomaly_data(config: "Config", source: str) -> None:
    """data.normal_class and data.normal_holdout: a share that leaves data to train on, and the other data
    settings the anomaly split replaces (what each data set allows is checked where it loads)."""
    data = config.data
    if not 0 <= data.normal_holdout < 0.9:
        raise GankitError(f"{source}: data.normal_holdout = {shown(data.normal_holdout)}: expected a share in "
                          f"[0, 0.9), e.g. 0.1")
    if not (data.normal_class or data.normal_holdout):
        return
    key = "data.normal_class" if data.normal_class else "data.normal_holdout"
    if data.split != "train":
        raise GankitError(f"{source}: data.split = {data.split!r}: with {key} set, training reads the train split "
                          f"and testing the test split; expected \"train\"")
    if data.holdout:
        raise GankitError(f"{source}: data.holdout = {shown(data.holdout)} (tables' efficacy rows) cannot be combined "
                          f"with {key}; the normal data is held out by data.normal_holdout")


def validate_semisup_data(config: "Config", source: str) -> None:
    """data.labels_per_class and data.semisupervised: the split reads the train split and tests on the test split,
    and is neither anomaly detection's nor a table's."""
    data = config.data
    if not (data.labels_per_class or data.semisupervised):
        if data.unlabelled:
            raise GankitError(f"{source}: data.unlabelled = {data.unlabelled!r} marks unlabelled rows of "
                              f"semi-supervised data; set data.semisupervised = true too (or leave it empty)")
        return
    key = "data.labels_per_class" if data.labels_per_class else "data.semisupervised"
    for other, value in (("data.normal_class", data.normal_class), ("data.normal_holdout", data.normal_holdout),
                         ("data.holdout", data.holdout)):
        if value:
            raise GankitError(f"{source}: {other} = {shown(value)} cannot be combined with {key} (semi-supervised "
                              f"data); expected one of them")
    if data.split != "train":
        raise GankitError(f"{source}: data.split = {data.split!r}: with {key} set, training reads the train split "
                          f"and testing the test split; expected \"train\"")


def validate_game(config: "Config", source: str) -> None:
    """The game's settings, and the other settings a game rules out."""
    game = config.game
    if config.model.family == "timegan" and game.name != "timegan":
        raise GankitError(f"{source}: model.family = \"timegan\": TimeGAN's networks play their own game; set "
                          f"game.name = \"timegan\" (or model.family = \"rnn\" for a recurrent GAN)")
    if game.name == "classic":
        return
    if game.name == "timegan":  # its losses, stages and networks are the paper's: the classic game's knobs do nothing
        ignored = [f"{key} = {value!r}" for key, value, default in (
            ("loss.name", config.loss.name, "nonsaturating"), ("loss.penalty", config.loss.penalty, "none"),
            ("train.d_steps", config.train.d_steps, 1), ("train.ema", config.train.ema, 0.0),
            ("train.augment", config.train.augment, ""), ("train.instance_noise", config.train.instance_noise, 0.0))
            if value != default]
        if ignored:
            raise GankitError(f"{source}: game.name = \"timegan\" does not use {ignored[0]} (its losses and stages "
                              f"are the paper's); expected the default")
    if game.name == "ctgan":  # D packs rows (model.pack), so the other games' one-sample rule below does not apply
        validate_ctgan(config, source)
        return
    if config.model.pack != 1:
        raise GankitError(f"{source}: game.name = \"{game.name}\": model.pack = {config.model.pack}; D's second head "
                          f"reads each sample, so expected 1")
    unsupported = [key for key, on in (("loss.feature_matching", config.loss.feature_matching),
                                       ("loss.historical_averaging", config.loss.historical_averaging),
                                       ("train.reuse_fake", config.train.reuse_fake)) if on]
    if unsupported:
        raise GankitError(f"{source}: game.name = \"{game.name}\" does not take {unsupported[0]} (the classic game's); "
                          f"expected it off")
    if game.name in ("bigan", "ganomaly", "fanogan"):
        validate_anomaly(config, source)
    if game.name == "ssgan":
        validate_semisup(config, source)
    if game.name == "infogan":
        if not game.categorical_codes and not game.continuous_codes:
            raise GankitError(f"{source}: game.name = \"infogan\" needs codes: game.categorical_codes or "
                              f"game.continuous_codes")
        if any(k < 2 for k in game.categorical_codes):
            raise GankitError(f"{source}: game.categorical_codes = {list(game.categorical_codes)}: expected sizes of "
                              f"at least 2")


def validate_anomaly(config: "Config", source: str) -> None:
    """The anomaly games: a threshold rate and score weight that mean something, and held-out normal data."""
    game = config.game
    if not 0.0 < game.fpr < 1.0:
        raise GankitError(f"{source}: game.fpr = {shown(game.fpr)}: expected a false-positive rate in (0, 1)")
    if not 0.0 <= game.score_weight <= 1.0:
        raise GankitError(f"{source}: game.score_weight = {shown(game.score_weight)}: expected a weight in [0, 1]")
    terms = {"bigan": ("auto", "fm", "ce"), "fanogan": ("auto", "izif", "knn"), "ganomaly": ("auto",)}[game.name]
    if game.score_term not in terms:
        raise GankitError(f"{source}: game.score_term = {game.score_term!r}: game.name = \"{game.name}\" scores by "
                          f"{' | '.join(terms)}")
    if config.data.normal_holdout <= 0:
        raise GankitError(f"{source}: game.name = \"{game.name}\" sets its score threshold on normal data kept out "
                          f"of training: data.normal_holdout = {shown(config.data.normal_holdout)}; expected a share "
                          f"> 0 (the anomaly recipes keep 0.1)")
    if game.name == "fanogan":
        if config.loss.name != "wgan-gp":
            raise GankitError(f"{source}: game.name = \"fanogan\" trains a Wasserstein GAN with gradient penalty; "
                              f"loss.name = {config.loss.name!r}, expected \"wgan-gp\" (its recipes set it)")
        if game.encoder_steps and not game.encoder_steps < config.train.steps:
            raise GankitError(f"{source}: game.encoder_steps = {game.encoder_steps}: expected fewer than train.steps "
                              f"= {config.train.steps} (the GAN trains first, then the encoder)")
    elif config.loss.name not in ("nonsaturating", "least-squares", "hinge"):
        raise GankitError(f"{source}: game.name = \"{game.name}\": loss.name = {config.loss.name!r}; expected "
                          f"nonsaturating, least-squares or hinge (the penalties and critics of the other losses are "
                          f"not part of these games)")
    if config.loss.penalty != "none" or config.train.augment or config.train.instance_noise or config.train.ema:
        raise GankitError(f"{source}: game.name = \"{game.name}\" does not take loss.penalty, train.augment, "
                          f"train.instance_noise or train.ema (the scorer uses the trained networks themselves); "
                          f"expected them off")


def validate_semisup(config: "Config", source: str) -> None:
    """ssgan: partly labelled data, noise and a moving-average decay that mean something, and none of the classic
    game's extras (its D is a classifier, its losses its own)."""
    game, data = config.game, config.data
    if not (data.labels_per_class or data.semisupervised):
        raise GankitError(f"{source}: game.name = \"ssgan\" learns from a few labelled samples and many unlabelled "
                          f"ones: set data.labels_per_class = N (a labelled set: N labels per class kept) or "
                          f"data.semisupervised = true (your data, whose unlabelled samples have no label)")
    if not 0 <= game.d_ema < 1:
        raise GankitError(f"{source}: game.d_ema = {shown(game.d_ema)}: expected 0 (off) or a decay in (0, 1), "
                          f"e.g. 0.999")
    if not (game.supervised_weight or game.unsupervised_weight):
        raise GankitError(f"{source}: game.supervised_weight and game.unsupervised_weight are both 0: D would learn "
                          f"nothing; expected at least one > 0 (1 and 1 in the reference; unsupervised 0 = the "
                          f"supervised-only baseline)")
    if config.eval.every:
        raise GankitError(f"{source}: eval.every = {config.eval.every}: a semi-supervised run is scored after "
                          f"training; set eval.every = 0 and run gankit eval RUN (accuracy, macro F1 and the "
                          f"confusion matrix on the test split, beside G's metrics)")
    if not game.d_widths or min(game.d_widths) < 1:
        raise GankitError(f"{source}: game.d_widths = {list(game.d_widths)}: expected one or more layer widths >= 1")
    if config.loss.penalty != "none" or config.train.augment or config.train.instance_noise or config.train.ema:
        raise GankitError(f"{source}: game.name = \"ssgan\" does not take loss.penalty, train.augment, "
                          f"train.instance_noise or train.ema (D's own noise regularises it; game.d_ema averages "
                          f"the classifier); expected them off")


def validate_ctgan(config: "Config", source: str) -> None:
    """CTGAN's game builds its own networks and trains with WGAN-GP: refuse the settings it would ignore."""
    loss, model, train = config.loss, config.model, config.train
    if loss.name not in ("nonsaturating", "wgan-gp"):
        raise GankitError(f"{source}: game.name = \"ctgan\" trains with WGAN-GP; loss.name = {loss.name!r} is not "
                          f"used (expected \"wgan-gp\" or the default)")
    if loss.penalty not in ("none", "gp"):
        raise GankitError(f"{source}: game.name = \"ctgan\" takes CTGAN's pac-wise gradient penalty; loss.penalty = "
                          f"{loss.penalty!r} is not used (expected \"gp\" or the default)")
    ignored = [f"{key} = {shown(value)}" for key, value, default in (
        ("model.family", model.family, "mlp"), ("model.out_activation", model.out_activation, "auto"),
        ("model.minibatch_std", model.minibatch_std, False), ("model.minibatch_features", model.minibatch_features, 0),
        ("model.spectral_norm", model.spectral_norm, False), ("model.latent_classes", model.latent_classes, 0),
        ("loss.penalty_every", loss.penalty_every, 1), ("loss.label_smoothing", loss.label_smoothing, 0.0),
        ("loss.feature_matching", loss.feature_matching, 0.0),
        ("loss.historical_averaging", loss.historical_averaging, 0.0),
        ("train.augment", train.augment, ""), ("train.instance_noise", train.instance_noise, 0.0),
        ("train.reuse_fake", train.reuse_fake, False)) if value != default]
    if ignored:
        raise GankitError(f"{source}: game.name = \"ctgan\" does not use {ignored[0]} (its networks and losses are "
                          f"CTGAN's); expected the default")
    if config.data.normalize not in ("auto", "none"):
        raise GankitError(f"{source}: game.name = \"ctgan\": data.normalize = {config.data.normalize!r}; a table is "
                          f"encoded per column (values in [-1, 1], one-hots), so expected \"none\" or \"auto\"")
