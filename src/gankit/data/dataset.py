"""The ``Dataset`` every loader produces, and the registry loaders are found in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from ..config import DataConfig
from ..errors import GankitError
from ..registry import Registry


@dataclass
class Translation:
    """Image-to-image data: what G takes (``source``, domain A) beside the ``x`` it should make (domain B).

    Pixels in [0, 1], [N, C, H, W] float32. Paired data (pix2pix, super-resolution): ``source[i]`` goes with
    ``x[i]``. Unpaired (CycleGAN): the two domains, of any sizes. ``held_source``/``held_target``: a fixed set
    kept out of training, for the pictures and ``gankit eval`` (paired: inputs and their targets; unpaired:
    domain A's and domain B's held-out images).
    """

    source: torch.Tensor  # [N_a, C_a, H_a, W_a] in [0, 1]
    held_source: torch.Tensor  # [M_a, C_a, H_a, W_a]
    held_target: torch.Tensor  # [M_b, C, H, W]
    paired: bool = True
    factor: int = 1  # super-resolution: target side / input side; 1 for translation at one size
    task: str = "paired"  # sr | paired | unpaired: what the pictures and eval show
    domains: tuple[str, str] = ("A", "B")  # names of the input and output domains, for pictures and the manifest
    classes: tuple[int, int] | None = None  # Fashion-MNIST classes of domains A and B (sneaker2boot), for eval


@dataclass
class Anomaly:
    """Anomaly detection: normal data kept out of training, and a labelled test set (gankit.data.anomaly).

    In a ``RawData`` the tensors are in the data's own units; in a ``Dataset`` in the networks' units, scaled by
    the shift and scale of the training ``x`` (the normal training samples alone), as every input scored later is.
    """

    held: torch.Tensor  # [M, *shape] normal samples kept out of training: the threshold is set on them (game.fpr)
    test_x: torch.Tensor | None = None  # [T, *shape] labelled test samples, or None (the user's unlabelled data)
    test_y: torch.Tensor | None = None  # [T] int64: 1 = anomalous, 0 = normal
    test_classes: torch.Tensor | None = None  # [T] int64: each test sample's class index in class_names
    normal: str = ""  # the normal class's name ("" for the user's normal data)
    class_names: list[str] = field(default_factory=list)  # every class of the source set ([] when unlabelled)

    def scaled(self, shift: torch.Tensor, scale: torch.Tensor) -> "Anomaly":
        """The same record with its samples mapped by ``(v - shift) / scale``."""
        test_x = None if self.test_x is None else ((self.test_x - shift) / scale).contiguous()
        return replace(self, held=((self.held - shift) / scale).contiguous(), test_x=test_x)


@dataclass
class Semisup:
    """Semi-supervised learning: the labelled training samples and a labelled test set (gankit.data.semisup).

    In a ``RawData`` the tensors are in the data's own units; in a ``Dataset`` in the networks' units, scaled by
    the shift and scale of the training ``x`` (every training sample, labelled or not).
    """

    labelled_x: torch.Tensor  # [L, *shape] the training samples whose labels are kept (also in x)
    labelled_y: torch.Tensor  # [L] int64 class indices into class_names
    test_x: torch.Tensor | None = None  # [T, *shape] labelled test samples, or None (the user's data)
    test_y: torch.Tensor | None = None  # [T] int64
    class_names: list[str] = field(default_factory=list)

    def scaled(self, shift: torch.Tensor, scale: torch.Tensor) -> "Semisup":
        """The same record with its samples mapped by ``(v - shift) / scale``."""
        test_x = None if self.test_x is None else ((self.test_x - shift) / scale).contiguous()
        return replace(self, labelled_x=((self.labelled_x - shift) / scale).contiguous(), test_x=test_x)


@dataclass
class RawData:
    """What a loader returns: values in the data's own units, before normalisation."""

    x: torch.Tensor  # [N, F] rows, [N, C, H, W] images or [N, T, F] sequences, float32
    y: torch.Tensor | None = None  # [N] int64 class indices 0..K-1
    class_names: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    normalize: str = "none"  # what "auto" means for this data
    value_range: tuple[float, float] | None = None  # known range, used by minmax instead of the observed one
    modes: torch.Tensor | None = None  # [M, F] centres of a mixture, when known
    mode_std: float = 0.0
    lengths: torch.Tensor | None = None  # sequences of varying length: [N] int64 valid steps, zero padding after
    vocab: list[str] = field(default_factory=list)  # text: the symbol of each one-hot feature; vocab[0] ends an item
    table: Any = None  # tables: the TableTransformer that encoded x (gankit.data.table_transform)
    frame: Any = None  # tables: the training rows as typed values (a pandas DataFrame), for the metrics
    holdout: Any = None  # tables: the rows held out of training (data.holdout), for efficacy and privacy
    translation: Translation | None = None  # image-to-image: G's inputs; x then holds the targets (domain B)
    anomaly: Anomaly | None = None  # anomaly detection: x holds the normal training samples alone
    semisup: Semisup | None = None  # semi-supervised: x holds every training sample, the labelled ones also here


# A loader: (config, seed) -> RawData
Loader = Callable[[DataConfig, int], RawData]
DATASETS: Registry[Loader] = Registry("data set")


@dataclass
class Dataset:
    """Training data in the space the networks see: ``raw = x * scale + shift``."""

    name: str
    x: torch.Tensor  # [N, F] rows, [N, C, H, W] images or [N, T, F] sequences, float32, normalised
    y: torch.Tensor | None  # [N] int64, or None when unlabelled
    shift: torch.Tensor  # [F] for rows and sequences, [C, 1, 1] for images: per feature or channel
    scale: torch.Tensor
    normalize: str  # none | standard | minmax, as applied
    class_names: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    modes: torch.Tensor | None = None  # [M, F] in raw units
    mode_std: float = 0.0
    lengths: torch.Tensor | None = None  # [N] valid steps of each sequence when they vary (padding is zero)
    vocab: list[str] = field(default_factory=list)  # text: one-hot feature i is symbol vocab[i]; vocab[0] = end
    table: Any = None  # tables: the TableTransformer that encoded the rows x [N, D] (gankit.data.table_transform)
    frame: Any = None  # tables: the training rows as typed values (a pandas DataFrame)
    holdout: Any = None  # tables: the typed rows held out of training (data.holdout), or None
    translation: Translation | None = None  # image-to-image: G's inputs (pixels in [0, 1]); x holds the targets
    anomaly: Anomaly | None = None  # anomaly detection: held normal and labelled test samples, in the networks' units
    semisup: Semisup | None = None  # semi-supervised: the labelled and the test samples, in the networks' units

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: (F,) for rows, (C, H, W) for images, (T, F) for sequences."""
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def is_sequence(self) -> bool:
        return self.x.dim() == 3

    @property
    def is_text(self) -> bool:
        return bool(self.vocab)

    @property
    def is_translation(self) -> bool:
        return self.translation is not None

    @property
    def is_table(self) -> bool:
        return self.table is not None

    @property
    def is_anomaly(self) -> bool:
        return self.anomaly is not None

    @property
    def is_semisup(self) -> bool:
        return self.semisup is not None

    def mask(self) -> torch.Tensor | None:
        """[N, T] True at the valid steps of each sequence, or None when all are full length."""
        return None if self.lengths is None else steps_mask(self.lengths, self.x.shape[1])

    @property
    def num_features(self) -> int:
        return math.prod(self.shape)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.y is not None else 0

    def class_frequencies(self) -> torch.Tensor:
        """[K] share of each class, for drawing labels of generated samples like the data's."""
        return torch.bincount(self.y, minlength=self.num_classes).float() / len(self)

    def to_raw(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.device) + self.shift.to(x.device)



def steps_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[N] lengths -> [N, steps] bool, True at t < length."""
    return torch.arange(steps, device=lengths.device) < lengths[:, None]


def label_index(class_names: list[str], label: str | int) -> int:
    """A class by its name in the data (``"7"``, ``"cat"``) or by its index."""
    if not class_names:
        raise GankitError(f"label {label!r}: the data has no labels")
    text = str(label)
    if text in class_names:
        return class_names.index(text)
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    folded = [i for i, name in enumerate(class_names) if name.casefold() == text.casefold()]
    if len(folded) == 1:  # "sneaker" for "Sneaker", where that is unambiguous
        return folded[0]
    raise GankitError(f"unknown label {text!r}; expected one of: {', '.join(class_names)}")


# data sets read from data.path, and so named by it
FROM_PATH = ("file", "idx", "images", "lines", "table", "pairs")


def load_data(config: DataConfig, seed: int = 0) -> Dataset:
    """Load the configured data set, apply the image options (size, channels) and normalise it.
    With data.normal_class or data.normal_holdout set, the anomaly-detection split (gankit.data.anomaly); with
    data.labels_per_class or data.semisupervised, the semi-supervised one (gankit.data.semisup)."""
    if config.normal_class or config.normal_holdout:
        from .anomaly import anomaly_data  # it reads the loaders registered here

        raw = anomaly_data(config, seed)
    elif config.labels_per_class or config.semisupervised:
        from .semisup import semisup_data  # it reads the loaders registered here

        raw = semisup_data(config, seed)
    else:
        raw = _image_options(DATASETS.get(config.name)(config, seed), config)
    mode = raw.normalize if config.normalize == "auto" else config.normalize
    return _normalised(raw, mode, configured_data_name(config))


def configured_data_name(config) -> str:
    """The name ``load_data`` gives the data of ``config`` (a Config or its data section): a path for files."""
    data = getattr(config, "data", config)
    if data.name == "unpaired" and data.path_a and data.path_b:
        return f"{data.path_a}|{data.path_b}"
    return data.path if data.name in FROM_PATH and data.path else data.name


def _image_options(raw: RawData, config: DataConfig) -> RawData:
    """data.channels and data.image_size for any image set: grey <-> RGB, centre square resized to a side."""
    if raw.x.dim() != 4:  # rows and sequences
        for key, value in (("image_size", config.image_size), ("channels", config.channels)):
            if value:
                raise GankitError(f"data.{key} = {value}: applies to images only; data set {config.name!r} "
                                  f"holds rows of {raw.x.shape[1]} values")
        return raw
    x, channels, size = raw.x, config.channels, config.image_size  # [N, C, H, W]
    if channels and x.shape[1] not in (1, 3):
        raise GankitError(f"data.channels = {channels}: the images have {x.shape[1]} channels; only grey (1) and "
                          f"RGB (3) can be converted")
    if channels == 1 and x.shape[1] == 3:  # before resizing: one channel is cheaper to resize than three
        x = grey(x)
    if size and x.shape[2:] != (size, size):
        x = resize(x, size)
        if raw.value_range is not None:  # float rounding only: the filters' weights are >= 0 and sum to 1
            x = x.clamp_(*raw.value_range)
    if channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # [N, 3, H, W]; materialised by the normalisation
    return replace(raw, x=x)


def grey(x: torch.Tensor) -> torch.Tensor:
    """RGB [N, 3, H, W] -> grey [N, 1, H, W]: luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601)."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, size, size]: the centre square, resized bilinearly with antialiasing
    (the same as resizing the shorter side to ``size``, then centre-cropping)."""
    h, w = x.shape[2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = x[:, :, top:top + side, left:left + side]
    # Antialiasing matters when shrinking; when enlarging it equals plain bilinear, which is twice as fast.
    return torch.nn.functional.interpolate(square, size=(size, size), mode="bilinear", antialias=size < side,
                                           align_corners=False)


def _normalised(raw: RawData, mode: str, name: str) -> Dataset:
    x = raw.x
    if x.dim() == 3:  # sequences: per feature over every valid step; [N, T, F] -> [M, F] for the statistics
        mask = None if raw.lengths is None else steps_mask(raw.lengths, x.shape[1])
        shift, scale = _normalisation(x.reshape(-1, x.shape[2]) if mask is None else x[mask], mode, raw.value_range)
        x = (x - shift).div_(scale)
        if mask is not None:
            x = x.masked_fill_(~mask[:, :, None], 0.0)  # padding stays zero in the networks' units too
    else:
        shift, scale = _normalisation(x, mode, raw.value_range)
        x = (x - shift).div_(scale)
    return Dataset(name=name, x=x.contiguous(), y=raw.y, shift=shift, scale=scale,
                   normalize=mode, class_names=raw.class_names, columns=raw.columns, modes=raw.modes,
                   mode_std=raw.mode_std, lengths=raw.lengths, vocab=raw.vocab, table=raw.table,
                   frame=raw.frame, holdout=raw.holdout, translation=raw.translation,
                   anomaly=None if raw.anomaly is None else raw.anomaly.scaled(shift, scale),
                   semisup=None if raw.semisup is None else raw.semisup.scaled(shift, scale))


def _normalisation(x: torch.Tensor, mode: str, value_range: tuple[float, float] | None = None):
    """(shift, scale) per feature of rows [N, F], or per channel of images [N, C, H, W]."""
    dims = [d for d in range(x.dim()) if d != 1]
    like = x.new_zeros(x.shape[1:2] + (1,) * (x.dim() - 2))  # [F] or [C, 1, 1]
    if mode == "none":
        return torch.zeros_like(like), torch.ones_like(like)
    if mode == "standard":
        shift, scale = x.mean(dims, keepdim=True)[0], x.std(dims, keepdim=True)[0]
    elif mode == "minmax":  # to [-1, 1]
        if value_range is not None:
            lo, hi = (torch.full_like(like, v) for v in value_range)
        else:
            lo, hi = x.amin(dims, keepdim=True)[0], x.amax(dims, keepdim=True)[0]
        shift, scale = (hi + lo) / 2, (hi - lo) / 2
    else:
        raise ValueError(mode)
    return shift, torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant column stays as it is


def from_arrays(x, y=None, normalize: str | None = None, name: str = "array",
                class_names: list[str] | None = None) -> Dataset:
    """A ``Dataset`` from in-memory data: rows [N, F] (or values [N]) or images [N, C, H, W] (or [N, H, W]),
    with optional integer labels [N]. ``normalize``: "standard" for rows and "minmax" for images unless given
    (as the built-in sets do: images then map back to pixels by the data's own range, not each batch's)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() in (1, 3):
        x = x.unsqueeze(1)  # values -> [N, 1]; grey images -> [N, 1, H, W]
    if x.dim() not in (2, 4) or len(x) == 0:
        raise GankitError(f"data of shape {tuple(x.shape)}: expected rows [N, F] or images [N, C, H, W] with N > 0")
    if not torch.isfinite(x).all():
        raise GankitError("data holds NaN or Inf; expected finite numbers")
    labels = None
    if y is not None:
        labels = torch.as_tensor(y).reshape(-1)
        if labels.is_floating_point() and not (labels == labels.round()).all():  # .long() would truncate 2.5
            raise GankitError("labels hold non-integer values; expected integer classes >= 0")
        labels = labels.long()
        if len(labels) != len(x) or labels.min() < 0:
            raise GankitError(f"labels: expected {len(x)} integer classes >= 0, got {len(labels)} values")
        classes = int(labels.max()) + 1
        if class_names is not None and len(class_names) < classes:
            raise GankitError(f"class_names: {len(class_names)} names for labels up to {classes - 1}; expected at "
                              f"least {classes}")
        class_names = class_names or [str(i) for i in range(classes)]
    columns = [f"x{i}" for i in range(x.shape[1])] if x.dim() == 2 else []
    normalize = normalize or ("standard" if x.dim() == 2 else "minmax")
    return _normalised(RawData(x=x, y=labels, class_names=class_names or [], columns=columns), normalize, name)


ARRAYS = "array"  # data.name of a run that trained on data passed from Python: there is no file to load it from


@DATASETS.register(ARRAYS)
def passed_from_python(config, seed: int) -> RawData:
    raise GankitError('this run trained on data passed from Python (data.name = "array" in its config.toml), which '
                      'is not on disk: pass the same data again, as gankit.train(run_dir=..., resume=True, data=...) '
                      'or gankit.evaluate(run_dir, data=...)')
