"""``gankit serve`` of a semi-supervised classifier: POST /v1/classify, samples in, their classes out.

    POST /v1/classify   application/json: {"inputs": [...]}, rows [N, F] in the data's units, or images
                        [N, C, H, W] ([N, H, W] for one channel) as pixels in [0, 1]
                        image/png: one image (8-bit grey or RGB, converted to the model's channels), its exact size
                        application/x-npy or application/octet-stream: an .npy of the same inputs (uint8 images:
                        pixels 0..255)
                        ->  {"classes": [N predicted class names],
                             "probabilities": [N lists of K floats, in the order of class_names],
                             "class_names": [K names]}

Inputs are what ``ExportedClassifier.classify`` takes (see ``classifier_export``); the bodies, their limits and
their errors are every sample-taking model's (``input_serve``). On a classifier POST /v1/generate, /v1/apply and
/v1/score answer 404 pointing here; on the other models POST /v1/classify answers 404 pointing to theirs.
"""

from .input_serve import add_input_route, point_here


def add_classifier_routes(app, model, batcher, settings):
    """POST /v1/classify on ``app`` for the classifier ``model``, and the other POST routes pointing to it."""
    app.title, app.description = "gankit classifier", f"{model.manifest['family']} classifier ({model.what})"
    add_input_route(app, model, batcher, settings, "/v1/classify", classes,
                    '{"classes": [N names], "probabilities": [[K floats] x N], "class_names": [K names]}')
    point_here(app, model, "/v1/classify", ("/v1/generate", "/v1/apply", "/v1/score"))
    return app


def classes(model, x, settings) -> dict:
    """The JSON answer of inputs ``x`` (the user's units): each one's predicted class and class probabilities."""
    probabilities, names = model.classify(x, settings.backend, batch_size=settings.max_batch)
    return {"classes": names, "probabilities": probabilities.tolist(), "class_names": model.class_names}
