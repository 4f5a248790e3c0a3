"""Small image operations in numpy, on single 2-D images (H, W): morphology, blur, connected
components, Otsu's threshold, a robust background plane, a stroke-width estimate.

They serve the preprocessing (:mod:`oneshot.preprocess`) and the robustness suite's
perturbations (:mod:`oneshot.evaluation.perturbations`). Distances are in pixels; "ink" masks are
boolean with ink = True. Images outside the frame count as background (0) for morphology and as
the nearest edge pixel for blurring.
"""

from __future__ import annotations

import numpy as np

__all__ = ["disk_offsets", "dilate", "erode", "gaussian_blur", "label_components",
           "remove_small", "otsu_threshold", "border_plane", "stroke_width",
           "long_runs", "edge_rules"]

_HIST_BINS = 256
_PLANE_ITERS = 3  # reweighting rounds of the robust plane fit
_PLANE_K = 3.0  # border pixels further than K robust standard deviations are ink, not paper
_MAD_TO_SD = 1.4826


def disk_offsets(radius: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets of a digital disk: dy^2 + dx^2 <= radius^2 (radius 1: the 4-cross)."""
    r = int(radius)
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
            if dy * dy + dx * dx <= r * r]


def _shifted(x: np.ndarray, r: int, fill) -> tuple[np.ndarray, int, int]:
    return np.pad(x, r, constant_values=fill), x.shape[0], x.shape[1]


def dilate(x: np.ndarray, radius: int) -> np.ndarray:
    """Grey (or binary) dilation: the maximum over a disk of ``radius`` pixels; same dtype."""
    if radius <= 0:
        return x.copy()
    p, h, w = _shifted(x, radius, 0)
    out = np.zeros_like(x)
    for dy, dx in disk_offsets(radius):
        np.maximum(out, p[radius + dy: radius + dy + h, radius + dx: radius + dx + w], out=out)
    return out


def erode(x: np.ndarray, radius: int) -> np.ndarray:
    """Grey (or binary) erosion: the minimum over a disk of ``radius`` pixels (outside = 0)."""
    if radius <= 0:
        return x.copy()
    p, h, w = _shifted(x, radius, 0)
    out = x.copy()
    for dy, dx in disk_offsets(radius):
        np.minimum(out, p[radius + dy: radius + dy + h, radius + dx: radius + dx + w], out=out)
    return out


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (kernel cut at 3 sigma, edges replicated); float32."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    out = np.asarray(x, np.float32)
    for axis in (0, 1):
        p = np.pad(out, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            acc += w * (p[i: i + n] if axis == 0 else p[:, i: i + n])
        out = acc
    return out


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Connected components of a boolean mask: int64 labels (0 = not in the mask, 1..K) and K.

    Vectorised min-label propagation with pointer jumping: each round, every pixel takes the
    smallest label among itself and its neighbours, then the label of the pixel that label names.
    Runs on the mask's bounding box only (labels are numbered in raster order either way).
    """
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    out = np.zeros(mask.shape, np.int64)
    if not len(rows):
        return out, 0
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    mask = mask[box]
    h, w = mask.shape
    big = h * w
    lab = np.where(mask, np.arange(big, dtype=np.int32).reshape(h, w), np.int32(big))
    if connectivity == 8:
        offs = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    else:
        offs = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    p = np.full((h + 2, w + 2), big, lab.dtype)
    flat = np.full(big + 1, big, lab.dtype)
    while True:
        p[1:-1, 1:-1] = lab
        new = lab.copy()
        for dy, dx in offs:
            np.minimum(new, p[1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w], out=new)
        new[~mask] = big
        flat[:big] = new.ravel()
        new = flat[new]  # pointer jumping: follow the named pixel's label
        if np.array_equal(new, lab):
            break
        lab = new
    roots, labels = np.unique(lab[mask], return_inverse=True)
    out[box][mask] = labels + 1
    return out, len(roots)


def remove_small(mask: np.ndarray, min_size: int, connectivity: int = 8) -> np.ndarray:
    """``mask`` without its components of fewer than ``min_size`` pixels."""
    if min_size <= 1 or not mask.any():
        return mask.copy()
    lab, n = label_components(mask, connectivity)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = sizes >= min_size
    keep[0] = False
    return keep[lab]


def fill_holes(mask: np.ndarray, max_size: int) -> np.ndarray:
    """``mask`` with its holes (4-connected paper) of at most ``max_size`` pixels inked."""
    return ~remove_small(~mask, max_size + 1, connectivity=4)


def otsu_threshold(x: np.ndarray, bins: int = _HIST_BINS) -> float:
    """Otsu's threshold of values in [0, 1]: the level maximising the between-class variance.
    Values strictly above it are the brighter class. For two distinct values, it lies between
    them."""
    hist, edges = np.histogram(np.clip(x, 0, 1), bins=bins, range=(0.0, 1.0))
    p = hist / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m = np.cumsum(p * centres)
    w1 = 1 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m[-1] * w0 - m) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    i = int(np.argmax(between))
    return float(edges[i + 1])


def _plane_design(rows: np.ndarray, cols: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.stack([np.ones_like(rows, dtype=np.float64), rows / max(h - 1, 1) - 0.5,
                     cols / max(w - 1, 1) - 0.5], axis=1)


def border_plane(g: np.ndarray, start: float | None = None) -> np.ndarray:
    """The paper's level as a plane a + b*row + c*col fitted to the border pixels of ``g``
    (H, W): starting from their median level (or from the border pixels within 0.1 of
    ``start``, the paper's level when known: a tight crop's border may be mostly ink), each
    round fits the plane by least squares to the pixels within 3 robust standard deviations of
    the last one (ink touching the border is left out). float32 (H, W); exactly 0 for a border
    of zeros with some ink on it."""
    h, w = g.shape
    r = np.concatenate([np.zeros(w), np.full(w, h - 1), np.arange(h), np.arange(h)])
    c = np.concatenate([np.arange(w), np.arange(w), np.zeros(h), np.full(h, w - 1)])
    v = g[r.astype(int), c.astype(int)].astype(np.float64)
    a = _plane_design(r, c, h, w)
    coef = np.array([np.median(v), 0.0, 0.0])
    near = np.abs(v - start) <= 0.1 if start is not None else np.zeros(0, bool)
    if near.sum() >= 3:
        coef, *_ = np.linalg.lstsq(a[near], v[near], rcond=None)
    for _ in range(_PLANE_ITERS):
        res = v - a @ coef
        mad = np.median(np.abs(res - np.median(res)))
        keep = np.abs(res) <= _PLANE_K * max(_MAD_TO_SD * mad, 1e-3)
        if keep.sum() < 3:
            break
        coef, *_ = np.linalg.lstsq(a[keep], v[keep], rcond=None)
    # a + b*row + c*col is separable: two vectors, not an (H*W, 3) design (gigabytes when large)
    rows = coef[0] + coef[1] * (np.arange(h) / max(h - 1, 1) - 0.5)
    cols = coef[2] * (np.arange(w) / max(w - 1, 1) - 0.5)
    return rows.astype(np.float32)[:, None] + cols.astype(np.float32)[None, :]


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary ink mask, 2 * area / (pixels lost to one
    4-cross erosion): exact for long straight strokes of width >= 2; 0 with no ink."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    lost = area - int(erode(mask, 1).sum())
    return 2.0 * area / max(lost, 1)


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
    within ``band`` (a fraction of the side) of the edge. A stroke crossing such a line keeps
    the rest of its pixels."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for m, o, side in ((mask, out, w), (mask.T, out.T, h)):
        k = max(1, int(round(band * m.shape[0])))
        for rows in (slice(0, k), slice(m.shape[0] - k, m.shape[0])):
            o[rows] |= long_runs(m[rows], int(np.ceil(span * side)))
    return out


_EPS = 1e-6
SKEWS = np.arange(-5.0, 5.01, 0.5)  # degrees: how far ruled lines may slant from the axes


def thin_rules(mask: np.ndarray, ink: np.ndarray | None = None, cover: float = 0.85,
               max_ratio: float = 0.6) -> np.ndarray:
    """The pixels of ruled or squared paper's lines in a binary ink mask: bands of rows (or
    columns), straight or slanted by up to 5 degrees (``SKEWS``), with ink across at least
    ``cover`` of the image and thinner than ``max_ratio`` times the width of the other strokes
    (so a character's own bar, as thick as its other strokes, is kept; a line's thickness is
    its ink summed across it over its peak, from the grey ``ink`` when given, so that faint
    anti-aliased edges count in part), widened by one pixel each side for those edges. Where
    a stroke meets a line (ink two pixels beyond it, on either side) the line's pixels are
    kept. Made for images of about 100-300 px."""
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
    for (s, rows, full), o, g in zip(views, (out, out.T), (grey, grey.T)):
        gs = np.where(rows >= 0, g[np.clip(rows, 0, g.shape[0] - 1), np.arange(g.shape[1])], 0)
        idx = np.flatnonzero(full)
        cut = np.zeros_like(s)
        for band in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(idx) else []:
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
    """:func:`stroke_width` of ``rest`` counted away from ``near`` (where removed lines cut
    the strokes, which would add edge pixels that are not the strokes' own)."""
    area = int((rest & ~near).sum())
    lost = int((rest & ~erode(rest, 1) & ~near).sum())
    return 2.0 * area / max(lost, 1) if area else 0.0
