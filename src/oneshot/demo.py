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
                                    {"support", "label", "probability",
                                     "top": [{"label", "probability"}], "elapsed_ms"}
    POST /api/verify                JSON {"a": data URL, "b": data URL} or multipart files a, b
                                    -> {"probability"}: that both show the same class

Probabilities are the sigmoid of the model's pair-head score (see :mod:`oneshot.inference`).
Support-set embeddings are computed once per support set and cached, so a classify request
embeds only the query image. Bodies over ``max_upload_bytes`` get 413, images over
``MAX_IMAGE_PIXELS`` pixels 413, unreadable or blank images 400, unknown support sets 404, and
alphabets without the dataset 503.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .data.omniglot import DataError
from .data.splits import load_split
from .inference import OneShotClassifier
from .preprocess import ImageError, fit_square, images_to_tensor, squares_to_tensor, to_ink

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("the demo needs the 'demo' extra: pip install 'oneshot[demo]'") from e

__all__ = ["create_app", "serve", "DEFAULT_MAX_UPLOAD_BYTES"]

log = logging.getLogger(__name__)

SPLIT = "test"
SUPPORT_DRAWER = 1  # the support image of each character is this drawer's
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # one request body, bytes
MAX_IMAGE_PIXELS = 4096 * 4096  # width * height of one decoded image
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # decoders tried (no EPS, ...)
MAX_UPLOAD_IMAGES = 64  # images in one uploaded support set
MAX_UPLOADED_SETS = 16  # uploaded support sets kept (least recently used dropped)
MAX_LABEL_CHARS = 64
DEFAULT_TOP_K, MAX_TOP_K = 5, 50
THUMB_SIZE = 105  # side of the support thumbnails, pixels (Omniglot's size)
SERVE_TORCH_THREADS = 1  # a request embeds one image: more threads per request only contend
STATIC_DIR = Path(str(resources.files("oneshot").joinpath("demo_static")))
CSP = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"


class ApiError(Exception):
    """A request the API refuses: HTTP ``status`` and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def png_data_url(ink: np.ndarray) -> str:
    """ink (H, W) in [0, 1], ink = 1 -> PNG data URL, black ink on white."""
    grey = np.round(255 * (1 - np.clip(np.asarray(ink, np.float32), 0, 1))).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, "L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def decode_image(data: bytes, name: str) -> Image.Image:
    """Bytes of an image file -> a loaded PIL image (ApiError if unreadable or too large)."""
    if not data:
        raise ApiError(400, f"{name}: empty upload")
    try:
        im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        w, h = im.size
        if w * h > MAX_IMAGE_PIXELS:
            raise ApiError(413, f"{name}: {w}x{h} pixels; at most {MAX_IMAGE_PIXELS} allowed")
        im.load()
    except Image.DecompressionBombError as e:
        raise ApiError(413, f"{name}: image too large ({e})") from e
    except UnidentifiedImageError as e:
        raise ApiError(400, f"{name}: not a readable image; {', '.join(IMAGE_FORMATS)} "
                            "accepted") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ApiError(400, f"{name}: not a readable image (broken file: {e})") from e
    return im


def decode_data_url(url: object, name: str) -> Image.Image:
    """'data:image/...;base64,...' -> a loaded PIL image."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise ApiError(400, f"{name}: a data URL 'data:image/png;base64,...' expected")
    head, sep, payload = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise ApiError(400, f"{name}: data URL is not base64 ('data:<type>;base64,<data>')")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ApiError(400, f"{name}: data URL holds invalid base64 ({e})") from e
    return decode_image(raw, name)


@dataclass
class Payload:
    """A JSON or multipart request body: values by key (lists) and uploaded files by key."""

    values: dict[str, list]
    files: dict[str, list[tuple[str, bytes]]]

    def value(self, key: str, default=None):
        v = self.values.get(key)
        return v[0] if v else default

    def images(self, *keys: str) -> list[tuple[str, Image.Image]]:
        """(name, image) of every file or data URL under ``keys``, in order."""
        out = []
        for key in keys:
            files, urls = self.files.get(key, []), self.values.get(key, [])
            for k, (fname, data) in enumerate(files):
                name = fname or (f"{key}[{k}]" if len(files) > 1 else key)
                out.append((name, decode_image(data, name)))
            for k, url in enumerate(urls):
                name = f"{key}[{k}]" if len(urls) > 1 else key
                out.append((name, decode_data_url(url, name)))
        return out


async def read_payload(request: Request, limit: int) -> Payload:
    """Read at most ``limit`` bytes (413 past it) and parse JSON or multipart form data."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"request body is not valid JSON ({e})") from e
        if not isinstance(obj, dict):
            raise ApiError(400, "request body must be a JSON object")
        return Payload({k: v if isinstance(v, list) else [v] for k, v in obj.items()}, {})
    if ctype == "multipart/form-data":
        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        values: dict[str, list] = {}
        files: dict[str, list[tuple[str, bytes]]] = {}
        try:
            async with Request(request.scope, replay).form(
                    max_files=MAX_UPLOAD_IMAGES + 2, max_part_size=limit) as form:
                for key, v in form.multi_items():
                    if isinstance(v, str):
                        values.setdefault(key, []).append(v)
                    else:
                        files.setdefault(key, []).append((v.filename or "", await v.read()))
        except HTTPException as e:  # malformed multipart, too many files
            raise ApiError(400, f"bad multipart body: {e.detail}") from e
        return Payload(values, files)
    raise ApiError(415, f"content type {ctype or 'none'!r}; application/json or "
                        "multipart/form-data expected")


@dataclass
class SupportSet:
    """One image per class, embedded once: labels, PNG data URLs, and a classifier holding
    the embeddings as its gallery."""

    key: str
    title: str
    labels: list[str]
    thumbs: list[str]
    gallery: OneShotClassifier

    def to_json(self) -> dict:
        return {"support": self.key, "title": self.title,
                "items": [{"label": lab, "image": t} for lab, t in zip(self.labels, self.thumbs)]}


class DemoState:
    """The model, the test split (loaded on first use) and the cached support sets."""

    def __init__(self, clf: OneShotClassifier, data_dir=None, cache=None) -> None:
        self.clf, self.data_dir, self.cache = clf, data_dir, cache
        self._lock = threading.Lock()
        self._ds = None
        self._alphabets: dict[str, SupportSet] = {}
        self._uploads: OrderedDict[str, SupportSet] = OrderedDict()

    def dataset(self):
        with self._lock:
            if self._ds is None:
                try:
                    self._ds = load_split(SPLIT, self.data_dir, self.cache,
                                          allow_download=False)
                except DataError as e:
                    raise ApiError(503, f"the Omniglot {SPLIT} split is unavailable ({e}); "
                                        "'oneshot data' downloads it") from e
            return self._ds

    def alphabets(self) -> list[dict]:
        ds = self.dataset()
        counts = np.bincount(ds.char_alphabet, minlength=len(ds.alphabets))
        return [{"name": a, "characters": int(n)} for a, n in zip(ds.alphabets, counts)]

    def _gallery(self, emb: torch.Tensor, labels: list[str]) -> OneShotClassifier:
        g = self.clf.empty_copy()  # shares the model; no re-hash of its weights
        g.enrol_embeddings(emb, labels)
        return g

    def support(self, key: str) -> SupportSet:
        with self._lock:
            if key in self._uploads:
                self._uploads.move_to_end(key)
                return self._uploads[key]
            if key in self._alphabets:
                return self._alphabets[key]
        if key.startswith("upload-"):
            raise ApiError(404, f"support set {key!r} is no longer kept (the server keeps the "
                                f"last {MAX_UPLOADED_SETS} uploads); upload the images again")
        ds = self.dataset()
        if key not in ds.alphabets:
            raise ApiError(404, f"unknown support set {key!r}: not an alphabet of the {SPLIT} "
                                f"split {list(ds.alphabets)} nor a current upload")
        chars = np.flatnonzero(ds.char_alphabet == ds.alphabets.index(key))
        rows = []
        for c in chars:  # drawer 1, or the lowest drawer the character has
            idx = np.flatnonzero(ds.labels == c)
            rows.append(int(idx[np.argmin(np.abs(ds.drawers[idx] - SUPPORT_DRAWER))]))
        imgs = ds.images[rows]
        labels = [ds.characters[c].split("/")[-1] for c in chars]
        emb = self.clf.embed_tensor(images_to_tensor(imgs, self.clf.input_size))
        s = SupportSet(key, key.replace("_", " "), labels, [png_data_url(i) for i in imgs],
                       self._gallery(emb, labels))
        with self._lock:
            return self._alphabets.setdefault(key, s)

    def upload(self, images: list[tuple[str, Image.Image]], labels: list[str]) -> SupportSet:
        if not images:
            raise ApiError(400, "no images uploaded; send one image per class")
        if len(images) > MAX_UPLOAD_IMAGES:
            raise ApiError(413, f"{len(images)} images; at most {MAX_UPLOAD_IMAGES} per set")
        if not labels:
            labels = [Path(name).stem or name for name, _ in images]
        if len(labels) != len(images):
            raise ApiError(400, f"{len(images)} images but {len(labels)} labels")
        labels = [str(lab).strip()[:MAX_LABEL_CHARS] for lab in labels]
        if any(not lab for lab in labels):
            raise ApiError(400, "labels must be non-empty")
        crop = self.clf.crop
        views = [fit_square(to_ink(im, name), crop) for name, im in images]  # names the bad one
        thumbs = squares_to_tensor(views, THUMB_SIZE)[:, 0].numpy()
        emb = self.clf.embed_tensor(squares_to_tensor(views, self.clf.input_size))
        digest = hashlib.sha256(emb.numpy().tobytes() + json.dumps(labels).encode())
        key = "upload-" + digest.hexdigest()[:16]
        s = SupportSet(key, "your images", labels, [png_data_url(t) for t in thumbs],
                       self._gallery(emb, labels))
        with self._lock:
            self._uploads[key] = s
            while len(self._uploads) > MAX_UPLOADED_SETS:
                self._uploads.popitem(last=False)
        return s

    def classify(self, key: str, image: Image.Image, top_k: int) -> dict:
        t0 = time.perf_counter()
        s = self.support(key)
        p = s.gallery.predict_embeddings(self.clf.embed(image), top_k=top_k)[0]
        return {"support": key, "label": p.label, "probability": p.probability,
                "top": [{"label": lab, "probability": q} for lab, q in p.top],
                "elapsed_ms": 1000 * (time.perf_counter() - t0)}


def _top_k(value) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"top_k={value!r}; an integer expected") from None
    if not 1 <= k <= MAX_TOP_K:
        raise ApiError(400, f"top_k={k}; between 1 and {MAX_TOP_K} expected")
    return k


def _one_image(payload: Payload, key: str) -> Image.Image:
    imgs = payload.images(key)
    if len(imgs) != 1:
        raise ApiError(400, f"{len(imgs)} images under {key!r}; exactly one expected")
    return imgs[0][1]


def _api(handler):
    """Run a handler; turn refused input into a JSON 4xx error and bugs into a JSON 500."""
    async def endpoint(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await handler(request, request.app.state.demo))
        except ApiError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except ImageError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except Exception as e:  # keep serving; the log has the traceback
            log.exception("demo: %s %s failed", request.method, request.url.path)
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"},
                                status_code=500)
    return endpoint


async def _info(request: Request, st: DemoState) -> dict:
    return {"model": st.clf.model.spec.to_dict(), "input_size": st.clf.input_size,
            "split": SPLIT, "support_drawer": SUPPORT_DRAWER,
            "max_upload_bytes": request.app.state.max_upload_bytes,
            "max_image_pixels": MAX_IMAGE_PIXELS, "top_k": DEFAULT_TOP_K}


async def _alphabets(request: Request, st: DemoState) -> dict:
    return {"split": SPLIT, "alphabets": await run_in_threadpool(st.alphabets)}


async def _get_support(request: Request, st: DemoState) -> dict:
    s = await run_in_threadpool(st.support, request.path_params["key"])
    return s.to_json()


async def _post_support(request: Request, st: DemoState) -> dict:
    payload = await read_payload(request, request.app.state.max_upload_bytes)
    labels = payload.values.get("label", []) + payload.values.get("labels", [])
    if not labels and (payload.values.get("image") or payload.values.get("images")):
        raise ApiError(400, "'labels' (one per image) are required with data-URL images")
    images = await run_in_threadpool(payload.images, "image", "images")
    s = await run_in_threadpool(st.upload, images, labels)
    return s.to_json()


async def _classify(request: Request, st: DemoState) -> dict:
    payload = await read_payload(request, request.app.state.max_upload_bytes)
    key = payload.value("support")
    if not isinstance(key, str) or not key:
        raise ApiError(400, "'support' (an alphabet name or an upload id) is required")
    top_k = _top_k(payload.value("top_k", DEFAULT_TOP_K))
    image = await run_in_threadpool(_one_image, payload, "image")
    return await run_in_threadpool(st.classify, key, image, top_k)


async def _verify(request: Request, st: DemoState) -> dict:
    payload = await read_payload(request, request.app.state.max_upload_bytes)
    def verify() -> float:
        return st.clf.verify(_one_image(payload, "a"), _one_image(payload, "b"))

    return {"probability": await run_in_threadpool(verify)}


async def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": CSP})


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": f"{request.url.path}: {exc.detail}"},
                        status_code=exc.status_code, headers=exc.headers)


def create_app(classifier_or_model_path: OneShotClassifier | str | os.PathLike | None = None,
               data_dir: str | os.PathLike | None = None,
               cache: str | os.PathLike | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> Starlette:
    """The demo's ASGI app.

    classifier_or_model_path: an OneShotClassifier (its gallery is not used), a model file,
    checkpoint or run folder, or None for the shipped model (FileNotFoundError if none).
    data_dir, cache: where the Omniglot archives and the decode cache are (see ``load_split``);
    the test split is loaded on the first request that needs it, never downloaded.
    max_upload_bytes: the largest request body accepted, bytes.
    """
    if max_upload_bytes < 1:
        raise ValueError(f"max_upload_bytes={max_upload_bytes}; a positive size expected")
    clf = (classifier_or_model_path if isinstance(classifier_or_model_path, OneShotClassifier)
           else OneShotClassifier.load(classifier_or_model_path))
    app = Starlette(routes=[
        Route("/", _index),
        Route("/api/info", _api(_info)),
        Route("/api/alphabets", _api(_alphabets)),
        Route("/api/support", _api(_post_support), methods=["POST"]),
        Route("/api/support/{key:path}", _api(_get_support)),
        Route("/api/classify", _api(_classify), methods=["POST"]),
        Route("/api/verify", _api(_verify), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ], exception_handlers={HTTPException: _http_error})
    app.state.demo = DemoState(clf, data_dir, cache)
    app.state.max_upload_bytes = int(max_upload_bytes)
    return app


def serve(host: str = "127.0.0.1", port: int = 8000,
          classifier_or_model_path: OneShotClassifier | str | os.PathLike | None = None,
          data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
          max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, log_level: str = "info") -> None:
    """Serve the demo until interrupted; prints its address. The data is loaded first (a
    missing dataset is logged and leaves only uploads working). Sets torch to
    ``SERVE_TORCH_THREADS`` threads: requests run side by side, each embedding one image."""
    import uvicorn

    torch.set_num_threads(SERVE_TORCH_THREADS)
    app = create_app(classifier_or_model_path, data_dir, cache, max_upload_bytes)
    try:
        app.state.demo.dataset()
    except ApiError as e:
        log.warning("%s; only your own images can be used", e)
    shown = f"[{host}]" if ":" in host else host
    print(f"oneshot demo: http://{shown}:{port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
