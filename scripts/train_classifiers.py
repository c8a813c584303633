"""Train the classifiers that ship in src/gankit/metrics/weights/ (features for Fréchet distances and
classifier scores on small images; see gankit.metrics.classifier).

    .venv/bin/python scripts/train_classifiers.py [--only fashion-mnist|digits] [--out DIR]

Seeded and deterministic on a given machine and thread count (2 threads, as the shipped files were made).
Fashion-MNIST: the official 60,000 / 10,000 split, about 5 minutes on 2 idle CPU cores. Digits (scikit-learn's
8x8): a fixed stratified 75 / 25 split recorded in the metadata, a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.dataset import resize
from gankit.metrics.classifier import CLASSIFIERS_DIR, SmallCNN

SEED = 0
DIGITS_SPLIT = {"test_size": 0.25, "random_state": 0, "stratify": True}  # sklearn train_test_split arguments


@dataclass
class Recipe:
    epochs: int
    batch_size: int
    lr: float  # peak of a one-cycle schedule, AdamW
    weight_decay: float
    shift: int  # random translation by up to this many pixels (zero padding)
    flip: bool  # random horizontal flips (clothing is left-right symmetric; digits are not)
    blur: bool = False  # the net sees its input resized to twice its side and back (see SmallCNN)


RECIPES = {
    "fashion-mnist": Recipe(epochs=12, batch_size=128, lr=3e-3, weight_decay=5e-4, shift=2, flip=True, blur=True),
    "digits": Recipe(epochs=60, batch_size=64, lr=3e-3, weight_decay=5e-4, shift=1, flip=False, blur=True),
}


def load_fashion_mnist():
    """Train and test images [N, 1, 28, 28] in [0, 1] and labels, the official split."""
    from gankit.data.idx import FASHION_CLASSES, FASHION_DIR, read_split

    fix = "install it with `apt-get install dataset-fashion-mnist`"
    (x_tr, y_tr, _), (x_te, y_te, _) = (read_split(FASHION_DIR, s, fix) for s in ("train", "test"))
    data = [torch.from_numpy(x.astype(np.float32) / 255).unsqueeze(1) for x in (x_tr, x_te)]
    labels = [torch.from_numpy(y.astype(np.int64)) for y in (y_tr, y_te)]
    return data[0], labels[0], data[1], labels[1], FASHION_CLASSES, \
        f"Fashion-MNIST official test split ({FASHION_DIR}/t10k-*), {len(y_te)} images"


def load_digits_split():
    """scikit-learn's 8x8 digits, grey levels 0..16 scaled to [0, 1], split by DIGITS_SPLIT."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x, y = d.images.astype(np.float32) / 16, d.target.astype(np.int64)
    args = dict(DIGITS_SPLIT, stratify=y if DIGITS_SPLIT["stratify"] else None)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, **args)
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    return t(x_tr).unsqueeze(1), t(y_tr), t(x_te).unsqueeze(1), t(y_te), [str(k) for k in range(10)], \
        f"sklearn load_digits, held-out {len(y_te)} of {len(y)} by train_test_split({json.dumps(DIGITS_SPLIT)})"


def augment(x: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> torch.Tensor:
    """Random per-image shifts (crop from a zero-padded copy) and optional horizontal flips."""
    n, _, h, w = x.shape
    s = recipe.shift
    if s:
        padded = F.pad(x, (s, s, s, s))  # [N, 1, H+2s, W+2s]
        dy, dx = (torch.randint(0, 2 * s + 1, (n,), generator=gen) for _ in range(2))
        rows = (dy[:, None] + torch.arange(h))[:, :, None]  # [N, H, 1]
        cols = (dx[:, None] + torch.arange(w))[:, None, :]  # [N, 1, W]
        x = padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)  # [N, 1, H, W]
    if recipe.flip:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


@torch.no_grad()
def accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(chunk).argmax(1) for chunk in x.split(1000)])
    return (pred == y).float().mean().item()


def train(name: str, out: Path) -> None:
    recipe = RECIPES[name]
    x_tr, y_tr, x_te, y_te, classes, test_set = load_fashion_mnist() if name == "fashion-mnist" else load_digits_split()
    torch.manual_seed(SEED)  # weights and dropout
    gen = torch.Generator().manual_seed(SEED)  # shuffling and augmentation
    config = dict(image_size=x_tr.shape[-1], num_classes=len(classes), in_channels=1, width=32, feature_dim=128,
                  **({"blur": True} if recipe.blur else {}))
    model = SmallCNN(**config)
    steps_per_epoch = -(-len(x_tr) // recipe.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
    start = time.time()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x_tr), generator=gen).split(recipe.batch_size):
            loss = F.cross_entropy(model(augment(x_tr[idx], recipe, gen)), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"{name} epoch {epoch}/{recipe.epochs}: train loss {total / len(x_tr):.4f}, "
              f"test accuracy {accuracy(model, x_te, y_te):.4f} ({time.time() - start:.0f} s)", flush=True)
    acc = accuracy(model, x_te, y_te)
    side = 2 * x_te.shape[-1]
    enlarged = resize(x_te, side).clamp(0, 1)  # as data.image_size = 2x would give them
    acc_resized = accuracy(model, enlarged if model.blur else resize(enlarged, x_te.shape[-1]), y_te)
    n_params = sum(p.numel() for p in model.parameters())
    meta = {
        "config": json.dumps(config), "classes": json.dumps(classes), "test_accuracy": f"{acc:.4f}",
        "test_accuracy_resized": f"{acc_resized:.4f}",  # test images enlarged to twice their side
        "test_set": test_set, "seed": str(SEED), "epochs": str(recipe.epochs), "n_parameters": str(n_params),
        "recipe": json.dumps(recipe.__dict__), "torch_version": torch.__version__,
        "train_script": "scripts/train_classifiers.py",
    }
    if name == "digits":
        meta["test_split"] = json.dumps(DIGITS_SPLIT)
    path = save(model, out / f"{name}.safetensors", meta)
    print(f"{name}: test accuracy {acc:.4f} ({acc_resized:.4f} enlarged to {side}x{side}), {n_params} parameters, {path.stat().st_size} bytes -> {path} "
          f"({time.time() - start:.0f} s)", flush=True)


def save(model: SmallCNN, path: Path, meta: dict[str, str]) -> Path:
    """Write weights and metadata to a temporary file, then rename it: a reader never sees half a file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)  # safetensors creates 0600 files; the package must be readable by all
    os.replace(tmp, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(RECIPES), help="train one classifier (default: all)")
    parser.add_argument("--out", type=Path, default=CLASSIFIERS_DIR, help="folder for {name}.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for name in [args.only] if args.only else list(RECIPES):
        train(name, args.out)


if __name__ == "__main__":
    main()
