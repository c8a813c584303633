"""Evaluation speed: how long `gankit eval` takes for 10,000 Fashion-MNIST samples with the bundled classifier.

    .venv/bin/python bench/eval_speed.py                 # the fashion-mnist recipe's generator, untrained
    .venv/bin/python bench/eval_speed.py --run runs/demo # a trained run (the time does not depend on training)
    .venv/bin/python bench/eval_speed.py --n 2000 --threads 1

Prints the time of each stage (loading the data, real features, generating, fake features, each
metric group) and the total, which is the bar: under 30 s on a 2-core CPU. Interpreter start-up and
`import torch` are printed separately and not counted.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

import gankit  # noqa: E402
from gankit.metrics import Evaluator  # noqa: E402
from gankit.metrics.evaluate import featurize, score  # noqa: E402

T_IMPORTED = time.perf_counter()
BAR_S = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a trained fashion-mnist run folder (default: the recipe's untrained G)")
    parser.add_argument("--n", type=int, default=10_000, help="generated and real samples (default 10000)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs; start-up and "
          f"imports {T_IMPORTED - T_START:.1f} s (not counted)", flush=True)

    times: dict[str, float] = {}
    t = time.perf_counter()
    if args.run:
        config = gankit.load_config(os.path.join(args.run, "config.toml"))
        data = gankit.load_data(config.data, config.seed)
        G, meta, _, _ = gankit.load_generator(args.run)
        z_dim = meta["model"]["z_dim"]
    else:
        config = gankit.load_config(gankit.recipe("fashion-mnist"))
        data = gankit.load_data(config.data, config.seed)
        G, _, _ = gankit.build_models(config, data)
        z_dim = config.model.z_dim
    times["load data and G"] = time.perf_counter() - t

    t = time.perf_counter()
    ev = Evaluator(data, config.eval, n_real=args.n, seed=0)
    times[f"real features ({len(ev.real.x)})"] = time.perf_counter() - t
    t = time.perf_counter()
    fake = ev.generate(G.eval(), z_dim, args.n, conditional=True, seed=0)
    times[f"generate ({args.n})"] = time.perf_counter() - t
    t = time.perf_counter()
    featurize(ev.extractor, fake)
    times[f"fake features ({args.n})"] = time.perf_counter() - t
    results = {}
    for name in ev.names:
        t = time.perf_counter()
        out, _ = score([name], ev.real, fake, ev.extractor, ev.structure)
        results.update(out)
        times[f"metric {name}"] = time.perf_counter() - t
    total = sum(times.values())
    for stage, seconds in times.items():
        print(f"  {stage:<28} {seconds:6.2f} s")
    verdict = "PASS" if total < BAR_S else "FAIL"
    print(f"total {total:.1f} s for {args.n} samples on {ev.extractor.name} features (bar: < {BAR_S:.0f} s): "
          f"{verdict}")
    print(json.dumps({"n": args.n, "threads": torch.get_num_threads(), "total_s": round(total, 2),
                      "stages_s": {k: round(v, 3) for k, v in times.items()}, "metrics": results}))
    return 0 if total < BAR_S else 1


if __name__ == "__main__":
    sys.exit(main())
