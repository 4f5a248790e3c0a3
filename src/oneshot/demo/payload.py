"""The demo's requests: body limits, JSON or multipart payloads, images decoded through the
project's one decoder, and the API's error type."""

from __future__ import annotations

import base64
import binascii
import io
import json
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


def _depth(obj, limit: int = MAX_JSON_DEPTH + 1) -> int:
    """Nesting depth of a parsed JSON value (stops counting past ``limit``)."""
    if limit <= 0 or not isinstance(obj, (dict, list)):
        return 0
    items = obj.values() if isinstance(obj, dict) else obj
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def top_k_value(value) -> int:
    """A whole number (JSON int, or decimal digits from a form); 2.7, true or "5.0" are not."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)  # "-1" is a whole number, out of range (said below)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"top_k={value!r}; a whole number expected")
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


