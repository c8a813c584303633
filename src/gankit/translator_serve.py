"""``gankit serve`` of an image translator: POST /v1/apply, images in and the same format out.

    POST /v1/apply   Content-Type image/png: a PNG  ->  the PNG of its translation (8-bit, grey or RGB)
                     application/x-npy or application/octet-stream: an .npy of pixels in [0, 1] (float, or uint8
                     0..255), [N, C, H, W], [C, H, W] or (one-channel models) [H, W]  ->  .npy float32
                     [N, C', f H, f W] in [0, 1], answered with the request's Content-Type

A PNG is converted to the model's channels as ``gankit apply`` does (grey "L" or RGB; alpha dropped); an .npy
must have them. Its header is read before its data, so a wrong shape, dtype or size is refused without
allocating the array; nothing is unpickled. Requests run one at a time on the model's thread (decoding,
``ExportedTranslator.apply``, encoding), off the event loop.

Errors are JSON problems ``{"error": "<one line>", "detail": null}``: 413 for a body over ``max_image_body``
bytes or more than ``max_pixels`` input pixels (N H W), 415 for another Content-Type, 422 for a body that is
not what it says (not a PNG, not an .npy) or holds the wrong images (channels, shape, dtype, values outside
[0, 1]). On a translator POST /v1/generate answers 404 pointing here; on a generator POST /v1/apply answers
404 pointing to /v1/generate.
"""

import asyncio
import io
import math

import numpy as np

from .errors import GankitError

PNG, NPY = "image/png", ("application/x-npy", "application/octet-stream")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BINARY = {"schema": {"type": "string", "format": "binary"}}


async def on_model_thread(batcher, respond, *args):
    """``respond(*args)`` on the model's thread, off the event loop: its result, or the JSON problem a ``Problem``
    (its status) or a user's ``GankitError`` (422) becomes."""
    try:
        return await asyncio.get_running_loop().run_in_executor(batcher.executor, respond, *args)
    except Problem as e:
        return problem(e.status, str(e))
    except GankitError as e:
        return problem(422, str(e))


class Problem(Exception):
    """A request's mistake: the HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def add_translator_routes(app, model, batcher, settings):
    """POST /v1/apply on ``app`` for the translator ``model``, and a /v1/generate that points to it."""
    from fastapi import Request
    from fastapi.responses import Response

    @app.post("/v1/apply", openapi_extra={"requestBody": {"required": True, "content": {
                  PNG: BINARY, **{t: BINARY for t in NPY}}}},
              responses={200: {"content": {PNG: {}, **{t: {} for t in NPY}},
                               "description": "the translation, in the request's format"},
                         413: {"description": "body or image too large"},
                         415: {"description": "not a PNG or .npy Content-Type"},
                         422: {"description": "not a PNG / .npy, or the wrong images"}})
    async def apply(request: Request) -> Response:
        """Translate the images of a PNG or .npy body (see the Content-Types)."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != PNG and media not in NPY:
            return problem(415, f"Content-Type {media or '(none)'}: send {PNG} (a PNG) or {NPY[0]} (an .npy of "
                                f"pixels in [0, 1], [N, C, H, W])")
        answered = await on_model_thread(batcher, respond, model, await request.body(), media, settings)
        if isinstance(answered, Response):
            return answered
        answer, n = answered
        batcher.served(1, n)
        return Response(answer, media_type=media)

    @app.post("/v1/generate", include_in_schema=False)
    async def generate() -> Response:
        return problem(404, f"this server's model makes {model.what}; it draws no samples from noise: POST a PNG "
                            f"or an .npy of images to /v1/apply")

    return app


def refuse_apply(app, model) -> None:
    """POST /v1/apply on a generator's ``app``: a 404 pointing to /v1/generate."""
    @app.post("/v1/apply", include_in_schema=False)
    async def apply():
        return problem(404, f"this server's model makes {model.what} from noise; it translates no images: POST "
                            f"JSON such as {{\"n\": 4}} to /v1/generate")


def problem(status: int, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "detail": None}, status_code=status)


def respond(model, body: bytes, media: str, settings) -> tuple[bytes, int]:
    """(the response body for a request body of type ``media``, how many images it held); on the model's thread."""
    if media == PNG:
        pixels = read_png(body, model.in_channels, settings.max_pixels)
        return write_png(model.apply(pixels, settings.backend)[0]), 1
    pixels = read_npy(body, model.in_channels, settings.max_pixels)
    buffer = io.BytesIO()
    np.save(buffer, model.apply(pixels, settings.backend).astype(np.float32), allow_pickle=False)
    return buffer.getvalue(), len(pixels)


def check_size(n: int, h: int, w: int, max_pixels: int) -> None:
    if n * h * w > max_pixels:
        side = math.isqrt(max_pixels)
        raise Problem(413, f"{n} image{'s' if n > 1 else ''} of {h}x{w}: {n * h * w} input pixels; the limit is "
                           f"{max_pixels}" + (f" ({side}x{side})" if side * side == max_pixels else ""))


def read_png(body: bytes, channels: int, max_pixels: int) -> np.ndarray:
    """A PNG body -> pixels [1, C, H, W] float32 in [0, 1], in the model's channels (grey or RGB)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not body.startswith(PNG_SIGNATURE):
        raise Problem(422, f"the body is not a PNG (it does not start with the PNG signature); an .npy goes with "
                           f"Content-Type {NPY[0]}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            im = Image.open(io.BytesIO(body), formats=["PNG"])
        with im:
            check_size(1, im.height, im.width, max_pixels)
            if im.mode.startswith(("I", "F")):
                raise Problem(422, f"a {im.mode} PNG (16-bit or float): send an 8-bit PNG, or an .npy of pixels "
                                   f"in [0, 1]")
            array = np.asarray(im.convert("L" if channels == 1 else "RGB"))  # [H, W] or [H, W, 3] uint8
    except Image.DecompressionBombError as e:
        raise Problem(413, f"the PNG is too large ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise Problem(422, f"the PNG cannot be decoded ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                      ) from None
    x = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # [C, H, W]
    return x[None].astype(np.float32) / 255.0


def read_npy(body: bytes, channels: int, max_pixels: int) -> np.ndarray:
    """An .npy body -> pixels [N, C, H, W] (float or uint8; ``ExportedTranslator.apply`` checks the values).

    The header (shape, dtype) is checked before the data is read: a header may claim any size."""
    shape, dtype, data_bytes = npy_header(body, f"; a PNG goes with Content-Type {PNG}")
    c = channels
    expected = f"[N, {c}, H, W] or [{c}, H, W]" + (" or [H, W]" if c == 1 else "")
    if dtype != np.uint8 and dtype.kind != "f":
        raise Problem(422, f"an array of dtype {dtype}: expected pixels as floats in [0, 1] or uint8 0..255")
    if not 2 <= len(shape) <= 4 or (len(shape) == 2 and c != 1):
        raise Problem(422, f"an array of shape {list(shape)}: expected images {expected}")
    full = (1,) * (4 - len(shape)) + tuple(shape)  # [N, C, H, W]
    if full[1] != c:
        raise Problem(422, f"an array of shape {list(shape)}: images of {full[1]} channels; this model takes "
                           f"{c} ({expected})")
    if 0 in full:
        raise Problem(422, f"an array of shape {list(shape)}: no pixels")
    check_size(full[0], full[2], full[3], max_pixels)
    if data_bytes < math.prod(full) * dtype.itemsize:
        raise Problem(422, f"the .npy is truncated: its header says {list(shape)} {dtype}, the body holds less")
    array = np.load(io.BytesIO(body), allow_pickle=False)
    return array.reshape(full)


def npy_header(body: bytes, hint: str = "") -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes after the header) of an .npy body, read without its data: a header may claim any
    size, so callers check it before ``np.load`` allocates anything. ``hint`` ends the error's line."""
    fp = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(fp)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f".npy format version {version[0]}.{version[1]}")
        shape, _, dtype = read_header[version](fp)  # (shape, Fortran order, dtype)
    except (ValueError, OSError, EOFError) as e:
        raise Problem(422, f"the body is not an .npy array ({str(e).splitlines()[0]}){hint}") from None
    return tuple(shape), dtype, len(body) - fp.tell()


def write_png(image: np.ndarray) -> bytes:
    """Pixels [C, H, W] in [0, 1] -> 8-bit PNG bytes (grey for one channel, else RGB), p -> round(255 p)."""
    from PIL import Image

    array = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)  # [H, W, C]
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()

