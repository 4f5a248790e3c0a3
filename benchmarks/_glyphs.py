"""A class folder that is not Omniglot: letters of non-Latin scripts rendered with this
machine's DejaVu fonts (Debian's fonts-dejavu; matplotlib ships the Sans faces too). Not a
script: ``own_data.py`` builds it with :func:`build_glyphs`.

Layout ``DIR/<script>/<U+XXXX>/<face>.png``: a script is a group (an alphabet), a code point a
class, and its images the faces that draw it (Sans, Serif and Mono; book, bold, oblique or
italic, condensed, extra-light), each drawn once at a seeded size, angle, slant and position, in
black on white, 105 x 105, in one of four seeded styles: plain (twice as likely), outlined (a
contour, white inside), heavy (thickened) or coarse (a quarter of the resolution, blocky). Close
to Omniglot's domain (letters of alphabets, several of them Omniglot's: Greek, Cyrillic,
Armenian, Hebrew, Georgian, Canadian syllabics, N'Ko, Tifinagh), but typeset in 21 faces and
four styles instead of handwritten by 20 people, and none of its pixels come from Omniglot.
"""

from __future__ import annotations

import glob
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCRIPTS = {  # name: code point ranges (inclusive) of its letters
    "Greek": [(0x0391, 0x03A9), (0x03B1, 0x03C9)],
    "Cyrillic": [(0x0410, 0x044F), (0x0460, 0x0481)],
    "Armenian": [(0x0531, 0x0556), (0x0561, 0x0586)],
    "Hebrew": [(0x05D0, 0x05EA)],
    "Arabic": [(0x0621, 0x064A)],
    "NKo": [(0x07CA, 0x07EA)],
    "Lao": [(0x0E81, 0x0EAE)],
    "Georgian": [(0x10A0, 0x10C5), (0x10D0, 0x10FA)],
    "Canadian_Syllabics": [(0x1401, 0x166C)],
    "Ogham": [(0x1681, 0x169A)],
    "Runic": [(0x16A0, 0x16EA)],
    "Glagolitic": [(0x2C00, 0x2C2E)],
    "Coptic": [(0x2C80, 0x2CE3)],
    "Tifinagh": [(0x2D30, 0x2D67)],
}
FONT_GLOB = "/usr/share/fonts/truetype/dejavu/DejaVu*.ttf"
SIZE = 105
MIN_FACES = 4          # a letter drawn by fewer faces is left out
MAX_FACES = 12         # images per class at most (a seeded choice of the faces)
MAX_PER_SCRIPT = 120   # classes per script at most (a seeded choice), so no script dominates
UNASSIGNED = "\u0378"  # a code point no font draws: its picture is the font's "missing" box


def fonts() -> dict[str, str]:
    """{face name: file} of the DejaVu text faces (not the maths face)."""
    return {Path(f).stem: f for f in sorted(glob.glob(FONT_GLOB)) if "Math" not in f}


def _mask(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    m = font.getmask(ch)
    return bytes(m) + repr(m.size).encode()


def _draws(font: ImageFont.FreeTypeFont, ch: str, missing: bytes) -> bool:
    m = font.getmask(ch)
    return m.getbbox() is not None and _mask(font, ch) != missing


STYLES = ("plain", "plain", "outline", "heavy", "coarse")


def _draw(canvas: Image.Image, path: str, ch: str, size: int, style: str) -> None:
    """Typeset ``ch`` centred on ``canvas``: plain, as an outline (white inside a black
    contour), heavy (a black contour added), or coarse (drawn at a quarter of the resolution
    and enlarged, blocky)."""
    font = ImageFont.truetype(path, size)
    mid = canvas.size[0] // 2
    if style == "coarse":
        small = Image.new("L", (canvas.size[0] // 4, canvas.size[1] // 4), 255)
        ImageDraw.Draw(small).text((mid // 4, mid // 4), ch, fill=0, anchor="mm",
                                   font=ImageFont.truetype(path, max(8, size // 4)))
        canvas.paste(small.resize(canvas.size, Image.Resampling.NEAREST))
        return
    stroke = {"plain": 0, "outline": 2, "heavy": 2}[style]
    ImageDraw.Draw(canvas).text((mid, mid), ch, font=font, anchor="mm", stroke_width=stroke,
                                fill=255 if style == "outline" else 0, stroke_fill=0)


def _render(path: str, ch: str, rng: np.random.Generator) -> Image.Image:
    """``ch`` in the font at ``path``, in a seeded style (see :func:`_draw`), size, rotation,
    slant and offset; 105 x 105."""
    canvas = Image.new("L", (2 * SIZE, 2 * SIZE), 255)
    _draw(canvas, path, ch, int(rng.integers(56, 80)), STYLES[rng.integers(len(STYLES))])
    shear = math.tan(math.radians(rng.uniform(-8, 8)))
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE,
                              (1, shear, -shear * SIZE, 0, 1, 0), fillcolor=255,
                              resample=Image.Resampling.BILINEAR)
    canvas = canvas.rotate(rng.uniform(-8, 8), Image.Resampling.BILINEAR, fillcolor=255)
    dx, dy = rng.integers(-6, 7, size=2)
    left, top = SIZE // 2 + int(dx), SIZE // 2 + int(dy)
    return canvas.crop((left, top, left + SIZE, top + SIZE))


def build_glyphs(out: Path, seed: int = 0) -> dict[str, int]:
    """Write the folder (skipped when ``out`` already holds it); returns counts."""
    done = out / ".complete"
    faces = fonts()
    if done.exists():
        return {"scripts": len(list(out.iterdir())) - 1, "faces": len(faces)}
    rng = np.random.default_rng(seed)
    loaded = {n: ImageFont.truetype(f, 40) for n, f in faces.items()}
    missing = {n: _mask(f, UNASSIGNED) for n, f in loaded.items()}
    classes = images = 0
    for script, ranges in SCRIPTS.items():
        letters = [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)]
        drawn = {ch: [n for n in faces if _draws(loaded[n], ch, missing[n])] for ch in letters}
        kept = [ch for ch in letters if len(drawn[ch]) >= MIN_FACES]
        if len(kept) > MAX_PER_SCRIPT:
            kept = sorted(rng.choice(kept, MAX_PER_SCRIPT, replace=False).tolist())
        for ch in kept:
            use = drawn[ch]
            if len(use) > MAX_FACES:
                use = sorted(rng.choice(use, MAX_FACES, replace=False).tolist())
            folder = out / script / f"U+{ord(ch):04X}"
            folder.mkdir(parents=True, exist_ok=True)
            for name in use:
                _render(faces[name], ch, rng).save(folder / f"{name}.png")
            classes, images = classes + 1, images + len(use)
    done.write_text("built\n")
    return {"classes": classes, "images": images, "faces": len(faces)}
