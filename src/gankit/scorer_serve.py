"""``gankit serve`` of an anomaly scorer: POST /v1/score, samples in, their scores and flags out.

    POST /v1/score   application/json: {"inputs": [...]}, rows [N, F] in the data's units, or images [N, C, H, W]
                     ([N, H, W] for one channel) as pixels in [0, 1]
                     image/png: one image (8-bit grey or RGB, converted to the model's channels), its exact size
                     application/x-npy or application/octet-stream: an .npy of the same inputs (uint8 images:
                     pixels 0..255)
                     ->  {"scores": [N floats, higher = more anomalous], "flags": [N booleans, score > threshold],
                          "threshold": t}  (flags and threshold null when the run held no normal data out)

Inputs are what ``ExportedScorer.score`` takes (see ``scorer_export``); a PNG is decoded as POST /v1/apply decodes
one (``translator_serve.read_png``). An .npy's header is read before its data, so a header claiming more than the
body holds is refused without allocating; nothing is unpickled. Requests run one at a time on the model's thread
(decoding, scoring ``max_batch`` samples per model call, encoding), off the event loop.

Errors are JSON problems ``{"error": "<one line>", "detail": null}``: 400 for a JSON body that is not JSON text,
413 for a body over ``max_image_body`` bytes (a JSON body: over ``max_body``) or a PNG over ``max_pixels``, 415 for
another Content-Type, 422 for inputs of the wrong shape, type or values. On a scorer POST /v1/generate and
/v1/apply answer 404 pointing here; on a generator or translator POST /v1/score answers 404 pointing to theirs.
"""

import io
import json
import math

import numpy as np

from .translator_serve import BINARY, NPY, PNG, Problem, npy_header, on_model_thread, problem, read_png

JSON = "application/json"
INPUTS = {"type": "object", "required": ["inputs"], "additionalProperties": False,
          "properties": {"inputs": {"type": "array", "description": "rows [N, F] in the data's units, or images "
                                    "[N, C, H, W] ([N, H, W] for one channel) as pixels in [0, 1]"}}}


def add_scorer_routes(app, model, batcher, settings):
    """POST /v1/score on ``app`` for the scorer ``model``, and a /v1/generate and /v1/apply that point to it."""
    from fastapi import Request
    from fastapi.responses import Response

    app.title, app.description = "gankit scorer", f"{model.manifest['family']} anomaly scorer ({model.what})"

    @app.post("/v1/score", openapi_extra={"requestBody": {"required": True, "content": {
                  JSON: {"schema": INPUTS}, PNG: BINARY, **{t: BINARY for t in NPY}}}},
              responses={200: {"description": '{"scores": [...], "flags": [...], "threshold": t}'},
                         400: {"description": "the JSON body is not JSON text"},
                         413: {"description": "body or image too large"},
                         415: {"description": "not a JSON, PNG or .npy Content-Type"},
                         422: {"description": "inputs of the wrong shape, type or values"}})
    async def score(request: Request) -> Response:
        """The anomaly scores of the inputs in the body (see the Content-Types), flagged at the run's threshold."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (JSON, PNG, *NPY):
            return problem(415, f"Content-Type {media or '(none)'}: send {JSON} ({{\"inputs\": [...]}}), {PNG} (one "
                                f"image) or {NPY[0]} (an .npy of {model.expected})")
        declared = request.headers.get("content-length", "")
        if media == JSON and declared.isdigit() and int(declared) > settings.max_body:
            return problem(413, json_too_large(int(declared), settings.max_body))
        body = await request.body()
        if media == JSON and len(body) > settings.max_body:  # a chunked body declares no length
            return problem(413, json_too_large(len(body), settings.max_body))
        answered = await on_model_thread(batcher, respond, model, body, media, settings)
        if isinstance(answered, Response):
            return answered
        answer, n = answered
        batcher.served(math.ceil(n / settings.max_batch), n)
        return Response(answer, media_type=JSON)

    async def elsewhere() -> Response:
        return problem(404, f"this server's model gives {model.what}; it makes no samples: POST "
                            f'{{"inputs": [...]}}, a PNG or an .npy to /v1/score')

    for path in ("/v1/generate", "/v1/apply"):
        app.add_api_route(path, elsewhere, methods=["POST"], include_in_schema=False)
    return app


def refuse_score(app, model) -> None:
    """POST /v1/score on a generator's or a translator's ``app``: a 404 pointing to its own endpoint."""
    @app.post("/v1/score", include_in_schema=False)
    async def score():
        to = ("POST a PNG or an .npy of images to /v1/apply" if model.kind == "translator" else
              'POST JSON such as {"n": 4} to /v1/generate')
        return problem(404, f"this server's model makes {model.what}; it scores no samples: {to}")


def json_too_large(size: int, limit: int) -> str:
    return (f"a JSON body of {size} bytes; the limit is {limit} (--max-body): send more inputs as an .npy "
            f"(Content-Type {NPY[0]})")


def respond(model, body: bytes, media: str, settings) -> tuple[bytes, int]:
    """(the JSON response to a request body of type ``media``, how many inputs it held); on the model's thread."""
    if media == JSON:
        x = json_inputs(body)
    elif media == PNG:
        if not (model.is_image and model.takes_pixels):
            raise Problem(415, f"Content-Type {PNG}: this scorer takes {model.expected}; send them as JSON or an "
                               f".npy")
        x = read_png(body, model.shape[0], settings.max_pixels)  # [1, C, H, W] in [0, 1]
        if x.shape[2:] != model.shape[1:]:
            raise Problem(422, f"a PNG of {x.shape[3]}x{x.shape[2]} pixels: this scorer takes "
                               f"{model.shape[2]}x{model.shape[1]} images (width x height)")
    else:
        x = npy_array(body)
    scores, flags = model.score(x, settings.backend, batch_size=settings.max_batch)
    flags = None if flags is None else flags.tolist()  # None: the run set no threshold
    return json.dumps({"scores": scores.tolist(), "flags": flags, "threshold": model.threshold}).encode(), len(scores)


def json_inputs(body: bytes) -> np.ndarray:
    """The ``inputs`` of a JSON body as an array of numbers (its shape and values are the scorer's to check)."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem(400, f"the body is not JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(request, dict) or "inputs" not in request:
        raise Problem(422, 'the body must be a JSON object {"inputs": [...]}')
    unknown = sorted(set(request) - {"inputs"})
    if unknown:
        raise Problem(422, f"{unknown[0]}: unknown key; the body is {{\"inputs\": [...]}}")
    inputs = request["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise Problem(422, "inputs: expected a non-empty list of rows or images")
    try:
        array = np.array(inputs)
    except ValueError:  # numpy refuses ragged nesting
        raise Problem(422, "inputs: nested lists of different lengths; every row or image must have the same "
                           "shape") from None
    if array.dtype.kind not in "iuf":  # strings, booleans, nulls, objects
        raise Problem(422, f"inputs: expected numbers only (found {_kind(array)})")
    return array


def _kind(array: np.ndarray) -> str:
    return {"U": "strings", "b": "true/false", "O": "null, objects or numbers too large"}.get(array.dtype.kind,
                                                                                           str(array.dtype))


def npy_array(body: bytes) -> np.ndarray:
    """An .npy body as an array of numbers; its header (shape, dtype) is checked against the body's length before
    anything is allocated, and object arrays are refused (never unpickled)."""
    shape, dtype, data_bytes = npy_header(body)
    if dtype.kind not in "iuf":
        raise Problem(422, f"an array of dtype {dtype}: expected numbers")
    if data_bytes < math.prod(shape) * dtype.itemsize:
        raise Problem(422, f"the .npy is truncated: its header says {list(shape)} {dtype}, the body holds less")
    return np.load(io.BytesIO(body), allow_pickle=False)
