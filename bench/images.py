"""Image recipes: training time, and whether each class's samples are recognisably that class.

Trains the conditional DCGAN recipes (`fashion-mnist`, the demo's, and `digits-dcgan`) as a user
would, then asks an independent classifier (scikit-learn's logistic regression trained on the real
training images) which class each generated sample shows. "Class accuracy" is the share of samples
recognised as the class they were generated for; the same classifier's accuracy on the real test
images is printed beside it as the ceiling.

    python bench/images.py                      # both recipes, as configured
    python bench/images.py --recipes digits-dcgan --steps 300   # a quick look
    python bench/images.py --set train.precision=fp32 --set train.reuse_fake=false   # fast settings off
Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import gankit
from gankit.config import apply_overrides

PER_CLASS = 200  # generated samples scored per class


def classifier(config, seed: int = 0):
    """Logistic regression on the real images at the recipe's resolution; returns (model, test accuracy)."""
    train = gankit.load_data(config.data, seed)
    if config.data.name == "fashion-mnist":
        test = gankit.load_data(replace(config.data, split="test"), seed)
        x_train, y_train, x_test, y_test = train.x, train.y, test.x, test.y
    else:  # digits: a fixed 80/20 split
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        cut = int(0.8 * len(train))
        x_train, y_train = train.x[order[:cut]], train.y[order[:cut]]
        x_test, y_test = train.x[order[cut:]], train.y[order[cut:]]
    model = LogisticRegression(max_iter=300, C=0.1)
    with warnings.catch_warnings():  # 300 iterations are plenty for a yardstick; sklearn would like more
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features(x_train), y_train.numpy())
    return model, float(model.score(features(x_test), y_test.numpy()))


def features(x: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] at 14x14 at most (enough to tell the classes apart; keeps the fit quick)."""
    if x.shape[-1] > 14:
        x = F.adaptive_avg_pool2d(x, 14)
    return x.flatten(1).numpy()


def bench(name: str, steps: int | None, seed: int, overrides: list[str] = ()) -> dict:
    config = apply_overrides(gankit.load_config(gankit.recipe(name)), [f"seed={seed}", *overrides])
    if steps:
        config = apply_overrides(config, [f"train.steps={steps}"])
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / name
        start = time.perf_counter()
        gankit.train(config, run_dir=run_dir, progress=False)
        seconds = time.perf_counter() - start
        data = gankit.load_data(config.data, seed)
        G, meta, shift, scale = gankit.load_generator(run_dir)
        k = data.num_classes
        y = torch.arange(k).repeat_interleave(PER_CLASS)
        z = torch.randn(len(y), meta["model"]["z_dim"], generator=torch.Generator().manual_seed(seed + 100))
        with torch.no_grad():
            fake = torch.cat([G(z[i:i + 1000], y[i:i + 1000]) for i in range(0, len(y), 1000)])
    model, real_accuracy = classifier(config, seed)
    predicted = model.predict(features(fake))
    per_class = [(predicted[y.numpy() == c] == c).mean() for c in range(k)]
    return {"recipe": name, "seed": seed, "steps": config.train.steps, "train_seconds": round(seconds, 1),
            "class_accuracy": round(float(np.mean(per_class)), 4),
            "worst_class": data.class_names[int(np.argmin(per_class))], "worst_class_accuracy": round(float(min(per_class)), 4),
            "real_test_accuracy": round(real_accuracy, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="fashion-mnist,digits-dcgan")
    parser.add_argument("--steps", type=int, help="override the recipes' step counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set train.precision=fp32")
    args = parser.parse_args()
    results = []
    for name in args.recipes.split(","):
        r = bench(name, args.steps, args.seed, args.overrides)
        results.append(r)
        print(f"{r['recipe']:>14}: {r['steps']} steps in {r['train_seconds']:.0f} s; samples recognised as their class: "
              f"{r['class_accuracy']:.1%} (worst: {r['worst_class']} {r['worst_class_accuracy']:.1%}); "
              f"the classifier on real test images: {r['real_test_accuracy']:.1%}", flush=True)
    print(json.dumps({"images": results}))


if __name__ == "__main__":
    main()
