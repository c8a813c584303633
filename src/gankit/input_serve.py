"""``gankit serve`` of a model that takes samples in (``input_export``): the one POST route an anomaly scorer
(/v1/score, ``scorer_serve``) and a classifier (/v1/classify, ``classifier_serve``) answer, its request bodies,
and the 404s of the endpoints a server does not have.

    application/json          {"inputs": [...]}: rows [N, F] in the data's units, or images [N, C, H, W]
                              ([N, H, W] for one channel) as pixels in [0, 1]
    image/png                 one image (8-bit grey or RGB, converted to the model's channels), its exact size
    application/x-npy or      an .npy of the same inputs (uint8 images: pixels 0..255)
    application/octet-stream

Inputs are what ``InputModel.to_network`` takes; a PNG is decoded as POST /v1/apply decodes one
(``translator_serve.read_png``). An .npy's header is read before its data, so a header claiming more than the
body holds is refused without allocating; nothing is unpickled. Requests run one at a time on the model's thread
(decoding, the model ``max_batch`` samples per call, encoding), off the event loop.

Errors are JSON problems ``{"error": "<one line>", "detail": null}``: 400 for a JSON body that is not JSON text,
413 for a body over ``max_image_body`` bytes (a JSON body: over ``max_body``) or a PNG over ``max_pixels``, 415 for
another Content-Type, 422 for inputs of the wrong shape, type or values.
"""

import io
import json
import math
from typing import Any, Callable

import numpy as np

from .translator_serve import BINARY, NPY, PNG, Problem, npy_header, on_model_thread, problem, read_png

JSON = "application/json"
INPUTS = {"type": "object", "required": ["inputs"], "additionalProperties": False,
          "properties": {"inputs": {"type": "array", "description": "rows [N, F] in the data's units, or images "
                                    "[N, C, H, W] ([N, H, W] for one channel) as pixels in [0, 1]"}}}
REFUSED = {"/v1/generate": "it makes no samples", "/v1/apply": "it makes no samples",
           "/v1/score": "it scores no samples", "/v1/classify": "it classifies no samples"}

Answer = Callable[[Any, np.ndarray, Any], dict[str, Any]]  # (model, inputs in the user's units, settings) -> JSON


def add_input_route(app, model, batcher, settings, path: str, answer: Answer, response: str) -> None:
    """POST ``path`` on ``app``: the inputs of a JSON, PNG or .npy body (see the module) through
    ``answer(model, inputs, settings)``, whose dict is the JSON response (``response`` describes it)."""
    from fastapi import Request
    from fastapi.responses import Response

    @app.post(path, openapi_extra={"requestBody": {"required": True, "content": {
                  JSON: {"schema": INPUTS}, PNG: BINARY, **{t: BINARY for t in NPY}}}},
              responses={200: {"description": response},
                         400: {"description": "the JSON body is not JSON text"},
                         413: {"description": "body or image too large"},
                         415: {"description": "not a JSON, PNG or .npy Content-Type"},
                         422: {"description": "inputs of the wrong shape, type or values"}},
              description=f"The {model.what} of the inputs in the body (see the Content-Types).")
    async def route(request: Request) -> Response:
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
        answered = await on_model_thread(batcher, respond, model, body, media, settings, answer)
        if isinstance(answered, Response):
            return answered
        answer_body, n = answered
        batcher.served(math.ceil(n / settings.max_batch), n)
        return Response(answer_body, media_type=JSON)


def point_here(app, model, path: str, others: tuple[str, ...]) -> None:
    """POST ``others`` on ``app``: a 404 pointing to ``path``, this server's own endpoint."""
    for other in others:
        _not_found(app, other, f"this server's model gives {model.what}; {REFUSED[other]}: POST "
                               f'{{"inputs": [...]}}, a PNG or an .npy to {path}')


def refuse_inputs(app, model) -> None:
    """POST /v1/score and /v1/classify on a generator's or a translator's ``app``: 404s pointing to its own."""
    to = ("POST a PNG or an .npy of images to /v1/apply" if model.kind == "translator" else
          'POST JSON such as {"n": 4} to /v1/generate')
    for path in ("/v1/score", "/v1/classify"):
        _not_found(app, path, f"this server's model makes {model.what}; {REFUSED[path]}: {to}")


def _not_found(app, path: str, message: str) -> None:
    async def not_here():
        return problem(404, message)
    app.add_api_route(path, not_here, methods=["POST"], include_in_schema=False)


def json_too_large(size: int, limit: int) -> str:
    return (f"a JSON body of {size} bytes; the limit is {limit} (--max-body): send more inputs as an .npy "
            f"(Content-Type {NPY[0]})")


def respond(model, body: bytes, media: str, settings, answer: Answer) -> tuple[bytes, int]:
    """(the JSON response to a request body of type ``media``, how many inputs it held); on the model's thread."""
    x = read_inputs(model, body, media, settings)
    result = answer(model, x, settings)
    return json.dumps(result).encode(), len(x)


def read_inputs(model, body: bytes, media: str, settings) -> np.ndarray:
    """The inputs of a request body of type ``media``, in the user's units (the model checks them)."""
    if media == JSON:
        return json_inputs(body)
    if media == PNG:
        if not (model.is_image and model.takes_pixels):
            raise Problem(415, f"Content-Type {PNG}: this {model.kind} takes {model.expected}; send them as JSON "
                               f"or an .npy")
        x = read_png(body, model.shape[0], settings.max_pixels)  # [1, C, H, W] in [0, 1]
        if x.shape[2:] != model.shape[1:]:
            raise Problem(422, f"a PNG of {x.shape[3]}x{x.shape[2]} pixels: this {model.kind} takes "
                               f"{model.shape[2]}x{model.shape[1]} images (width x height)")
        return x
    return npy_array(body)


def json_inputs(body: bytes) -> np.ndarray:
    """The ``inputs`` of a JSON body as an array of numbers (its shape and values are the model's to check)."""
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
