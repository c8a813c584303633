"""Load on `gankit serve`: requests/s, p50/p99 latency and errors at several concurrencies, on both backends.

    python bench/serve_load.py            # ~2 minutes on 2 cores
    python bench/serve_load.py --quick    # ~40 s

It trains a conditional 32x32 DCGAN on digits (the model's weights don't change its speed, but they are
real), exports it with ONNX, then for each backend starts `gankit serve` in a subprocess on 127.0.0.1 and
sends a bounded number of POST /v1/generate requests from this process, `--concurrency` at a time, each
on its own keep-alive connection. The same load at the highest concurrency with batching switched off
(`--max-batch 1`: one request per model call) shows what micro-batching buys. The server's resident
memory is read from /proc after warm-up (4,000 requests at full load, over which the allocator settles) and
after each level: it must stay flat. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import gankit  # noqa: E402
from gankit.serve import wait_until_up  # noqa: E402


MODEL = ["data.image_size=32", "model.g_hidden=64", "model.d_hidden=32"]  # G: 4x4x256 -> 32x32, 1.1 GFLOP per 16


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
    """``total`` requests, ``concurrency`` in flight, each on its own keep-alive connection: latencies and errors.

    The client is a few lines of asyncio speaking HTTP/1.1: a Python HTTP library would spend more of the 2
    cores than the server it measures (32 threads of httpx halved the server's figures here).
    """
    return asyncio.run(_load(url, total, concurrency, body))


async def _load(url: str, total: int, concurrency: int, body: dict) -> dict:
    host, port = url.removeprefix("http://").split(":")
    jobs = iter(range(total))
    latencies: list[float] = []
    errors = 0

    async def connection():
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in jobs:
                payload = json.dumps({**body, "seed": i}).encode()
                start = time.perf_counter()
                writer.write(b"POST /v1/generate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(payload), payload))
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                errors += status != 200
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    done = len(latencies)
    return {"concurrency": concurrency, "requests": done, "req_per_s": done / wall,
            "samples_per_s": done * body["n"] / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": errors + total - done}


def serve_and_load(export: Path, backend: str, levels: list[int], total: int, body: dict, extra: list[str],
                   label: str, warmup: int = 4000) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(export), "--port", str(port),
                               "--backend", backend, "--log-level", "warning", *extra],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(url, timeout=120)
        # warm-up at full load: the allocator's high-water mark settles after ~4,000 requests (then flat over
        # 10,000 more here); memory is compared from there
        load(url, warmup, max(levels), body)
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
        with urllib.request.urlopen(f"{url}/health") as r:
            health = json.load(r)
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
    parser.add_argument("--n", type=int, default=1, help="samples per request (1: the interactive case, where batching pays)")
    parser.add_argument("--format", default="npy", choices=["json", "npy", "png", "zip"])
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--backends", default="torch,onnx")
    args = parser.parse_args()
    total = args.requests or (150 if args.quick else 400)
    warmup = 500 if args.quick else 4000
    levels = [int(c) for c in args.concurrency.split(",")]
    body = {"n": args.n, "format": args.format, "labels": "3"}

    with tempfile.TemporaryDirectory() as tmp:
        run, export = Path(tmp) / "run", Path(tmp) / "export"
        steps = 30 if args.quick else 100
        print(f"training a 32x32 DCGAN on digits for {steps} steps, exporting with ONNX ...", flush=True)
        gankit.train("digits-dcgan", run_dir=run, progress=False, overrides=[
            f"train.steps={steps}", "eval.every=0", "train.plot_every=100000", *MODEL])
        result = gankit.export(run, export, ["safetensors", "onnx"])
        print(f"ONNX check: max abs difference {result.onnx_max_abs_diff:.2g}; "
              f"{total} requests of n={args.n} ({args.format}) per level, concurrency {args.concurrency}", flush=True)
        figures: dict = {"n": args.n, "format": args.format, "requests_per_level": total, "cpus": os.cpu_count()}
        for backend in args.backends.split(","):
            batched = serve_and_load(export, backend, levels, total, body, [], "batched", warmup)
            single = serve_and_load(export, backend, levels[-1:], total, body, ["--max-batch", "1"], "one-at-a-time",
                                    200)
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
