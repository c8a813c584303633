"""What stands between HTTP and a served model: the micro-batching queue of generate requests (one model thread,
concurrent requests' rows run in one call) and the ASGI body limit that answers 413 in the server's JSON."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .export import ExportedGenerator
    from .serve import ServeSettings
    from .table_export import ExportedTable


class MicroBatcher:
    """Collects (z, y) of concurrent requests, runs them through the model in one call, hands each its rows."""

    def __init__(self, model: ExportedGenerator | ExportedTable, settings: ServeSettings):
        self.model, self.settings = model, settings
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="gankit-model")  # model calls and encoding
        self.requests = self.batches = self.rows = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=False)

    def served(self, batches: int, rows: int) -> None:
        """Count a request answered outside the queue (a translator's or scorer's) in /health's figures."""
        self.requests, self.batches, self.rows = self.requests + 1, self.batches + batches, self.rows + rows

    async def run(self, z: np.ndarray, y: np.ndarray | None) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((z, y, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        window = self.settings.batch_window_ms / 1000
        while True:
            items = [await self.queue.get()]
            rows = len(items[0][0])
            deadline = loop.time() + window
            while rows < self.settings.max_batch:
                try:
                    item = self.queue.get_nowait() if window <= 0 else await asyncio.wait_for(
                        self.queue.get(), max(deadline - loop.time(), 0))
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                items.append(item)
                rows += len(item[0])
            items = [it for it in items if not it[2].done()]  # a client that went away needs no rows
            if not items:
                continue
            z = np.concatenate([it[0] for it in items])
            y = None if items[0][1] is None else np.concatenate([it[1] for it in items])
            try:
                out = await loop.run_in_executor(self.executor, self.model.run, z, y, self.settings.backend)
            except Exception as e:  # the model failed: every waiting request learns why
                for it in items:
                    if not it[2].done():
                        it[2].set_exception(e)
                continue
            self.requests, self.batches, self.rows = self.requests + len(items), self.batches + 1, self.rows + len(z)
            start = 0
            for zi, _, future in items:
                if not future.done():
                    future.set_result(out[start:start + len(zi)])
                start += len(zi)


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets a JSON 413, declared (Content-Length) or streamed.

    Starlette's own limit answers in plain text; this one answers like every other error here.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            body = json.dumps({"error": f"request body of {declared.decode('latin-1')[:20]} bytes; the limit is "
                                        f"{self.limit}", "detail": None}).encode()
            await send({"type": "http.response.start", "status": 413 if declared.isdigit() else 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        received = 0

        async def counted():  # a chunked body has no Content-Length: count it as it arrives
            nonlocal received
            from starlette.exceptions import HTTPException

            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)
