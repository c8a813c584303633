"""Configuration: frozen dataclasses, read from TOML, overridden by ``--set key=value``.

Every setting is declared once below with its default and a one-line reason. Unknown keys, wrong
types and bad values are refused with a message naming the source (file or ``--set``), the key,
the value and what was expected. A run writes its fully resolved config back as ``config.toml``.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import tomli_w

from .errors import GankitError


@dataclass(frozen=True)
class DataConfig:
    name: str = "ring8"  # gauss1d, ring8, grid25, digits, fashion-mnist; user's: file (.npy/.csv), images, idx (folders)
    path: str = ""  # the user's file or folder; for fashion-mnist, a folder other than the Debian package's
    label_column: str = ""  # column holding integer class labels (header name or 0-based index); "" = none
    n: int = 100_000  # samples drawn for the generated sets (gauss1d, ring8, grid25)
    std: float = 0.0  # spread of each mode of a generated set; 0 = the set's standard value
    normalize: str = "auto"  # none | standard | minmax; auto = standard for files, the set's own for built-ins
    batch_size: int = 256  # real (and fake) samples per step
    split: str = "train"  # train | test | all, for sets that come split (fashion-mnist)
    image_size: int = 0  # images are resized (and centre-cropped) to this side; 0 = as they come
    channels: int = 0  # images: 1 = grey, 3 = RGB; 0 = as they come (folders: RGB unless all are grey)
    bad_files: str = "error"  # image folders: error | skip, for files that cannot be decoded
    window: int = 0  # one long series (a 2-D file): cut into sliding windows of this many steps (stride 1); 0 = rows
    max_length: int = 0  # text (words, lines): longer items are dropped; 0 = the longest item's length
    holdout: float = 0.0  # tables: share of rows kept out of training, for gankit eval's efficacy and privacy scores
    # tables: a column's kind where detection guesses wrong, e.g. [data.columns] zip = "categorical"
    columns: dict[str, str] = field(default_factory=dict)
    # image-to-image (data.name = "pairs" | "unpaired", and the built-in sr-*, edges2fashion, sneaker2boot tasks)
    layout: str = "folders"  # pairs: folders (A/ and B/ files matched by name, pix2pix's) | side-by-side (A|B images)
    path_a: str = ""  # unpaired: the folder of domain A's images (CycleGAN)
    path_b: str = ""  # unpaired: the folder of domain B's images
    factor: int = 4  # super-resolution tasks: target side / input side (2, 4 or 8)
    crop: int = 64  # sr-photos: side of the high-resolution training crops (a multiple of data.factor)
    # anomaly detection (gankit.data.anomaly): train on normal data alone, test on normal and anomalous data
    normal_class: str = ""  # the normal class (name or index) of a labelled set; training keeps it alone; "" = off
    normal_holdout: float = 0.0  # share of the normal training data kept out to set the score's threshold (0.1)
    # semi-supervised learning (gankit.data.semisup): a few labelled samples, the rest unlabelled
    labels_per_class: int = 0  # keep this many labels per class (chosen by the seed), the rest unlabelled; 0 = off
    semisupervised: bool = False  # the user's partly labelled data: empty labels (data.unlabelled) and unlabelled/ are unlabelled
    unlabelled: str = ""  # semisupervised CSVs and .npy: a label value that also marks unlabelled rows (empty and NaN always do), e.g. "-1"


@dataclass(frozen=True)
class ModelConfig:
    family: str = "mlp"  # mlp | dcgan | rnn (sequences and text), or a family from the models registry
    z_dim: int = 8  # size of the noise vector z
    g_hidden: int = 128  # width of G's hidden layers
    d_hidden: int = 128  # width of D's hidden layers
    g_depth: int = 2  # number of hidden layers in G
    d_depth: int = 2  # number of hidden layers in D
    embed_dim: int = 16  # label embedding size fed to G and D when the data has labels
    conditional: bool = True  # use the data's labels when it has any
    out_activation: str = "auto"  # none | tanh; auto = tanh when the data is scaled to [-1, 1]
    minibatch_std: bool = False  # MLP and rnn D also see the batch's spread (Karras et al. 2018): a cure for collapse
    d_conditioning: str = "concat"  # convolutional D: concat (label maps on the input) | projection (Miyato 2018)
    d_norm: str = "auto"  # convolutional D: batch | none; auto = none for wgan-gp (its penalty is per sample)
    spectral_norm: bool = False  # D's weights divided by their largest singular value (Miyato et al. 2018)
    minibatch_features: int = 0  # minibatch discrimination kernels in D (Salimans et al. 2016); 0 = off
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges packs of m samples; data.batch_size must divide by m
    latent_classes: int = 0  # MLP G: z_0 picks one of K categories (a discrete latent, DeLiGAN-style); 0 = off
    cell: str = "gru"  # rnn: gru | lstm, the recurrent cell of G and D (z_dim is then the noise per step)
    d_bidirectional: bool = False  # rnn: D reads the sequence both ways
    d_judge: str = "sequence"  # rnn: sequence (one logit from D's final state) | step (one per step, RCGAN)
    gumbel_tau: float = 1.0  # rnn on text: temperature of G's straight-through Gumbel-softmax
    z_global: int = 0  # rnn: noise drawn once per sequence and fed at every step, beside z_dim per step


@dataclass(frozen=True)
class LossConfig:
    name: str = "nonsaturating"  # minimax | nonsaturating | wasserstein | wgan-gp | least-squares | hinge
    label_smoothing: float = 0.0  # one-sided: D's target for real samples is 1 - s (logistic losses)
    gp_weight: float = 10.0  # weight of the gradient penalty: wgan-gp's, or loss.penalty's (R1's gamma / 2 ...)
    clip: float = 0.01  # D's weights are clipped to [-clip, clip] after each step for wasserstein
    penalty: str = "none"  # none | gp (Gulrajani 2017) | r1 | r2 (Mescheder 2018) | dragan (Kodali 2017); weight gp_weight
    penalty_every: int = 1  # lazy regularisation (Karras et al. 2020): the penalty every N D steps, weighted N times
    feature_matching: float = 0.0  # weight of G's feature-matching term (Salimans et al. 2016); 0 = off
    historical_averaging: float = 0.0  # weight of |theta - mean of past theta|^2 for G and D (Salimans 2016)
    # image-to-image games (pix2pix, srgan, cyclegan)
    adversarial_weight: float = 1.0  # G's adversarial term (SRGAN: 1e-3); 0 = the pixel loss alone, no D (baseline)
    pixel_weight: float = 100.0  # weight of G's L1 to the target (pix2pix's lambda = 100; SRGAN/ESRGAN: 1)
    content_weight: float = 0.0  # srgan: weight of the feature (content) loss on loss.content_network
    content_network: str = ""  # srgan: fashion-mnist | digits (bundled classifiers) | a VGG-19 .safetensors file
    cycle_weight: float = 10.0  # cyclegan: lambda of the cycle-consistency L1 (Zhu et al. 2017)
    identity_weight: float = 0.5  # cyclegan: the identity L1's weight, times cycle_weight (the paper's 0.5)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 5000  # generator updates
    d_steps: int = 1  # discriminator updates per generator update (k)
    optimizer: str = "adam"  # adam | rmsprop (as the WGAN paper used with clipping) | sgd
    g_lr: float = 2e-4  # G's learning rate
    d_lr: float = 2e-4  # D's learning rate
    g_betas: tuple[float, float] = (0.5, 0.999)  # G's Adam betas (beta1 = 0.5 as in DCGAN)
    d_betas: tuple[float, float] = (0.5, 0.999)  # D's Adam betas
    ema: float = 0.0  # decay of an exponential moving average of G's weights, used for samples; 0 = off
    lr_schedule: str = "constant"  # constant | linear | cosine (to 0 at the last step), after the warm-up
    warmup_steps: int = 0  # learning rates rise linearly from 0 over these first steps
    augment: str = ""  # DiffAugment (Zhao et al. 2020) of D's real and fake inputs: color,translation,cutout
    instance_noise: float = 0.0  # std of noise added to D's inputs at step 0, annealed to 0 (Sonderby 2017)
    nan_retries: int = 2  # after a NaN/Inf loss: back to the last checkpoint with lower learning rates, this often
    nan_lr_factor: float = 0.5  # learning rates are multiplied by this at each retry
    log_every: int = 100  # steps between metrics.jsonl lines (the only host sync in the loop)
    checkpoint_every: int = 1000  # steps between checkpoints (and one at the end)
    plot_every: int = 0  # steps between pictures (1-D/2-D plots, image grids); 0 = four times per run
    tensorboard: bool = False  # also log scalars and sample grids for TensorBoard (extra: gankit[tensorboard])
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16: autocast of the forward passes (auto: see gankit.speed)
    reuse_fake: bool = False  # G's step reuses the last D step's fake batch (as the tutorials do): faster, but it hurt quality
    fused_optimizer: bool = True  # Adam/RMSprop/SGD's fused (or foreach) kernels where the device has them
    joint_d_batch: bool = True  # one D pass over real + fake when D declares batch_independent (built-ins do)
    fast_dropout: bool = True  # on CPU, nn.Dropout layers draw their masks 16 bits at a time (gankit.speed)
    channels_last: bool = True  # image batches and convolution weights in NHWC, the layout oneDNN/cuDNN run fastest
    threads: int = 0  # intra-op CPU threads for the training step; 0 = auto (1 for small MLPs, else PyTorch's)
    compile: bool = False  # torch.compile G and D (measured slower on CPU for these models; try it on a GPU)
    sync_batchnorm: bool = False  # under torchrun on GPUs: batch norm statistics over the global batch, not a rank's


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # steps between evaluations during training (and one at the end); 0 = off
    n: int = 2000  # generated samples per evaluation during training (gankit eval: --n, default 10,000)
    metrics: str = "auto"  # comma-separated: fid,kid,is,pr,dc,modes,classes,columns; auto = all the data allows
    features: str = "auto"  # raw | standardized | digits | fashion-mnist | inception | a registered one; auto = rows standardized, images the data's classifier
    best: str = "auto"  # metric that picks checkpoints/best.safetensors, e.g. fid, coverage; auto = fid; none = off
    target: str = ""  # tables: the column machine-learning efficacy predicts (gankit eval --target)
    inception_weights: str = ""  # pt_inception-2015-12-05-6726825d.pth, for FID comparable with papers (or env)


@dataclass(frozen=True)
class GameConfig:
    name: str = "classic"  # classic | acgan | infogan | timegan | ctgan | pix2pix | srgan | cyclegan | bigan | ganomaly | fanogan | ssgan: the game the engine plays (gankit.games)
    aux_weight_d: float = 1.0  # acgan: weight of D's class cross-entropy on real and generated samples
    aux_weight_g: float = 1.0  # acgan: weight of G's class cross-entropy on its own samples
    aux_fake_d: float = 1.0  # acgan: weight of G's samples in D's class cross-entropy (1: the paper; 0: real only)
    categorical_codes: tuple[int, ...] = (10,)  # infogan: sizes of the categorical codes c_i ~ Cat(K_i) in G's input
    continuous_codes: int = 2  # infogan: continuous codes c_j ~ U(-1, 1) in G's input
    info_weight: float = 1.0  # infogan: weight lambda of the mutual-information term, for G and Q
    embedding_steps: int = 1000  # timegan: steps of stage 1, the autoencoder (embedder and recovery) alone
    supervised_steps: int = 1000  # timegan: steps of stage 2, the supervisor alone; joint training after both
    d_threshold: float = 0.15  # timegan: D learns at a joint step only while its loss is above this
    history: int = 50  # cyclegan: D sees generated images from a buffer of this many past ones (Shrivastava 2017)
    # anomaly detection (bigan, ganomaly, fanogan): trained on normal data, a score of how poorly the GAN explains a sample
    fpr: float = 0.05  # the score threshold flags this share of the held-out normal data (gankit train --fpr)
    score_weight: float = 0.1  # bigan: w of EGBAD's score (1 - w) |x - G(E(x))|_1 + w * D's term (the paper's 0.1)
    score_term: str = "auto"  # the score: bigan fm (feature matching on D's layer) | ce; fanogan izif | knn; auto = fm, izif
    memory: int = 1000  # fanogan with score_term = "knn": normal training samples the critic's features are compared with
    encoder_steps: int = 0  # fanogan: the last steps, in which the encoder learns to invert the trained G; 0 = a third
    feature_weight: float = 1.0  # fanogan: kappa of the critic-feature residual in E's loss and the score
    encoder_weight: float = 1.0  # ganomaly: w_enc of |G_E(x) - E(G(x))|_2 in G's loss (w_con: loss.pixel_weight)
    # semi-supervised learning (ssgan): D is a K-class classifier with an implicit fake class (Salimans et al. 2016)
    supervised_weight: float = 1.0  # ssgan: weight of the cross-entropy on the labelled batch in D's loss
    unsupervised_weight: float = 1.0  # ssgan: weight of the real/fake terms on the unlabelled and generated batches
    input_noise: float = 0.3  # ssgan: std of the Gaussian noise on D's inputs while it trains (the reference's 0.3)
    hidden_noise: float = 0.5  # ssgan: std of the Gaussian noise on D's hidden layers while it trains (0.5)
    d_widths: tuple[int, ...] = (1000, 500, 250, 250, 250)  # ssgan with model.family = "mlp": D's hidden layers
    d_ema: float = 0.999  # ssgan: decay of the moving average of D's weights that classifies (0 = the raw D)


# games that are their data's own: their runs are runs/<data> (a table's ctgan, an image-to-image task's game)
OWN_GAMES = ("classic", "ctgan", "pix2pix", "srgan", "cyclegan")


@dataclass(frozen=True)
class Config:
    seed: int = 0  # seeds data generation, initialisation, noise and batching
    name: str = ""  # run name; "" = the data set's name
    run_dir: str = ""  # run folder; "" = runs/<name> (a free variant of it for a new run)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    game: GameConfig = field(default_factory=GameConfig)

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        data = Path(self.data.path).stem if self.data.path and self.data.name in ("file", "images", "idx", "lines", "table",
                                                                                   "pairs") else self.data.name
        if self.data.name == "unpaired" and self.data.path_a and self.data.path_b:
            data = f"{Path(self.data.path_a).stem}2{Path(self.data.path_b).stem}"
        # another game on the same data is another run: runs/acgan-fashion-mnist beside runs/fashion-mnist (ctgan is
        # the tables' own game: runs/wine; srgan is sr-photos': runs/sr-photos)
        return data if self.game.name in OWN_GAMES else f"{self.game.name}-{data}"


# --------------------------------------------------------------------------------------------- reading


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (), base: Config | None = None) -> Config:
    """Read a TOML recipe (or start from ``base``/defaults) and apply ``key=value`` overrides."""
    raw: dict[str, Any] = to_dict(base) if base is not None else {}
    source = "defaults"
    if path is not None:
        source = str(path)
        raw = _merge(raw, read_toml(path))
    config = _build(Config, raw, "", source)  # types are checked here; values once the overrides are in
    overrides = list(overrides)
    if not overrides:
        validate(config, source)
        return config
    return apply_overrides(config, overrides, f"{source} with --set")


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise GankitError(f"{path}: is a folder; expected a .toml config file")
    if not path.is_file():
        raise GankitError(f"{path}: config file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GankitError(f"{path}: not valid TOML: {e}") from None


def apply_overrides(config: Config, overrides: Iterable[str], source: str = "--set") -> Config:
    """Apply ``a.b=value`` strings; values are parsed as TOML (``1e-4``, ``true``, ``[0.5, 0.9]``) or taken as text."""
    raw = to_dict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GankitError(f"--set {item!r}: expected key=value, e.g. train.d_lr=1e-4")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise GankitError(f"--set {item}: {unknown_key(key)}")
            node = node[part]
        free = ".".join(parts[:-1]) in MAPPINGS  # data.columns.age=categorical: a mapping takes any name
        if not free and (parts[-1] not in node or (isinstance(node[parts[-1]], dict) and key not in MAPPINGS)):
            raise GankitError(f"--set {item}: {unknown_key(key)}")
        node[parts[-1]] = _parse_value(text.strip())
        _build(Config, raw, "", f"--set {item}")  # types are checked per item, so the message names it
    return from_dict(raw, source)  # values are checked together: one override may need another


# Settings that are mappings of any names (a TOML table of the user's keys), not sections of known keys
MAPPINGS = ("data.columns",)


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    config = _build(Config, raw, "", source)
    validate(config, source)
    return config


def _build(cls: type, raw: Any, prefix: str, source: str):
    if not isinstance(raw, dict):
        raise GankitError(f"{source}: {prefix.rstrip('.') or 'config'} must be a table, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise GankitError(f"{source}: {unknown_key(prefix + key)}")
    values = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        kind = hints[f.name]
        key = prefix + f.name
        if is_dataclass(kind):
            values[f.name] = _build(kind, raw[f.name], key + ".", source)
        elif typing.get_origin(kind) is dict:
            values[f.name] = _mapping(raw[f.name], key, source)
        else:
            values[f.name] = _coerce(raw[f.name], kind, key, source)
    return cls(**values)


def _mapping(value: Any, key: str, source: str) -> dict[str, str]:
    """A table of name = "text" pairs (data.columns)."""
    if not isinstance(value, dict):
        raise GankitError(f"{source}: {key} = {shown(value)}: expected a table of names, e.g. [{key}] age = \"integer\"")
    for name, text in value.items():
        if not isinstance(text, str):
            raise GankitError(f"{source}: {key}.{name} = {shown(text)}: expected a string")
    return dict(value)


def _coerce(value: Any, kind: Any, key: str, source: str) -> Any:
    def bad(expected: str):
        return GankitError(f"{source}: {key} = {shown(value)}: expected {expected}")

    if kind is bool:
        if isinstance(value, bool):
            return value
        raise bad("true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad("an integer")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad("a number")
    if kind is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise bad("a string")
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[int, ...]: a list of any length
            if isinstance(value, (list, tuple)):
                return tuple(_coerce(v, args[0], key, source) for v in value)
            raise bad("a list of integers" if args[0] is int else "a list")
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_coerce(v, a, key, source) for v, a in zip(value, args))
        raise bad(f"a list of {len(args)} numbers")
    raise TypeError(f"config field {key} has unsupported type {kind}")


# --------------------------------------------------------------------------------------------- writing


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples become lists, as in TOML)."""

    def plain(v):
        if isinstance(v, dict):
            return dict(v)
        return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v

    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out[f.name] = to_dict(value) if is_dataclass(value) else plain(value)
    return out


def to_toml(config: Config) -> str:
    return tomli_w.dumps(to_dict(config))


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(to_toml(config), encoding="utf-8")


def unknown_key(key: str) -> str:
    """'unknown key ...' with the closest known keys, or the keys of the same section."""
    keys = all_keys()
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.8)
    if close:
        return f"unknown key {key!r}; did you mean {' or '.join(close)}?"
    section = key.rpartition(".")[0]
    same = [k for k in keys if k.rpartition(".")[0] == section] or [k for k in keys if "." not in k]
    return f"unknown key {key!r}; expected one of: {', '.join(same)}"


def all_keys() -> list[str]:
    return [k for k, _ in _flatten(to_dict(Config()))]


def _flatten(d: dict[str, Any], prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict) and prefix + k not in MAPPINGS:
            yield from _flatten(v, prefix + k + ".")
        else:
            yield prefix + k, v


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


__all__ = ["Config", "DataConfig", "EvalConfig", "ModelConfig", "LossConfig", "TrainConfig", "load_config", "apply_overrides",
           "from_dict", "to_dict", "to_toml", "save_config", "replace"]


from .config_rules import shown, validate  # noqa: E402  (the rules read the dataclasses above)
