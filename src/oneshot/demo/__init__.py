"""Browser demo: draw a character, see the one-shot matches (``oneshot demo``).

A small Starlette app served by uvicorn. The page (``demo_static/``: plain HTML, JS and CSS, no
build step, nothing fetched from elsewhere) shows the support set of a test alphabet, one image
per character (drawer 1), or a support set of the user's own images (one per class); the user
draws on a canvas and, on release, the page asks the API for the top matches.

JSON API (errors: a 4xx status with ``{"error": "<what is wrong>"}``; 5xx only for bugs)::

    GET  /api/info                  {"model", "input_size", "split", "support_drawer",
                                     "max_upload_bytes", "max_image_pixels", "top_k"}
    GET  /api/alphabets             {"split": "test", "alphabets": [{"name", "characters"}]}
    GET  /api/support/{id}          {"support": id, "title", "items": [{"label", "image"}]}
                                    id: an alphabet name or an id from POST /api/support;
                                    image: PNG data URL, 105x105, black ink on white
    POST /api/support               your own support set, one image per class: JSON
                                    {"images": [data URL], "labels": [str]} or multipart files
                                    "image" (repeated; labels default to the file names) and
                                    optional "label" fields -> as GET, with id "upload-<hex>"
    POST /api/classify              JSON {"support": id, "image": data URL, "top_k": 5} or
                                    multipart (fields support, top_k; file image) ->
                                    {"support", "label", "probability", "close_match",
                                     "threshold", "top": [{"label", "probability",
                                     "share"}], "elapsed_ms"}
    POST /api/verify                JSON {"a": data URL, "b": data URL} or multipart files a, b
                                    -> {"probability"}: that both show the same class

Probabilities are the sigmoid of the model's pair-head score (see :mod:`oneshot.inference`):
each says on its own how likely the two images show the same class, so for a drawing unlike
every support image they are all small. ``share`` is the softmax of the scores over the support
set: how the model divides its belief among these classes (sums to 1), what the page shows;
``close_match`` is false when the best probability is under the model's calibrated open-set
threshold (:mod:`oneshot.calibration`), and the page then says that nothing matches well; it is
null (and ``threshold`` too) for a model without one, which cannot tell, and the page says so.
Support-set embeddings are computed once per support set and cached, so a classify request
embeds only the query image. Bodies over ``max_upload_bytes`` get 413, images over
``MAX_IMAGE_PIXELS`` pixels 413, unreadable or blank images 400, unknown support sets 404, and
alphabets without the dataset 503.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("the demo needs the 'demo' extra: pip install 'oneshot-siamese[demo]'") from e

from .app import SERVE_TORCH_THREADS, create_app, serve
from .payload import DEFAULT_MAX_UPLOAD_BYTES, MAX_IMAGE_PIXELS

__all__ = ["create_app", "serve", "DEFAULT_MAX_UPLOAD_BYTES", "MAX_IMAGE_PIXELS",
           "SERVE_TORCH_THREADS"]
