"""Helpers shared by the tests (importable as ``support``: pytest's pythonpath has tests/)."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY_SPEC = {"encoder": "conv", "encoder_args": {"input_size": 28, "width": 8},
             "head": "euclidean"}
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def cpu_kernels() -> str:
    """Which CPU kernels this machine's float arithmetic runs on, e.g. ``AuthenticAMD AVX512``
    or ``GenuineIntel AVX512 AMX``: the CPU vendor (MKL and oneDNN choose code paths by it),
    PyTorch's vector ISA and whether AMX tiles are there (oneDNN's bf16 matrix kernels).
    Training losses are reproducible bit for bit only between machines with the same value."""
    import torch

    vendor, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id":
                vendor = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    parts = [vendor, torch.backends.cpu.get_cpu_capability()]
    return " ".join(parts + (["AMX"] if "amx_bf16" in flags else []))


def reference_losses(name: str, overrides: list[str], out: Path, data_dir, cache_dir
                     ) -> list[float]:
    """The logged loss of every step of preset ``name`` with ``overrides``, trained in ``out``
    (the run of tests/training/test_reference_losses.py)."""
    from oneshot.training import apply_overrides, preset, train

    train(apply_overrides(preset(name), overrides), out, data_dir, cache_dir, progress=False)
    rows = (json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines())
    return [row["loss"] for row in rows if "loss" in row]


def find_data_dir() -> Path:
    """The Omniglot archives: $ONESHOT_DATA, else ../shared/omniglot beside the repository."""
    env = os.environ.get("ONESHOT_DATA")
    d = Path(env) if env else REPO.parent / "shared" / "omniglot"
    if not (d / "images_background.zip").is_file():
        raise RuntimeError(f"Omniglot archives not found at {d}; set ONESHOT_DATA")
    return d


def png_bytes(img: np.ndarray, mode: str = "1") -> bytes:
    """PNG of an ink-1 array in Omniglot's convention (black ink on white)."""
    buf = io.BytesIO()
    Image.fromarray(((1 - img) * 255).astype(np.uint8)).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def tiny_entries(alphabets=2, chars=2, drawers=20, top="images_tiny", size=105, seed=0):
    """A synthetic archive in Omniglot's layout: {zip name: PNG bytes}."""
    rng = np.random.default_rng(seed)
    out = {}
    cid = 1
    for a in range(alphabets):
        for c in range(chars):
            for d in range(1, drawers + 1):
                img = (rng.random((size, size)) < 0.1).astype(np.uint8)
                out[f"{top}/Alpha{a}/character{c + 1:02d}/{cid:04d}_{d:02d}.png"] = png_bytes(img)
            cid += 1
    return out


def glyph(kind: str, size: int = 105) -> np.ndarray:
    """A synthetic character, float32 (size, size), ink = 1: "bar", "cross" or "eq"."""
    img = np.zeros((size, size), np.float32)
    s = size // 8
    if kind == "bar":
        img[2 * s: 6 * s, 3 * s: 4 * s] = 1
    elif kind == "cross":
        img[4 * s: 5 * s, s: 7 * s] = 1
        img[s: 7 * s, 4 * s: 5 * s] = 1
    else:
        img[2 * s: 3 * s, 2 * s: 6 * s] = 1
        img[5 * s: 6 * s, 2 * s: 6 * s] = 1
    return img


# --- the demo tests ---
def png(ink: np.ndarray) -> bytes:
    """ink (H, W) in [0, 1] -> PNG bytes, black on white."""
    buf = io.BytesIO()
    Image.fromarray((255 * (1 - ink)).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()

def data_url(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()

def decode_url(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))

def drawer1(ds, alphabet: str) -> tuple[list[str], np.ndarray]:
    """Short labels and drawer-1 images (C, 105, 105) of an alphabet's characters."""
    chars = np.flatnonzero(ds.char_alphabet == ds.alphabets.index(alphabet))
    rows = [int(np.flatnonzero((ds.labels == c) & (ds.drawers == 1))[0]) for c in chars]
    return [ds.characters[c].split("/")[-1] for c in chars], ds.images[rows]


def class_folder(root: Path, classes: list[str], per_class: int | list[int] = 1,
                 seed: int = 0) -> Path:
    """root/<class>/<k>.png: black strokes on white, one random three-stroke glyph per class,
    each image of it shifted by a pixel or two (for enrol/classify). A class named
    "group/class" makes the grouped layout; ``per_class``: images of every class, or of each
    class in turn."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    counts = [per_class] * len(classes) if isinstance(per_class, int) else list(per_class)
    for c, count in zip(classes, counts):
        (root / c).mkdir(parents=True, exist_ok=True)
        strokes = rng.integers(12, 52, size=(3, 4)).tolist()
        for k in range(count):
            dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
            im = Image.new("L", (64, 64), 255)
            draw = ImageDraw.Draw(im)
            for x0, y0, x1, y1 in strokes:
                draw.line((x0 + dx, y0 + dy, x1 + dx, y1 + dy), fill=0, width=5)
            im.save(root / c / f"{k}.png")
    return root


# --- children that import the data layer alone ---
SRC_PACKAGE = REPO / "src" / "oneshot"
# A child process that imports the data layer without the package's __init__ (which pulls in
# torch and takes seconds): a bare package object whose __path__ is the source folder. Its peak
# RSS is the kernel's high-water mark of its own memory (VmHWM): getrusage's ru_maxrss would
# carry over the parent's (pytest's) peak through fork and exec.
CHILD_PRELUDE = textwrap.dedent(f"""
    import json, sys, types
    pkg = types.ModuleType("oneshot"); pkg.__path__ = [{str(SRC_PACKAGE)!r}]
    sys.modules["oneshot"] = pkg

    def peak_rss_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
""")


def run_child(code: str, *args: str, timeout: float = 60) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code), *args],
                         capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])



def big_white_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height, all white: tiny when compressed, huge decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">L", len(data)) + body + struct.pack(">L", zlib.crc32(body))

    row = b"\0" + b"\xff" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">LLBBBBB", width, height, 1, 0,
                                                                 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
