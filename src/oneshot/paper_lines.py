"""Lines that are paper, not ink: a frame or rule along the image's edge (:func:`edge_rules`)
and the lines of ruled or squared paper across it (:func:`thin_rules`), told apart from a
character's own bars and stems (also when the image is cropped tightly to the character).
Both serve :mod:`oneshot.preprocess`; masks are boolean (H, W) with ink = True.
"""

from __future__ import annotations

import numpy as np

from .imageops import dilate, erode, label_components

__all__ = ["long_runs", "edge_rules", "thin_rules", "SKEWS"]


def long_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """The pixels of ``mask`` in horizontal runs (along axis 1) of ``min_len`` or more."""
    prev = np.pad(mask, ((0, 0), (1, 0)))[:, :-1]
    run = np.cumsum((mask & ~prev).ravel()).reshape(mask.shape) * mask
    keep = np.bincount(run.ravel()) >= min_len
    keep[0] = False
    return keep[run]


def edge_rules(mask: np.ndarray, band: float = 0.08, span: float = 0.6) -> np.ndarray:
    """The pixels of straight horizontal or vertical lines along the image's edge (a frame, a
    ruled line, a scan's edge): runs longer than ``span`` of the side in the rows and columns
    within ``band`` (a fraction of the side) of the edge, where they are not a character's own
    strokes. A line counts when it is part of a box along all four edges, or when the ink it
    belongs to stays within the bands (a line on its own); so the bars of a tightly cropped
    "T", "E" or "Z", which the rest of the character joins, stay. A stroke crossing a line
    keeps the rest of its pixels."""
    h, w = mask.shape
    sides = []  # the runs along the top, bottom, left and right edges
    inner = np.ones_like(mask)  # away from every edge
    for m, o_of, side in ((mask, lambda o: o, w), (mask.T, lambda o: o.T, h)):
        k = max(1, int(round(band * m.shape[0])))
        for rows in (slice(0, k), slice(m.shape[0] - k, m.shape[0])):
            o = np.zeros_like(m)
            o[rows] = long_runs(m[rows], int(np.ceil(span * side)))
            sides.append(o_of(o))
            o_of(inner)[rows] = False
    out = sides[0] | sides[1] | sides[2] | sides[3]
    if not out.any():
        return out
    lab, n = label_components(mask)
    edges = sum((np.bincount(lab[s], minlength=n + 1) > 0).astype(int) for s in sides)
    inward = np.bincount(lab[mask & inner], minlength=n + 1) > 0
    return out & ((edges == 4) | ~inward)[lab]


_EPS = 1e-6
SKEWS = np.arange(-5.0, 5.01, 0.5)  # degrees: how far ruled lines may slant from the axes


def thin_rules(mask: np.ndarray, ink: np.ndarray | None = None, cover: float = 0.85,
               max_ratio: float = 0.6, margin: float = 0.04) -> np.ndarray:
    """The pixels of ruled or squared paper's lines in a binary ink mask: bands of rows (or
    columns), straight or slanted by up to 5 degrees (``SKEWS``), with ink across at least
    ``cover`` of the image and thinner than ``max_ratio`` times the width of the other strokes
    (so a character's own bar, as thick as its other strokes, is kept; a line's thickness is
    its ink summed across it over its peak, from the grey ``ink`` when given, so that faint
    anti-aliased edges count in part), widened by one pixel each side for those edges. Where
    a stroke meets a line (ink two pixels beyond it, on either side) the line's pixels are
    kept. Lines of one direction count as paper only when three or more are evenly spaced (a
    sheet's ruling) or when they run on past the rest of the ink by ``margin`` of the image at
    both ends (specks aside): in an image cropped tightly to a character, the bars that span
    it (a serif Z's hairlines, the thin stems of a bold N) end with it, and are its own. Made
    for images of about 100-300 px."""
    views = [_sheared(mask), _sheared(mask.T)]  # horizontal lines, then vertical ones
    lines = np.zeros_like(mask)
    for (s, rows, full), o in zip(views, (lines, lines.T)):
        _scatter(o, rows, s & full[:, None])
    out = np.zeros_like(mask)
    if not lines.any():
        return out
    width = _width_off(mask & ~lines, dilate(lines, 1))
    if width == 0:
        return out  # nothing but lines: not taken for paper
    grey = mask.astype(np.float32) if ink is None else np.asarray(ink, np.float32)
    reach = _reaches_past(mask & ~dilate(lines, 1), lines,
                          (views[0][2].any(), views[1][2].any()), margin)
    for (s, rows, full), o, g, past in zip(views, (out, out.T), (grey, grey.T), reach):
        idx = np.flatnonzero(full)
        bands = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(idx) else []
        if not (past or _evenly_spaced(bands)):
            continue  # the lines end with the rest: a tight crop's own bars
        gs = np.where(rows >= 0, g[np.clip(rows, 0, g.shape[0] - 1), np.arange(g.shape[1])], 0)
        cut = np.zeros_like(s)
        for band in bands:
            r0, r1, n = int(band[0]), int(band[-1]), s.shape[0]
            across = gs[max(r0 - 1, 0): r1 + 2]
            thick = float(np.median(across.sum(axis=0) / np.maximum(across.max(axis=0), _EPS)))
            if thick > max_ratio * width:
                continue
            above = s[r0 - 2] if r0 >= 2 else np.zeros_like(s[0])
            below = s[r1 + 2] if r1 + 2 < n else np.zeros_like(s[0])
            cut[max(r0 - 1, 0): min(r1 + 2, n)] |= ~(above | below)
        _scatter(o, rows, s & cut)
    return out & mask


def _evenly_spaced(bands: list[np.ndarray]) -> bool:
    """Three or more lines at even gaps (each a whole number of the smallest, within 10 % of
    it and a pixel, so that a line too faint to be found does not count against them): a
    sheet's ruling, wherever the character lies on it."""
    if len(bands) < 3:
        return False
    gaps = np.diff([(b[0] + b[-1]) / 2 for b in bands])
    unit = float(gaps.min())
    return bool(np.abs(gaps - unit * np.round(gaps / unit)).max() <= 0.1 * unit + 1)


def _reaches_past(rest: np.ndarray, lines: np.ndarray, ways: tuple[bool, bool],
                  margin: float) -> tuple[bool, bool]:
    """Whether ``lines`` (horizontal ones, vertical ones: ``ways``) run on past ``rest`` (the
    ink without them) by at least ``margin`` of the image's width at both ends, along the
    columns (horizontal lines), then the rows (vertical lines). What does not count: specks,
    and pieces of the rest that look like more of the lines (no thicker, and longest in a
    direction that has lines: a line along the image's edge, too faint in places to be
    found)."""
    lab, n = label_components(rest)
    k = lab[lab > 0]
    r, c = np.nonzero(lab)
    extent = []
    for x in (c, r):  # each piece's extent across the columns, then the rows
        lo, hi = np.full(n + 1, x.max(initial=0) + 1), np.full(n + 1, -1)
        np.minimum.at(lo, k, x)
        np.maximum.at(hi, k, x)
        extent.append(hi - lo + 1)
    size = np.bincount(k, minlength=n + 1)
    edge = np.bincount(lab[rest & ~erode(rest, 1)], minlength=n + 1)
    like = 2.0 * size <= (2.0 * lines.sum() / max(int((lines & ~erode(lines, 1)).sum()), 1)
                          + 0.5) * np.maximum(edge, 1)  # thickness 2 x area / edge
    like &= ((extent[0] > extent[1]) & ways[0]) | ((extent[1] > extent[0]) & ways[1])
    own = (~like & (size >= max(2, 1e-3 * rest.size)))[lab] & (lab > 0)
    if not own.any():
        return True, True
    past = []
    for axis in (0, 1):
        span, ext = np.flatnonzero(lines.any(axis=axis)), np.flatnonzero(own.any(axis=axis))
        past.append(bool(len(span) and min(ext[0] - span[0], span[-1] - ext[-1])
                         >= margin * rest.shape[1 - axis]))
    return past[0], past[1]


def _sheared(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, rows, full): ``m`` sheared so that its lines at the best of ``SKEWS`` run along
    S's rows (S[k, c] = m[rows[k, c], c], rows outside ``m`` are -1), and S's rows with ink
    in at least 85 % of the columns. The best skew has the most such rows (then the
    straightest); the skews are compared by counting the ink pixels alone."""
    h, w = m.shape
    ys, xs = np.nonzero(m) if m.any(axis=0).mean() >= 0.85 else ((), ())  # else no line fits
    best, most = 0.0, 0
    for deg in sorted(SKEWS, key=abs) if len(xs) else ():
        shift = _shift(deg, w)
        k = ys - shift[xs] + int(np.abs(shift).max())
        n = int((np.bincount(k) >= 0.85 * w).sum()) if len(k) else 0
        if n > most:
            best, most = deg, n
    if not most:  # no line: the view is never used
        return m, np.broadcast_to(np.arange(h)[:, None], (h, w)), np.zeros(h, bool)
    shift = _shift(best, w)
    pad = int(np.abs(shift).max())
    rows = np.arange(-pad, h + pad)[:, None] + shift[None, :]
    inside = (rows >= 0) & (rows < h)
    rows = np.where(inside, rows, -1)
    s = np.where(inside, m[np.clip(rows, 0, h - 1), np.arange(w)[None, :]], False)
    return s, rows, s.mean(axis=1) >= 0.85


def _shift(deg: float, w: int) -> np.ndarray:
    """Row offset of each column for lines slanted by ``deg`` degrees (0 at the middle)."""
    return np.round(np.tan(np.radians(deg)) * (np.arange(w) - (w - 1) / 2)).astype(int)


def _scatter(out: np.ndarray, rows: np.ndarray, sel: np.ndarray) -> None:
    """Set ``out`` at the pixels that the sheared view's selected cells ``sel`` come from."""
    k, c = np.nonzero(sel & (rows >= 0))
    out[rows[k, c], c] = True


def _width_off(rest: np.ndarray, near: np.ndarray) -> float:
    """:func:`~oneshot.imageops.stroke_width` of ``rest`` counted away from ``near`` (where
    removed lines cut the strokes, which would add edge pixels that are not the strokes' own)."""
    area = int((rest & ~near).sum())
    lost = int((rest & ~erode(rest, 1) & ~near).sum())
    return 2.0 * area / max(lost, 1) if area else 0.0
