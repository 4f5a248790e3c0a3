"""A page photographed on a dark table (preprocessing step 2a, ``oneshot.page.fill_surround``):
the table is paper, not ink; and what must not be taken for a table is left alone."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from support import glyph

from oneshot.imageops import solidity
from oneshot.page import fill_surround
from oneshot.preprocess import ink_squares

SIDE = 420


def _char() -> np.ndarray:
    """An "E"-like character at SIDE, ink = 1, its box from 30 % to 60 % of the image."""
    small = glyph("eq", 40)
    small[:, 8:14] = 1  # a stem joining the two bars
    ink = np.zeros((SIDE, SIDE), np.float32)
    big = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((168, 168)),
                     np.float32) / 255
    ink[120:288, 130:298] = big
    return ink


def _page(angle: float = 0.2, table: float = 0.15) -> np.ndarray:
    """The page (a rotated rectangle round the character, 55 % of the image) at reflectance
    0.88 on a table at ``table``, the ink at 0.08: 8-bit luminance."""
    im = Image.new("L", (SIDE, SIDE), 0)
    c, hw, hh = SIDE / 2, 0.36 * SIDE, 0.4 * SIDE
    pts = [(c + x * math.cos(angle) - y * math.sin(angle),
            c + x * math.sin(angle) + y * math.cos(angle))
           for x, y in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))]
    ImageDraw.Draw(im).polygon(pts, fill=255)
    page = np.asarray(im, np.float32) / 255
    ink = _char()
    lum = page * (0.88 * (1 - ink) + 0.08 * ink) + (1 - page) * table
    return np.round(255 * lum).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_page_on_a_dark_table_reads_as_the_page_alone():
    """Version 6 took the table for the paper's level and the page for ink; now the output
    is the character as on a sheet of white paper, whichever the table's level and the
    page's angle."""
    clean = ink_squares(np.round(255 * (1 - 0.92 * _char())).astype(np.uint8))[0]
    for angle, table in ((0.2, 0.15), (-0.25, 0.05), (0.0, 0.3)):
        img = _page(angle, table)
        g = img.astype(np.float32) / 255
        assert not np.array_equal(fill_surround(g), g)
        assert _iou(ink_squares(img)[0], clean) > 0.9, (angle, table)


def test_writing_under_a_deep_shadow_along_the_edge_is_not_a_table():
    """A shadow keeps the ink's ratio to the paper: strokes inside the dark region mean a
    shadow, which step 3a handles, so step 2a changes nothing."""
    ink = _char()
    light = np.ones((SIDE, SIDE), np.float32)
    light[:, :250] = 0.15  # a deep shadow over the left of the page and of the character
    g = light * (0.88 * (1 - ink) + 0.08 * ink)
    assert fill_surround(g) is g


def test_chalk_a_vignette_and_a_tight_bold_glyph_are_left_alone():
    ink = _char()
    chalk = 0.1 + 0.7 * ink  # white writing on a dark board: the board is the paper
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE - 0.5
    vignette = (1 - 1.6 * (xx ** 2 + yy ** 2)) * (0.88 * (1 - ink) + 0.08 * ink)
    bold_l = np.full((200, 160), 0.9, np.float32)  # a bold "L" cropped to its ink
    bold_l[:, :50], bold_l[-50:, :] = 0.05, 0.05
    for name, g in (("chalk", chalk), ("vignette", vignette), ("bold L", bold_l)):
        g = g.astype(np.float32)
        assert fill_surround(g) is g, name


def test_solidity_of_convex_and_hollow_shapes():
    box = np.zeros((60, 60), bool)
    box[10:50, 5:55] = True
    assert solidity(box) == 1.0
    yy, xx = np.mgrid[0:101, 0:101]
    assert solidity((yy - 50) ** 2 + (xx - 50) ** 2 < 40 ** 2) > 0.97  # a disc
    ell = np.zeros((60, 60), bool)
    ell[:, :8], ell[-8:, :] = True, True
    assert solidity(ell) < 0.5
    assert solidity(np.zeros((5, 5), bool)) == 0.0


def test_light_rings_on_a_dark_board_and_tight_bold_bars_are_not_pages():
    """Review of the first cut: a light ring drawn on a dark board (chalk, a dark-mode
    drawing) had its dark inside taken for a page's ink and came out as a filled disc; a
    tight crop of a bold Xi (bars along the edges, grey ink) lost its outer bars."""
    im = Image.new("L", (400, 400), 0)
    ImageDraw.Draw(im).ellipse([60, 60, 340, 340], outline=255, width=6)
    ring = np.asarray(im, np.float32) / 255
    xi = np.full((150, 170), 0.95, np.float32)  # a bold Xi cropped to its ink, ink at 0.05
    xi[:24], xi[-24:], xi[63:87, 25:145] = 0.05, 0.05, 0.05
    for name, g in (("ring on 0.15", 0.15 + 0.7 * ring), ("ring on 0.01", 0.01 + 0.84 * ring),
                    ("Xi", xi)):
        g = g.astype(np.float32)
        assert fill_surround(g) is g, name
    clean = ink_squares(np.round(255 * (1 - ring)).astype(np.uint8))[0]
    assert _iou(ink_squares(np.round(255 * (0.15 + 0.7 * ring)).astype(np.uint8))[0],
                clean) > 0.9


def test_a_scanners_black_margin_is_paper():
    """A pure black (0) margin on one to three sides, as a scanner's lid or a #000 interface
    leaves: the first cut refused black as a glyph's fill; the page's own tests suffice."""
    ink = _char()
    clean = ink_squares(np.round(255 * (1 - 0.92 * ink)).astype(np.uint8))[0]
    for sides in ((np.s_[:, :60],), (np.s_[:, :60], np.s_[:50, :]),
                  (np.s_[:, :60], np.s_[:50, :], np.s_[:, -70:])):
        lum = 0.9 * (1 - ink) + 0.06 * ink
        for s in sides:
            lum[s] = 0
        assert _iou(ink_squares(np.round(255 * lum).astype(np.uint8))[0], clean) > 0.9, sides
