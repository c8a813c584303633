"""``gankit serve`` of an anomaly scorer: POST /v1/score, samples in, their scores and flags out.

    POST /v1/score   application/json: {"inputs": [...]}, rows [N, F] in the data's units, or images [N, C, H, W]
                     ([N, H, W] for one channel) as pixels in [0, 1]
                     image/png: one image (8-bit grey or RGB, converted to the model's channels), its exact size
                     application/x-npy or application/octet-stream: an .npy of the same inputs (uint8 images:
                     pixels 0..255)
                     ->  {"scores": [N floats, higher = more anomalous], "flags": [N booleans, score > threshold],
                          "threshold": t}  (flags and threshold null when the run held no normal data out)

Inputs are what ``ExportedScorer.score`` takes (see ``scorer_export``); the bodies, their limits and their errors
are every sample-taking model's (``input_serve``). On a scorer POST /v1/generate, /v1/apply and /v1/classify
answer 404 pointing here; on a generator or translator POST /v1/score answers 404 pointing to theirs.
"""

from .input_serve import add_input_route, point_here


def add_scorer_routes(app, model, batcher, settings):
    """POST /v1/score on ``app`` for the scorer ``model``, and the other POST routes pointing to it."""
    app.title, app.description = "gankit scorer", f"{model.manifest['family']} anomaly scorer ({model.what})"
    add_input_route(app, model, batcher, settings, "/v1/score", scores,
                    '{"scores": [...], "flags": [...], "threshold": t}')
    point_here(app, model, "/v1/score", ("/v1/generate", "/v1/apply", "/v1/classify"))
    return app


def scores(model, x, settings) -> dict:
    """The JSON answer of inputs ``x`` (the user's units): scores, flags at the run's threshold, the threshold."""
    values, flags = model.score(x, settings.backend, batch_size=settings.max_batch)
    flags = None if flags is None else flags.tolist()  # None: the run set no threshold
    return {"scores": values.tolist(), "flags": flags, "threshold": model.threshold}
