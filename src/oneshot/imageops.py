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
           "remove_small", "fill_holes", "solidity", "edge_values", "otsu_threshold",
           "paper_level",
           "plane_design", "border_plane", "stroke_width"]

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


def edge_values(x: np.ndarray) -> np.ndarray:
    """The values along the four edges of ``x`` (H, W): top, bottom, left, right rows (the
    corners counted twice)."""
    return np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])


def solidity(mask: np.ndarray) -> float:
    """The share of its convex hull that a boolean mask fills (1.0 for a filled convex shape,
    0.0 for an empty mask): the hull of the pixels' centres by Andrew's monotone chain over each
    row's two ends, its area by the shoelace formula plus half its perimeter's pixels (Pick)."""
    rows = np.flatnonzero(mask.any(1))
    if not len(rows):
        return 0.0
    m = mask[rows]
    first, last = m.argmax(1), m.shape[1] - 1 - m[:, ::-1].argmax(1)
    pts = sorted({(int(x), int(y)) for y, a, b in zip(rows, first, last) for x in (a, b)})
    if len(pts) < 3:
        return 1.0

    def chain(points):
        out: list = []
        for p in points:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    hull = np.array(chain(pts) + chain(pts[::-1]), np.float64)
    x, y = hull[:, 0], hull[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    edge = float(np.abs(np.diff(np.vstack([hull, hull[:1]]), axis=0)).max(1).sum())
    return min(1.0, float(mask.sum()) / (area + edge / 2 + 1))


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


def paper_level(sample: np.ndarray, border: np.ndarray, border_share: float = 0.9,
                image_share: float = 0.25) -> float:
    """The paper's level of an image (``sample``: it or a subsample; ``border``: its border
    pixels): the image's median (most of an image is paper), unless the border is light,
    even (10th to 90th percentile within 0.1) paper on the other side of Otsu's level from
    that median: ``border_share`` of it on the light side, a side that holds ``image_share``
    of the image; then the border's median. So a bold dark character cropped with a thin
    margin, whose ink is most of the image, keeps its polarity; a frame drawn along the edge
    or a box-shaped character cropped to its ink (ink all round), a dark table round a
    photographed page and a photo's darkened corners leave the median to decide."""
    median = float(np.median(sample))
    if float(sample.max() - sample.min()) <= 1e-3:
        return median
    t = otsu_threshold(sample.astype(np.float32))
    light = border >= t
    if median >= t or light.mean() < border_share or (sample >= t).mean() < image_share:
        return median
    lo, hi = np.percentile(border[light], [10, 90])
    return float(np.median(border[light])) if hi - lo <= 0.1 else median


def plane_design(rows: np.ndarray, cols: np.ndarray, h: int, w: int) -> np.ndarray:
    """The least-squares design of a plane a + b*row + c*col over an (h, w) image, rows and
    columns scaled to [-0.5, 0.5]: (N, 3) for the N pixels (rows, cols)."""
    return np.stack([np.ones_like(rows, dtype=np.float64), rows / max(h - 1, 1) - 0.5,
                     cols / max(w - 1, 1) - 0.5], axis=1)


def border_plane(g: np.ndarray, start: float | None = None) -> np.ndarray:
    """The paper's level as a plane a + b*row + c*col fitted to the border pixels of ``g``
    (H, W): starting from their median level (or from the border pixels within 0.1 of
    ``start``, the paper's level when known: a tight crop's border may be mostly ink), each
    round fits the plane by least squares to the pixels within 3 robust standard deviations of
    the last one (ink touching the border is left out). With a border that has almost no
    pixels near ``start`` (under 5 %: ink all round, a frame drawn along the edge) the plane is
    ``start`` itself. float32 (H, W); exactly 0 for a border of zeros with some ink on it."""
    h, w = g.shape
    r = np.concatenate([np.zeros(w), np.full(w, h - 1), np.arange(h), np.arange(h)])
    c = np.concatenate([np.arange(w), np.arange(w), np.zeros(h), np.full(h, w - 1)])
    v = g[r.astype(int), c.astype(int)].astype(np.float64)
    a = plane_design(r, c, h, w)
    coef = np.array([np.median(v), 0.0, 0.0])
    near = np.abs(v - start) <= 0.1 if start is not None else np.zeros(0, bool)
    if start is not None and near.sum() < max(3, 0.05 * len(v)):
        return np.full((h, w), start, np.float32)  # no paper on the border (a frame along it)
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
