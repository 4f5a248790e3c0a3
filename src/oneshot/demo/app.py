"""The demo's Starlette app: routes, error handling, ``create_app`` and ``serve``."""

from __future__ import annotations

import logging
import os
import socket
import threading
from importlib import resources
from pathlib import Path

import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..data.images import ImageError
from ..errors import UsageError
from ..inference import OneShotClassifier
from .payload import (
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_TOP_K,
    MAX_IMAGE_PIXELS,
    ApiError,
    one_image,
    read_payload,
    top_k_value,
)
from .state import SUPPORT_DRAWER, DemoState

log = logging.getLogger("oneshot.demo")

SERVE_TORCH_THREADS = 1  # a request embeds one image: more threads per request only contend
HEAVY_WORKERS = 2  # requests decoding or embedding images at once; the others wait their turn
HEAVY_WAIT_SECONDS = 30.0  # past this a waiting request gets 503
MAX_IN_FLIGHT = 32  # POSTs admitted at once (bodies read, waiting or working); more get 503
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
STATIC_DIR = Path(str(resources.files("oneshot").joinpath("demo_static")))
CSP = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"


def _host_of(value: str) -> str:
    """'host:port' or '[v6]:port' -> host, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _check_origin(request: Request) -> None:
    """Refuse requests addressed to another host name (DNS rebinding) and POSTs sent by pages
    of another origin (cross-site requests), unless the app allows any host."""
    allowed = request.app.state.allowed_hosts
    if allowed is None:
        return
    host = _host_of(request.headers.get("host", ""))
    if host not in allowed:
        raise ApiError(403, f"host {host!r} is not served here; use one of {sorted(allowed)}")
    origin = request.headers.get("origin")
    if request.method == "POST" and origin and origin != "null":
        if _host_of(origin.split("://", 1)[-1]) not in allowed:
            raise ApiError(403, f"requests from pages at {origin} are refused")


async def heavy(request: Request, fn, *args):
    """Run ``fn(*args)`` (decoding or embedding images) in a worker thread, at most
    ``HEAVY_WORKERS`` at once per app, so memory stays bounded whatever clients send."""
    sem = request.app.state.heavy

    def bounded():
        if not sem.acquire(timeout=HEAVY_WAIT_SECONDS):
            raise ApiError(503, "the server is busy; try again in a moment")
        try:
            return fn(*args)
        finally:
            sem.release()

    return await run_in_threadpool(bounded)


def _api(handler):
    """Run a handler; turn refused input into a JSON 4xx error and bugs into a JSON 500."""
    async def endpoint(request: Request) -> JSONResponse:
        state, post = request.app.state, request.method == "POST"
        if post and state.in_flight >= MAX_IN_FLIGHT:  # bodies are read before HEAVY_WORKERS
            return JSONResponse({"error": "the server is busy; try again in a moment"},
                                status_code=503)  # applies: memory grew with every upload
        state.in_flight += post  # one event loop: no lock needed
        try:
            _check_origin(request)
            return JSONResponse(await handler(request, request.app.state.demo))
        except ApiError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except ImageError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except Exception as e:  # keep serving; the log has the traceback
            log.exception("demo: %s %s failed", request.method, request.url.path)
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"},
                                status_code=500)
        finally:
            state.in_flight -= post
    return endpoint


async def _info(request: Request, st: DemoState) -> dict:
    return {"model": st.clf.model.spec.to_dict(), "input_size": st.clf.input_size,
            "split": st.split, "data": "omniglot" if st.data is None else "folder",
            "support_drawer": SUPPORT_DRAWER,
            "max_upload_bytes": request.app.state.max_upload_bytes,
            "max_image_pixels": MAX_IMAGE_PIXELS, "top_k": DEFAULT_TOP_K}


async def _alphabets(request: Request, st: DemoState) -> dict:
    alphabets = await run_in_threadpool(st.alphabets)
    return {"split": st.split, "alphabets": alphabets}


async def _get_support(request: Request, st: DemoState) -> dict:
    s = await run_in_threadpool(st.support, request.path_params["key"])
    return s.to_json()


async def _post_support(request: Request, st: DemoState) -> dict:
    payload = await read_payload(request, request.app.state.max_upload_bytes)
    labels = payload.values.get("label", []) + payload.values.get("labels", [])
    if not all(isinstance(lab, str) for lab in labels):  # null became "None", true "True"
        raise ApiError(400, "'labels' must be strings (class names)")
    if not labels and (payload.values.get("image") or payload.values.get("images")):
        raise ApiError(400, "'labels' (one per image) are required with data-URL images")
    images = await heavy(request, payload.images, "image", "images")
    s = await heavy(request, st.upload, images, labels)
    return s.to_json()


async def _classify(request: Request, st: DemoState) -> dict:
    payload = await read_payload(request, request.app.state.max_upload_bytes)
    key = payload.value("support")
    if not isinstance(key, str) or not key:
        raise ApiError(400, "'support' (an alphabet name or an upload id) is required")
    top_k = top_k_value(payload.value("top_k", DEFAULT_TOP_K))
    image = await heavy(request, one_image, payload, "image")
    return await heavy(request, st.classify, key, image, top_k)


async def _verify(request: Request, st: DemoState) -> dict:
    payload = await read_payload(request, request.app.state.max_upload_bytes)
    def verify() -> float:
        return st.verify(one_image(payload, "a"), one_image(payload, "b"))

    return {"probability": await heavy(request, verify)}


async def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": CSP})


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": f"{request.url.path}: {exc.detail}"},
                        status_code=exc.status_code, headers=exc.headers)


def create_app(classifier_or_model_path: OneShotClassifier | str | os.PathLike | None = None,
               data_dir: str | os.PathLike | None = None,
               cache: str | os.PathLike | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
               data: str | os.PathLike | None = None) -> Starlette:
    """The demo's ASGI app.

    classifier_or_model_path: an OneShotClassifier (its gallery is not used), a model file,
    checkpoint or run folder, or None for the shipped model (FileNotFoundError if none).
    data_dir, cache: where the Omniglot archives and the decode cache are (see ``load_split``);
    the test split is loaded on the first request that needs it, never downloaded.
    max_upload_bytes: the largest request body accepted, bytes.
    allowed_hosts: host names the API answers to (the Host header; and the Origin of POSTs
    from browsers), or None for any (a server open to the network).
    data: a folder of your classes (DIR/[<group>/]<class>/<image>) shown instead of the test
    alphabets: its groups are the alphabets, each class's first image its support image.
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
    app.state.demo = DemoState(clf, data_dir, cache, data)
    app.state.max_upload_bytes = int(max_upload_bytes)
    app.state.allowed_hosts = None if allowed_hosts is None else {
        _host_of(h) for h in allowed_hosts}
    app.state.heavy = threading.BoundedSemaphore(HEAVY_WORKERS)
    app.state.in_flight = 0
    return app


def serve(host: str = "127.0.0.1", port: int = 8000,
          classifier_or_model_path: OneShotClassifier | str | os.PathLike | None = None,
          data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
          max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, log_level: str = "info",
          data: str | os.PathLike | None = None) -> None:
    """Serve the demo until interrupted; prints its address. The data is loaded first (a
    missing dataset is logged and leaves only uploads working). Sets torch to
    ``SERVE_TORCH_THREADS`` threads: requests run side by side, each embedding one image."""
    import uvicorn

    _check_port(host, port)  # before the model loads, and before the address is printed
    torch.set_num_threads(SERVE_TORCH_THREADS)
    open_host = host in ("0.0.0.0", "::", "")
    app = create_app(classifier_or_model_path, data_dir, cache, max_upload_bytes,
                     None if open_host else LOOPBACK_HOSTS + (host,), data)
    if open_host:
        log.warning("serving on all interfaces: any host name and page origin is accepted")
    try:
        app.state.demo.dataset()
    except ApiError as e:
        log.warning("%s; only your own images can be used", e)
    shown = f"[{host}]" if ":" in host else host
    print(f"oneshot demo: http://{shown}:{port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _check_port(host: str, port: int) -> None:
    """UsageError when ``port`` cannot be served on ``host`` (another server has it): the
    address was printed first, and a user could open it and reach that other server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host or "0.0.0.0", port))
        except OSError as e:
            raise UsageError(f"--port {port}: cannot serve on {host}:{port} ({e.strerror}); "
                             "another server may have it: choose another port") from e
