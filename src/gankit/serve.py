"""An HTTP server for a generator: a FastAPI app whose requests are micro-batched on the model.

    GET  /health        liveness, and how many requests and model batches were served
    GET  /v1/model      the export's manifest
    POST /v1/generate   {"n", "seed", "labels", "truncation", "format"} -> json | npy | png (a grid) | zip (PNGs)
    POST /v1/apply      image translators only: a PNG or an .npy of images -> the same of their translations
                        (``translator_serve``; a translator's body limit is ``max_image_body``)
    POST /v1/score      anomaly scorers only: JSON inputs, a PNG or an .npy -> their scores and flags
                        (``scorer_serve``; its body limit is ``max_image_body``, a JSON one's ``max_body``)
    POST /v1/classify   classifiers only (ssgan): the same inputs -> their classes and class probabilities
                        (``classifier_serve``; the same limits)

Sequence generators answer JSON with ``samples`` a list of [L_i, F] lists (each sample's valid steps) and their
``lengths``, or npy [n, T, F] zero past each length (the lengths in the X-Lengths header); text generators answer
JSON with ``samples`` a list of strings (npy, png and zip are refused for text). Table generators answer JSON
``records`` of the source's columns and types (``ExportedTable.records``) meeting the request's ``where``
({column: value}), with ``draws``, the rows drawn to get them (also in the X-Draws header).
    GET  /openapi.json  the schema (and /docs)

Concurrent requests are queued and run through the model together: a batch takes every request that
queued while the model was busy, and those arriving within ``batch_window_ms`` of its first, up to
``max_batch`` rows. (A window of 0 measured best here: 2 ms added 2 ms at concurrency 1 and gained nothing
at 32; bench/serve_load.py.) The inputs are drawn per request from its own seed, and G treats rows independently
(batch norm in eval mode), so batching never changes what a request gets. A table request runs whole on the
model's thread, one at a time (draws, decoding, ``where``): its rows are exactly the export's for its seed.

Every malformed request gets a 4xx with a JSON body ``{"error": "<one line>", "detail": ...}``: 413 for a
body over ``max_body`` bytes, 400 for a body that is not JSON text at all, 422 for anything else wrong in it
(types, ranges, labels, where, format).
"""


import asyncio
import io
import json
import math
import os
import secrets
import time
import zipfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from .errors import GankitError
from .export import ExportedGenerator, load
from .serve_requests import BodyLimit, MicroBatcher
from .classifier_serve import add_classifier_routes
from .input_serve import refuse_inputs
from .scorer_serve import add_scorer_routes
from .sequence_output import ragged, texts
from .table_export import ExportedTable
from .translator_serve import add_translator_routes, refuse_apply

SEED_MAX = 2 ** 63 - 1
FORMATS = ("json", "npy", "png", "zip")
MEDIA = {"json": "application/json", "npy": "application/octet-stream", "png": "image/png", "zip": "application/zip"}


@dataclass(frozen=True)
class ServeSettings:
    backend: str = "torch"  # torch | onnx
    max_n: int = 1024  # largest n one request may ask for
    batch_window_ms: float = 0.0  # how long a batch waits for more after its first; 0: takes what queued meanwhile
    max_batch: int = 256  # rows per model call (bounds memory); 1 runs one request at a time
    max_body: int = 64 * 1024  # bytes of a request body
    threads: int = 0  # model threads per worker; 0 = (cores - 1) / workers: a core is left for HTTP and encoding
    max_image_body: int = 32 * 1024 * 1024  # bytes of a translator's request body (a PNG or an .npy)
    max_pixels: int = 4096 * 4096  # input pixels (N H W) of one translator request


def create_app(model: ExportedGenerator | ExportedTable, settings: ServeSettings = ServeSettings()):
    """The FastAPI app serving ``model``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException

    if settings.backend == "onnx":
        model.onnx_session(settings.threads)  # fail at start, not at the first request
    batcher = MicroBatcher(model, settings)
    Label = Annotated[int, Field(ge=0)] | Annotated[str, Field(min_length=1, max_length=200)]
    Labels = Annotated[list[Label], Field(min_length=1, max_length=settings.max_n)]
    Value = Annotated[str, Field(max_length=200)] | int | Annotated[float, Field(allow_inf_nan=False)] | bool
    Where = Annotated[dict[Annotated[str, Field(min_length=1, max_length=200)], Value], Field(max_length=64)]

    class GenerateRequest(BaseModel):
        """What to generate. The same seed (with the same other fields) gives the same samples."""
        model_config = ConfigDict(extra="forbid", strict=True)
        n: int = Field(1, ge=1, le=settings.max_n, description="number of samples")
        seed: int | None = Field(None, ge=0, le=SEED_MAX, description="random seed; omitted: a fresh one, returned "
                                                                         "in the X-Seed header")
        labels: Label | Labels | None = Field(
            None, description="conditional models: one class (name or index) for all samples, or one per sample; "
                        "omitted: drawn with the training data's class frequencies")
        truncation: float | None = Field(None, gt=0, le=1e6, allow_inf_nan=False,
                                         description="truncation trick: entries of z beyond +-t are redrawn within it")
        where: Where | None = Field(
            None, description='tables: {column: value} conditions every row meets, e.g. {"weather": "sun", "wind": '
                              '3.5, "date": "2012-06-01"} (a category as written, true/false, a number, a date in the '
                              'column\'s format); met by conditioning G, else by drawing more rows (see "draws")')
        format: Literal["json", "npy", "png", "zip"] = Field(
            "json", description="json (samples in the data's units; sequences as lists of their valid steps, text "
                                "as strings, tables as records), npy (float32 array; not for text or tables), png "
                                "(one grid image, image models), zip (one PNG per sample, image models)")

    class Problem(BaseModel):
        error: str
        detail: Any = None

    errors = {400: {"model": Problem, "description": "the body is not JSON text"},
              413: {"model": Problem, "description": "request body too large"},
              422: {"model": Problem, "description": "invalid request: types, ranges, labels, where or format"}}

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="gankit generator", version=model.manifest["gankit_version"], lifespan=lifespan,
                  description=f"{model.manifest['family']} generator of {model.manifest['source']['data']}")
    app.state.batcher = batcher

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        detail = [{"loc": list(p.get("loc", ())), "msg": p.get("msg"), "type": p.get("type")} for p in problems]
        if first.get("type") == "json_invalid":  # not JSON text at all: 400, saying where the parser stopped
            at = first.get("loc", ("body", "?"))[-1]
            why = (first.get("ctx") or {}).get("error", first.get("msg"))
            return JSONResponse({"error": f"the body is not JSON: {why} (at character {at})", "detail": detail},
                                status_code=400)
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"error": f"{where}: {first.get('msg')}", "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail), "detail": None}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, with the requests and model batches served so far (batches < requests: batching works)."""
        return {"status": "ok", "backend": settings.backend, "requests": batcher.requests, "batches": batcher.batches,
                "rows": batcher.rows}

    @app.get("/v1/model")
    async def manifest() -> dict[str, Any]:
        """The export's manifest: architecture, latent, labels, output shape, range and units."""
        return model.manifest

    if model.kind == "scorer":  # samples in, anomaly scores and flags out: POST /v1/score
        return add_scorer_routes(app, model, batcher, settings)
    if model.kind == "classifier":  # samples in, classes out: POST /v1/classify
        return add_classifier_routes(app, model, batcher, settings)
    refuse_inputs(app, model)
    if model.kind == "translator":  # images in, images out: POST /v1/apply
        return add_translator_routes(app, model, batcher, settings)

    @app.post("/v1/generate", responses={200: {"content": {m: {} for m in MEDIA.values()},
                                               "description": "the samples in the requested format"}, **errors})
    async def generate(request: GenerateRequest) -> Response:
        """``n`` samples from the generator; seeded requests are reproducible."""
        seed = request.seed if request.seed is not None else secrets.randbelow(SEED_MAX)
        if model.kind == "table":
            return await _table_response(model, batcher, request, seed)
        if request.where is not None:
            return _problem(f"where: conditions are for table generators; this one makes {model.what}")
        if request.format in ("png", "zip") and not model.is_image:
            return _problem(f"format: {request.format} needs an image model; this one makes {model.what} "
                            f"(use json{'' if model.kind == 'text' else ' or npy'})")
        if request.format == "npy" and model.kind == "text":
            return _problem("format: npy holds numbers; this model makes text (use json: a list of strings)")
        if request.labels is not None and not model.conditional:
            return _problem("labels: this generator is unconditional")
        try:
            z, y = model.inputs(request.n, seed, request.labels, request.truncation)
        except GankitError as e:
            return _problem(str(e))
        out = await batcher.run(z, y)
        lengths = model.lengths(out, z)  # sequences: each one's valid steps (None for rows and images)
        # encoded on the model's own thread: with a pool of threads allocating and freeing the buffers, the
        # resident memory crept up (~2 MB per 1,000 requests, glibc arenas); on one thread it stays flat
        body = await asyncio.get_running_loop().run_in_executor(batcher.executor, _encode, model, out, y, seed,
                                                                request.format, lengths)
        headers = {"X-Seed": str(seed)}
        if y is not None and request.format != "json":
            headers["X-Labels"] = ",".join(map(str, y.tolist()))
        if lengths is not None and request.format == "npy":
            headers["X-Lengths"] = ",".join(map(str, lengths.tolist()))
        return Response(body, media_type=MEDIA[request.format], headers=headers)

    refuse_apply(app, model)
    return app


def _problem(message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "detail": None}, status_code=422)


async def _table_response(model: ExportedTable, batcher: MicroBatcher, request, seed: int):
    """A table request's JSON records, drawn, decoded and checked against ``where`` on the model's thread."""
    from fastapi.responses import Response

    wrong = [k for k in ("labels", "truncation") if getattr(request, k) is not None]
    if wrong or request.format != "json":
        return _problem(f"{(wrong or ['format'])[0]}: this model makes {model.what}; it answers json records, "
                        f"conditioned by where (not labels or truncation)")
    try:  # where is checked first: a bad column or value is a 422 before the model's thread is asked
        where = model.where_items(request.where)
        body, draws, calls = await asyncio.get_running_loop().run_in_executor(
            batcher.executor, model.json_body, request.n, seed, where, batcher.settings.backend)
    except GankitError as e:  # also when rejection gave up: the generator rarely makes such rows
        return _problem(str(e).replace("--where ", "where: ", 1))
    batcher.requests, batcher.batches, batcher.rows = (batcher.requests + 1, batcher.batches + calls,
                                                       batcher.rows + draws)
    return Response(body, media_type=MEDIA["json"], headers={"X-Seed": str(seed), "X-Draws": str(draws)})


def _encode(model: ExportedGenerator, out: np.ndarray, y: np.ndarray | None, seed: int, fmt: str,
            lengths: np.ndarray | None = None) -> bytes:
    """The response body of one request's rows ``out`` (network space); ``lengths``: of sequences, else None."""
    if fmt in ("png", "zip"):
        from .sampling import image_grid, to_image

        pixels = model.to_pixels(out)
        buffer = io.BytesIO()
        if fmt == "png":
            image_grid(pixels, nrow=math.ceil(math.sqrt(len(pixels))), min_width=0).save(buffer, format="PNG")
            return buffer.getvalue()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for i, p in enumerate(pixels):
                image = io.BytesIO()
                to_image(p).save(image, format="PNG")
                archive.writestr(f"sample_{i:05d}.png", image.getvalue())
            if y is not None:
                archive.writestr("labels.csv", "file,label\n" + "".join(
                    f"sample_{i:05d}.png,{model.class_names[k]}\n" for i, k in enumerate(y.tolist())))
        return buffer.getvalue()
    labels = None if y is None else [model.class_names[k] for k in y.tolist()]
    if model.kind == "text":
        items = texts(out, model.vocab)
        return json.dumps({"seed": seed, "n": len(items), "labels": labels, "samples": items}).encode()
    samples = model.to_data(out, lengths).astype(np.float32)
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, samples, allow_pickle=False)
        return buffer.getvalue()
    extra = {} if lengths is None else {"lengths": lengths.tolist()}
    return json.dumps({"seed": seed, "n": len(samples), "shape": list(samples.shape[1:]), "labels": labels, **extra,
                       "samples": ragged(samples, lengths) if lengths is not None else samples.tolist()}).encode()


def app_from_env():
    """The app for ``uvicorn --factory`` (used by ``--workers N``): path and settings from GANKIT_SERVE_*."""
    settings = ServeSettings(**json.loads(os.environ["GANKIT_SERVE_SETTINGS"]))
    return _app(Path(os.environ["GANKIT_SERVE_PATH"]), os.environ.get("GANKIT_SERVE_CHECKPOINT", "latest"), settings)


def _app(path: Path, checkpoint: str, settings: ServeSettings):
    _set_threads(settings)
    model = load(path, checkpoint)
    limit = settings.max_image_body if model.kind in ("translator", "scorer", "classifier") else settings.max_body
    return BodyLimit(create_app(model, settings), limit)


def _set_threads(settings: ServeSettings) -> None:
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, checkpoint: str = "latest",
          settings: ServeSettings = ServeSettings(), log_level: str = "info") -> None:
    """Serve the generator of an export or run folder until interrupted (uvicorn; ``workers`` processes)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise GankitError(f"gankit serve needs FastAPI and uvicorn ({e.name} is missing): "
                          f"pip install 'gankit[serve]'") from None
    if settings.backend not in ("torch", "onnx"):
        raise GankitError(f"--backend {settings.backend}: expected torch or onnx")
    if workers < 1:
        raise GankitError(f"--workers {workers}: expected 1 or more")
    if not settings.threads:  # share the cores between the worker processes, one left for the HTTP side
        settings = ServeSettings(**{**settings.__dict__, "threads": max(1, ((os.cpu_count() or 1) - 1) // workers)})
    path = Path(path)
    app = _app(path, checkpoint, settings)  # load once here: a bad path or export fails before any worker starts
    _check_address(host, port)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    os.environ.update(GANKIT_SERVE_PATH=str(path.resolve()), GANKIT_SERVE_CHECKPOINT=checkpoint,
                      GANKIT_SERVE_SETTINGS=json.dumps(settings.__dict__))
    uvicorn.run("gankit.serve:app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level)


def _check_address(host: str, port: int) -> None:
    """A one-line error for an address that can't be served, before uvicorn starts (it would log and exit 1)."""
    import socket

    if not 0 <= port <= 65535:
        raise GankitError(f"--port {port}: expected 0 to 65535")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as e:
        raise GankitError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    """Block until ``url``/health answers 200 (for tests and benchmarks that start a server)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.1)
