"""Load on `gankit serve`: requests/s, p50/p99 latency and errors at several concurrencies, on both backends.

    python bench/serve_load.py            # ~2 minutes on 2 cores
    python bench/serve_load.py --quick    # ~40 s

It trains a small conditional DCGAN on digits (the model's weights don't change its speed, but they are
real), exports it with ONNX, then for each backend starts `gankit serve` in a subprocess on 127.0.0.1 and
sends a bounded number of POST /v1/generate requests from this process, `--concurrency` at a time, each
on its own keep-alive connection. The same load at the highest concurrency with batching switched off
(`--max-batch 1`: one request per model call) shows what micro-batching buys. The server's resident
memory is read from /proc after warm-up and after each level: it must stay flat. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import gankit  # noqa: E402
from gankit.serve import wait_until_up  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(url: str, total: int, concurrency: int, body: dict) -> dict:
    """``total`` requests, ``concurrency`` in flight; latency of each, errors counted (non-200 or failed)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        nonlocal errors
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    ok = client.post("/v1/generate", json={**body, "seed": i}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors += not ok

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": total, "req_per_s": total / wall,
            "samples_per_s": total * body["n"] / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": errors}


def serve_and_load(export: Path, backend: str, levels: list[int], total: int, body: dict, extra: list[str],
                   label: str) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(export), "--port", str(port),
                               "--backend", backend, "--log-level", "warning", *extra],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(url, timeout=120)
        load(url, 30, 4, body)  # warm-up: connections, allocator, the first model calls
        rss = [rss_mb(server.pid)]
        rows = []
        for c in levels:
            row = load(url, total, c, body)
            row.update(backend=backend, setting=label, rss_mb=rss_mb(server.pid))
            rss.append(row["rss_mb"])
            rows.append(row)
            print(f"  {backend:5s} {label:12s} c={c:<3d} {row['req_per_s']:8.1f} req/s  "
                  f"{row['samples_per_s']:9.0f} samples/s  p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                  f"errors {row['errors']}  server RSS {row['rss_mb']:.0f} MB", flush=True)
        import httpx

        health = httpx.get(f"{url}/health").json()
        return {"rows": rows, "rss_mb": rss, "batches": health["batches"], "requests": health["requests"]}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests and training steps")
    parser.add_argument("--requests", type=int, help="requests per concurrency level (default 400; quick 150)")
    parser.add_argument("--n", type=int, default=16, help="samples per request")
    parser.add_argument("--format", default="npy", choices=["json", "npy", "png", "zip"])
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--backends", default="torch,onnx")
    args = parser.parse_args()
    total = args.requests or (150 if args.quick else 400)
    levels = [int(c) for c in args.concurrency.split(",")]
    body = {"n": args.n, "format": args.format, "labels": "3"}

    with tempfile.TemporaryDirectory() as tmp:
        run, export = Path(tmp) / "run", Path(tmp) / "export"
        steps = 50 if args.quick else 300
        print(f"training digits-dcgan for {steps} steps, exporting with ONNX ...", flush=True)
        gankit.train("digits-dcgan", run_dir=run, progress=False,
                     overrides=[f"train.steps={steps}", "eval.every=0", "train.plot_every=100000"])
        result = gankit.export(run, export, ["safetensors", "onnx"])
        print(f"ONNX check: max abs difference {result.onnx_max_abs_diff:.2g}; "
              f"{total} requests of n={args.n} ({args.format}) per level, concurrency {args.concurrency}", flush=True)
        figures: dict = {"n": args.n, "format": args.format, "requests_per_level": total, "cpus": os.cpu_count()}
        for backend in args.backends.split(","):
            batched = serve_and_load(export, backend, levels, total, body, [], "batched")
            single = serve_and_load(export, backend, levels[-1:], total, body, ["--max-batch", "1"], "one-at-a-time")
            top, alone = batched["rows"][-1], single["rows"][0]
            growth = batched["rss_mb"][-1] - batched["rss_mb"][0]
            print(f"  {backend}: micro-batching at c={levels[-1]}: {top['req_per_s'] / alone['req_per_s']:.2f}x the "
                  f"requests/s of one request per model call ({batched['requests']} requests in "
                  f"{batched['batches']} model calls); server memory {batched['rss_mb'][0]:.0f} -> "
                  f"{batched['rss_mb'][-1]:.0f} MB ({growth:+.0f} MB)", flush=True)
            figures[backend] = {
                **{f"c{r['concurrency']}": {k: round(r[k], 2) for k in ("req_per_s", "p50_ms", "p99_ms")}
                   | {"errors": r["errors"]} for r in batched["rows"]},
                f"c{levels[-1]}_one_at_a_time": {k: round(alone[k], 2) for k in ("req_per_s", "p50_ms", "p99_ms")},
                "batching_speedup": round(top["req_per_s"] / alone["req_per_s"], 2),
                "rss_mb": [round(v) for v in batched["rss_mb"]],
                "errors": sum(r["errors"] for r in batched["rows"] + single["rows"]),
            }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
