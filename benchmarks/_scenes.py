"""Photographed characters, synthesised: the 30 scene types of ``photo_scenes.py``. Not a script.

Luminance = illumination x reflectance (+ noise, JPEG): a character (float 105 x 105, ink = 1)
upscaled onto a 105-, 1000- or 2000-px page at a seeded size and place, lit by shadows (hard or
soft edges, a hand, two, one on the character), a vignette or uneven light; on white, grey or
coloured paper, a table, a blackboard; in pencil, marker or thin pen; cropped tight, noisy,
JPEG'd, or a typeset glyph instead. A scene is ``f(rng, char) -> (8-bit image, grey or RGB; its
ink as floats at the image's geometry)``, all randomness drawn from ``rng`` in a fixed order.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = "/usr/share/fonts/truetype/dejavu/"  # Debian's fonts-dejavu
GLYPHS = "AKRWZ&#§ЖЩλψ8Bgå"
# the scenes without a shadow across the page (the table's total rows count them apart)
NO_SHADOW = frozenset({"clean_105", "clean_1000", "vignette_1000", "uneven_phone_1000",
                       "table_1000", "pencil_1000", "chalk_1000"})


def glyph(rng, size=105, bold=False):
    """A typeset character, white (1) on black (0), centred in a ``size`` square."""
    ch = rng.choice(list(GLYPHS))
    font = ImageFont.truetype(FONTS + ("DejaVuSans-Bold.ttf" if bold else "DejaVuSerif.ttf"), 80)
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = d.textbbox((0, 0), ch, font=font)
    d.text(((size - (x1 - x0)) / 2 - x0, (size - (y1 - y0)) / 2 - y0), ch, fill=255, font=font)
    return np.asarray(im, np.float32) / 255


def upscale(char, side):
    """char (ink = 1, float) -> (side, side) antialiased ink in [0, 1]."""
    im = Image.fromarray((char * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
    if side > 150:
        im = im.filter(ImageFilter.GaussianBlur(side / 105 * 0.6))
    x = np.asarray(im, np.float32) / 255
    return np.clip((x - 0.3) / 0.4, 0, 1)


def place(char, side, frac, rng, stroke=0):
    """Ink image (side, side): ``char`` spanning ``frac`` of the side at a random offset;
    ``stroke`` px > 0: dilated (a marker), < 0: eroded (a thin pen)."""
    n = max(8, int(side * frac))
    c = upscale(char, n)
    if stroke:
        k = 2 * abs(stroke) + 1
        im = Image.fromarray((c * 255).astype(np.uint8))
        im = im.filter(ImageFilter.MaxFilter(k) if stroke > 0 else ImageFilter.MinFilter(k))
        c = np.asarray(im, np.float32) / 255
    out = np.zeros((side, side), np.float32)
    r0 = rng.integers(0, side - n + 1)
    c0 = rng.integers(0, side - n + 1)
    out[r0:r0 + n, c0:c0 + n] = c
    return out


def blur(x, sigma):
    """Gaussian blur by FFT (edges padded; none under sigma 0.3): imageops.gaussian_blur's
    taps are too slow at the 100-px sigmas of 2,000-px scenes."""
    if sigma <= 0.3:
        return x
    h, w = x.shape
    p = int(3 * sigma) + 1
    xp = np.pad(x, p, mode="edge")
    big_h, big_w = xp.shape
    fy, fx = np.fft.fftfreq(big_h)[:, None], np.fft.rfftfreq(big_w)[None, :]
    g = np.exp(-2 * (math.pi * sigma) ** 2 * (fy ** 2 + fx ** 2))
    out = np.fft.irfft2(np.fft.rfft2(xp) * g, s=(big_h, big_w))
    return out[p:p + h, p:p + w].astype(np.float32)


def halfplane(side, rng, soft, cover=None):
    """1 in the shadow: a half plane (covering ``cover`` of the image, default 20-80 %) with
    its edge blurred by a Gaussian of sigma soft * side."""
    t = rng.uniform(0, 2 * math.pi)
    rr, cc = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    d = rr * math.sin(t) + cc * math.cos(t)
    q = cover if cover is not None else rng.uniform(0.2, 0.8)
    off = np.quantile(d, 1 - q)
    m = np.clip(0.5 + (d - off) * side, 0, 1).astype(np.float32)
    return np.clip(blur(m, soft * side), 0, 1)


def hand(side, rng, soft):
    """A hand's shadow: a palm disc from outside an edge plus 2-4 fingers reaching in."""
    im = Image.new("L", (side, side), 0)
    d = ImageDraw.Draw(im)
    edge = rng.integers(4)
    a, depth, rad = (rng.uniform(lo, hi) * side
                     for lo, hi in ((0.2, 0.8), (0.15, 0.45), (0.3, 0.5)))
    cx, cy = {0: (a, -rad + depth), 1: (a, side + rad - depth),
              2: (-rad + depth, a), 3: (side + rad - depth, a)}[edge]
    d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=255)
    inward = {0: (0, 1), 1: (0, -1), 2: (1, 0), 3: (-1, 0)}[edge]
    for _ in range(rng.integers(2, 5)):
        ang = math.atan2(inward[1], inward[0]) + rng.uniform(-0.6, 0.6)
        length = rng.uniform(0.2, 0.4) * side
        wdt = rng.uniform(0.035, 0.06) * side
        sx, sy = cx + rad * 0.8 * math.cos(ang), cy + rad * 0.8 * math.sin(ang)
        ex, ey = sx + length * math.cos(ang), sy + length * math.sin(ang)
        d.line([sx, sy, ex, ey], fill=255, width=int(2 * wdt))
        d.ellipse([ex - wdt, ey - wdt, ex + wdt, ey + wdt], fill=255)
    m = np.asarray(im, np.float32) / 255
    return np.clip(blur(m, soft * side), 0, 1)


def smooth_field(side, rng, cells=4):
    """A smooth random field in [0, 1]: ``cells`` x ``cells`` normal values, bicubic."""
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    f = np.asarray(Image.fromarray(g).resize((side, side), Image.BICUBIC), np.float32)
    return (f - f.min()) / max(f.max() - f.min(), 1e-6)


def vignette(side, strength):
    rr, cc = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    return 1 - strength * (rr ** 2 + cc ** 2) / 0.5


def shade(mask, s):
    """Light: 1 outside the shadow, ``s`` inside."""
    return 1 - (1 - s) * mask


def edge(soft_lo=0.002, soft_hi=0.05, s_lo=0.4, s_hi=0.7):
    """Light: a straight shadow; ranges of its edge's blur (sigma / side) and its light."""
    def light(rng, side, ink):
        return shade(halfplane(side, rng, rng.uniform(soft_lo, soft_hi)), rng.uniform(s_lo, s_hi))
    return light


def two_shadows(rng, side, ink):
    light = 1
    for _ in range(2):
        mask = halfplane(side, rng, rng.uniform(0.002, 0.05), rng.uniform(0.2, 0.5))
        light = light * shade(mask, rng.uniform(0.5, 0.8))
    return light


def hand_shadow(rng, side, ink):
    return shade(hand(side, rng, rng.uniform(0.005, 0.04)), rng.uniform(0.4, 0.7))


def uneven(rng, side, ink):
    return 1 - rng.uniform(0.3, 0.6) * smooth_field(side, rng, rng.integers(3, 6))


def even(rng, side, ink):
    return np.ones((side, side), np.float32)


def to_u8(lum):
    return np.clip(np.round(lum * 255), 0, 255).astype(np.uint8)


def render(ink, light, paper=0.88, inkref=0.08, noise=0.0, rng=None, q=None, rgb=None):
    """luminance = light * (paper * (1 - ink) + inkref * ink); rgb: per-channel papers."""
    if rgb is not None:
        lum = np.stack([light * (p * (1 - ink) + inkref * ink) for p in rgb], -1)
    else:
        lum = light * (paper * (1 - ink) + inkref * ink)
    if noise:
        lum = lum + noise * rng.standard_normal(lum.shape).astype(np.float32)
    u8 = to_u8(lum)
    if q:  # saved as a JPEG of quality q, and read back
        b = io.BytesIO()
        Image.fromarray(u8).save(b, "JPEG", quality=int(q))
        u8 = np.asarray(Image.open(io.BytesIO(b.getvalue())))
    return u8


def lit(side, light_of, frac=(0.4, 0.7), stroke=0, glyphs=None, **kw):
    """The character at ``frac`` of the side, lit by ``light_of(rng, side, ink)``; ``glyphs``:
    a typeset glyph (False: serif, True: bold sans) instead of the character."""
    def f(rng, char):
        if glyphs is not None:
            char = glyph(rng, bold=glyphs)
        ink = place(char, side, rng.uniform(*frac), rng, stroke=stroke)
        return render(ink, light_of(rng, side, ink), rng=rng, **kw), ink
    return f


def shadow_on_char(side):
    """An elliptic shadow round the character's centre of ink, about its size."""
    def f(rng, char):
        frac = rng.uniform(0.3, 0.6)
        ink = place(char, side, frac, rng)
        rows, cols = np.nonzero(ink > 0.5)
        soft = rng.uniform(0.005, 0.03)  # drawn before the radii
        rr, cc = np.mgrid[0:side, 0:side].astype(np.float32)
        ry, rx = (0.5 * frac * side * rng.uniform(0.8, 1.3) for _ in range(2))
        d = np.sqrt(((rr - rows.mean()) / ry) ** 2 + ((cc - cols.mean()) / rx) ** 2)
        m = np.clip(blur((d < 1).astype(np.float32), soft * side), 0, 1)
        return render(ink, shade(m, rng.uniform(0.4, 0.7))), ink
    return f


def coloured(side):
    papers = [(0.95, 0.9, 0.5), (0.55, 0.72, 0.92), (0.95, 0.7, 0.75), (0.7, 0.9, 0.65)]

    def f(rng, char):
        ink = place(char, side, rng.uniform(0.4, 0.7), rng)
        light = edge()(rng, side, ink)
        return render(ink, light, rgb=papers[rng.integers(4)], inkref=0.1), ink
    return f


def table(side, shadow):
    """A rotated page round the character, covering 50-85 % of the image, on a dark table."""
    def f(rng, char):
        ink = place(char, side, rng.uniform(0.3, 0.45), rng)
        rows, cols = np.nonzero(ink > 0.5)
        cy, cx = rows.mean(), cols.mean()
        im = Image.new("L", (side, side), 0)
        a = rng.uniform(-0.3, 0.3)
        hw, hh = rng.uniform(0.3, 0.45) * side, rng.uniform(0.35, 0.5) * side
        pts = [(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a))
               for x, y in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))]
        ImageDraw.Draw(im).polygon(pts, fill=255)
        page = np.asarray(im, np.float32) / 255
        tab = rng.uniform(0.08, 0.25)
        refl = page * (0.88 * (1 - ink) + 0.08 * ink) + (1 - page) * tab
        light = (edge(0.002, 0.04) if shadow else even)(rng, side, ink)
        return to_u8(light * refl), ink * page
    return f


def pencil(side, shadow):
    def f(rng, char):
        ink = place(char, side, rng.uniform(0.4, 0.7), rng, stroke=-int(side * 0.006))
        light = (edge(s_lo=0.5, s_hi=0.75)(rng, side, ink) if shadow
                 else 1 - 0.2 * smooth_field(side, rng, 3))
        return render(ink, light, inkref=rng.uniform(0.45, 0.65), noise=0.015, rng=rng), ink
    return f


def chalk(side, shadow):
    """Light, grainy chalk on a dark board, smudged."""
    def f(rng, char):
        ink = place(char, side, rng.uniform(0.4, 0.7), rng)
        tex = (rng.random(ink.shape) > 0.25).astype(np.float32)  # chalk's grain
        light = (edge(s_lo=0.45)(rng, side, ink) if shadow
                 else 1 - 0.15 * smooth_field(side, rng, 3))
        board = rng.uniform(0.12, 0.25)
        refl = board + (rng.uniform(0.7, 0.85) - board) * ink * (0.6 + 0.4 * tex)
        refl = refl + 0.03 * smooth_field(side, rng, 8)  # smudges
        noise = 255 * 0.01 * rng.standard_normal(ink.shape)
        return np.clip(np.round(light * refl * 255 + noise), 0, 255).astype(np.uint8), ink
    return f


def tight(side):
    """The character at 80 % of the side, the image cropped to 2 % round its ink."""
    def f(rng, char):
        ink = place(char, side, 0.8, rng)
        rows, cols = np.nonzero(ink > 0.5)
        m = int(side * 0.02)
        box = (slice(max(rows.min() - m, 0), rows.max() + m + 1),
               slice(max(cols.min() - m, 0), cols.max() + m + 1))
        return render(ink, edge()(rng, side, ink))[box], ink[box]
    return f


SCENES = {
    "clean_105": lit(105, even),
    "clean_1000": lit(1000, even),
    "hard_105": lit(105, edge(0.0, 0.01), frac=(0.55, 0.85)),
    "hard_1000": lit(1000, edge(0.0, 0.005)),
    "soft_105": lit(105, edge(0.03, 0.12), frac=(0.55, 0.85)),
    "soft_1000": lit(1000, edge(0.03, 0.12)),
    "hand_1000": lit(1000, hand_shadow),
    "hand_105": lit(105, hand_shadow),
    "two_shadows_1000": lit(1000, two_shadows),
    "shadow_on_char_1000": shadow_on_char(1000),
    "deep_1000": lit(1000, edge(0.0, 0.05, 0.25, 0.35)),
    "grey_paper_shadow_1000": lit(1000, edge(0.0), paper=0.55),
    "colour_paper_shadow_1000": coloured(1000),
    "vignette_1000": lit(1000, lambda rng, side, ink: vignette(side, rng.uniform(0.3, 0.6))),
    "uneven_phone_1000": lit(1000, uneven, noise=0.02, q=80),
    "table_1000": table(1000, False),
    "table_shadow_1000": table(1000, True),
    "pencil_1000": pencil(1000, False),
    "pencil_shadow_1000": pencil(1000, True),
    "chalk_1000": chalk(1000, False),
    "chalk_shadow_1000": chalk(1000, True),
    "marker_shadow_1000": lit(1000, edge(), frac=(0.45, 0.7), stroke=12, inkref=0.06),
    "thinpen_shadow_1000": lit(1000, edge(), frac=(0.45, 0.7), stroke=-9, inkref=0.15),
    "tight_shadow_105": tight(105),
    "tight_shadow_1000": tight(1000),
    "noise_shadow_1000": lit(1000, edge(), noise=0.08),
    "jpeg_shadow_1000": lit(1000, edge(), q=25),
    "glyph_shadow_1000": lit(1000, edge(), glyphs=False),
    "boldglyph_shadow_1000": lit(1000, edge(), glyphs=True),
    "clean_2000_shadow": lit(2000, edge(0.0)),
}
