"""The demo's requests: body limits, JSON or multipart payloads, images decoded through the
project's one decoder, and the API's error type."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..data.images import ImageError, ImageTooLargeError, read_grey

DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # one request body, bytes
MAX_IMAGE_PIXELS = 4096 * 4096  # width * height of one decoded image
MAX_IMAGE_SIDE = 1024  # decoded images are reduced to this side at once (the model reads 28-105)
MAX_JSON_DEPTH = 32  # nesting of a JSON body
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # decoders tried (no EPS, ...)
MAX_UPLOAD_IMAGES = 64  # images in one uploaded support set
DEFAULT_TOP_K, MAX_TOP_K = 5, 50
# a body that stalls (nothing for BODY_IDLE_SECONDS) or trickles in over BODY_SECONDS gets 408:
# 32 stalled uploads held every admission slot of the demo until their clients went away
BODY_IDLE_SECONDS, BODY_SECONDS = 15.0, 120.0


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


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Bytes of an image file -> float32 (H, W) grey in [0, 1] (ApiError if empty, unreadable
    or over ``MAX_IMAGE_PIXELS``), through the project's one decoder."""
    if not data:
        raise ApiError(400, f"{name}: empty upload")
    try:
        return read_grey(data, name, max_pixels=MAX_IMAGE_PIXELS, formats=IMAGE_FORMATS,
                         max_side=MAX_IMAGE_SIDE)
    except ImageTooLargeError as e:
        raise ApiError(413, str(e)) from e
    except ImageError as e:
        raise ApiError(400, str(e)) from e


def decode_data_url(url: object, name: str) -> np.ndarray:
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
        """The one value of a single field; ApiError for several (a list was cut to its first)."""
        v = self.values.get(key)
        if v and len(v) > 1:
            raise ApiError(400, f"'{key}': one value expected, {len(v)} given")
        return v[0] if v else default

    def images(self, *keys: str) -> list[tuple[str, np.ndarray]]:
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
    if declared is not None and re.fullmatch(r"[0-9]+", declared) and (
            len(declared) > 18 or int(declared) > limit):
        raise ApiError(413, f"request body of {_short(declared)} bytes exceeds the limit of "
                            f"{limit} bytes")
    body = await _read_body(request, limit)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"request body is not valid JSON ({e})") from e
        except RecursionError:
            raise ApiError(400, "request body is nested too deeply") from None
        if _depth(obj) > MAX_JSON_DEPTH:
            raise ApiError(400, f"request body is nested more than {MAX_JSON_DEPTH} deep")
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


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (413 past it); 408 when it stalls or trickles
    (``BODY_IDLE_SECONDS``, ``BODY_SECONDS``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + BODY_SECONDS
    stream, chunks, total = request.stream().__aiter__(), [], 0
    while True:
        wait = min(BODY_IDLE_SECONDS, end - loop.time())
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), max(wait, 0.0))
        except StopAsyncIteration:
            return b"".join(chunks)
        except TimeoutError:
            raise ApiError(408, "request body not received in time (stalled for "
                                f"{BODY_IDLE_SECONDS:g} s, or longer than {BODY_SECONDS:g} s "
                                "in all)") from None
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)


def _depth(obj, limit: int = MAX_JSON_DEPTH + 1) -> int:
    """Nesting depth of a parsed JSON value (stops counting past ``limit``)."""
    if limit <= 0 or not isinstance(obj, (dict, list)):
        return 0
    items = obj.values() if isinstance(obj, dict) else obj
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def _short(value, most: int = 40) -> str:
    """``repr(value)``, cut to ``most`` characters (a 5,000-digit field in an error message)."""
    r = repr(value)
    return r if len(r) <= most else r[: most - 3] + "..."


def top_k_value(value) -> int:
    """A whole number (JSON int, or decimal digits from a form); 2.7, true or "5.0" are not."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,9}", value.strip()):
        value = int(value)  # "-1" is a whole number, out of range (said below)
    if isinstance(value, bool) or not isinstance(value, int):  # "²", 5,000 digits, 2.7
        raise ApiError(400, f"top_k={_short(value)}; a whole number from 1 to {MAX_TOP_K} "
                            "expected")
    k = value
    if not 1 <= k <= MAX_TOP_K:
        raise ApiError(400, f"top_k={k}; between 1 and {MAX_TOP_K} expected")
    return k


def one_image(payload: Payload, key: str) -> tuple[str, np.ndarray]:
    """(name, image) of the one image under ``key`` (the name is what errors call it)."""
    imgs = payload.images(key)
    if len(imgs) != 1:
        raise ApiError(400, f"{len(imgs)} images under {key!r}; exactly one expected")
    return imgs[0]


