"""Characters photographed in shadow, synthesised: how often the preprocessing recovers the ink,
with and without its steps for the page (version 7's default: a dark table round the page,
shade). 30 scene types (``_scenes.py``: hard and soft shadow
edges, a hand's shadow, two shadows, a shadow on the character, deep shade, grey and coloured
paper, a vignette, uneven light, a page on a table, pencil, chalk, marker, a thin pen, tight
crops, noise, JPEG, typeset glyphs; pages of 105, 1000 or 2000 px; 23 with a shadow across the
page, 7 without), N images each (default 12), drawn from seed crc32(scene name) + image number:
the character (one of the 400 training images of Lake's 20 runs), its size, place and lighting.
Each image goes through ``oneshot.preprocess.ink_squares`` twice: with version 5's options
(``background="plane"``, neither step) and with ``DEFAULT`` (version 7: a dark table round the
page set to paper, then a shadow across part of the page taken for paper; version 6 had the
shadow only).

    OMP_NUM_THREADS=1 ONESHOT_DATA=... python benchmarks/photo_scenes.py [--scenes NAME ...]
        [--per-scene 12] [--json scenes.json] [--grids DIR]

Judging: the reference is version 5's output for a perfect rendering of the same ink at the same
geometry (black on white, no light). Each output and the reference are reduced alike: pixels
over 0.5, components under 8 % of the ink dropped, cropped to the ink's box, centred in a square,
scaled to 64 px. An output is good when its IoU with the reference is at least 0.7 and its ink
(pixels over 0.5 of the 105 x 105 output) is within 2x of the reference's; an image the
preprocessing refuses is not good. Its score is the IoU, 0 when the ink is off by over 2x; the
page steps made it worse when the default is not good and scores over 0.15 below version 5. IoUs
and ink shares are rounded to 3 decimals before judging. Prints a Markdown table per scene and
totals for the scenes with and without a shadow; ``--json`` writes every image's record,
``--grids DIR`` a PNG per scene (rows: input, reference, version 5, the default; under each
column its IoUs). Takes about 1.5 minutes on one core.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from _common import at_least, markdown_table, parser, write_json
from _scenes import NO_SHADOW, SCENES
from PIL import Image, ImageDraw

from oneshot import load_lake_runs
from oneshot.imageops import remove_small
from oneshot.preprocess import DEFAULT, ImageError, fit_square, ink_squares

OPTIONS = {"plane": dataclasses.replace(DEFAULT, background="plane"), "shade": DEFAULT}
LABELS = {"plane": "version 5: plane only", "shade": "version 7: default"}
GOOD = 0.7  # IoU with the reference at or above which an output is good ...
INK_RATIO = 2.0  # ... if its ink is within this factor of the reference's
WORSE = 0.15  # the shade step made an image worse: its score this much below plane only's
KEEP = 0.08  # components under this share of the ink are dropped before the IoU
SIZE = 64  # px of the squares compared
THUMB = 110  # px of a grid's cells
VERDICTS = ("good_plane", "good_shade", "shade_worse", "both_fail")  # counted per scene


def characters(data_dir=None, cache=None) -> np.ndarray:
    """The training images of Lake's 20 runs, in run order: (400, 105, 105) floats, ink = 1."""
    runs = load_lake_runs(data_dir, cache)
    return np.concatenate([r.train_images for r in runs]).astype(np.float32)


def process(img: np.ndarray, options) -> np.ndarray | None:
    """``ink_squares``' 105 x 105 output, None when it refuses the image."""
    try:
        return ink_squares([img], options=options)[0]
    except ImageError:
        return None


def reduce(out: np.ndarray | None) -> np.ndarray | None:
    """An output as compared: ink over 0.5 without its components under ``KEEP`` of the ink,
    cropped to its box, centred in a square and scaled to ``SIZE`` px; None if no ink."""
    if out is None:
        return None
    m = out > 0.5
    m = remove_small(m, math.ceil(KEEP * m.sum()))
    if not m.any():
        return None
    r, c = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    sq = fit_square(m[r[0]:r[-1] + 1, c[0]:c[-1] + 1].astype(np.float32))  # centred, no margin
    im = Image.fromarray(sq * 255).convert("L").resize((SIZE, SIZE), Image.BILINEAR)
    return np.asarray(im) > 127


def iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    return float((a & b).sum() / max((a | b).sum(), 1))


def ink_share(out: np.ndarray | None) -> float | None:
    return None if out is None else round(float((out > 0.5).mean()), 3)


def ink_ok(rec: dict, key: str) -> bool:
    """Option ``key``'s output has ink, within ``INK_RATIO`` of the reference's."""
    ink, ref = rec[f"ink_{key}"], rec["ink_ref"]
    return ink is not None and ref is not None and (
        1 / INK_RATIO <= ink / max(ref, 1e-6) <= INK_RATIO)


def judge(rec: dict) -> dict:
    """The verdicts on one image's record: good with each option, worse with the shade step
    (its score, the IoU or 0 when the ink is off, over ``WORSE`` below plane only's), bad with
    both."""
    good = {key: rec[f"iou_{key}"] >= GOOD and ink_ok(rec, key) for key in OPTIONS}
    score = {key: rec[f"iou_{key}"] if ink_ok(rec, key) else 0.0 for key in OPTIONS}
    return {"good_plane": good["plane"], "good_shade": good["shade"],
            "shade_worse": not good["shade"] and score["shade"] < score["plane"] - WORSE,
            "both_fail": not good["plane"] and not good["shade"]}


def one_image(scene: str, k: int, chars: np.ndarray) -> tuple[dict, list]:
    """Image ``k`` of ``scene``: (its record, [input, reference, the options' outputs])."""
    rng = np.random.default_rng(zlib.crc32(scene.encode()) + k)
    ci = int(rng.integers(len(chars)))
    img, ink = SCENES[scene](rng, chars[ci])
    ref = process(np.round(255 * (1 - np.clip(ink, 0, 1))).astype(np.uint8), OPTIONS["plane"])
    ref_square = reduce(ref)
    rec = {"scene": scene, "k": k, "char": ci, "side": list(img.shape),
           "shadow": scene not in NO_SHADOW, "ink_ref": ink_share(ref)}
    outs = []
    for key, options in OPTIONS.items():
        t0 = time.process_time()
        out = process(img, options)
        rec[f"seconds_{key}"] = round(time.process_time() - t0, 3)
        rec[f"iou_{key}"] = round(iou(ref_square, reduce(out)), 3)
        rec[f"ink_{key}"] = ink_share(out)
        outs.append(out)
    rec.update(judge(rec))
    return rec, [img, ref, *outs]


def thumb(x: np.ndarray | None, ink: bool = False) -> Image.Image:
    """A grid cell: an 8-bit image, or an output (``ink``) drawn black on white; grey if none."""
    if x is None:
        return Image.new("L", (THUMB, THUMB), 128)
    if ink:
        x = np.round(255 * (1 - np.clip(x, 0, 1))).astype(np.uint8)
    im = Image.fromarray(x)
    im.thumbnail((THUMB, THUMB))
    return im.convert("L").resize((THUMB, THUMB))


def save_grid(path: Path, recs: list[dict], cells: list[list]) -> None:
    """A column per image: input, reference, version 5, the default; "k:IoU5/IoU7" under it."""
    w = THUMB + 2
    grid = Image.new("L", (w * len(cells), w * 4 + 14), 255)
    d = ImageDraw.Draw(grid)
    for j, (rec, images) in enumerate(zip(recs, cells)):
        for i, x in enumerate(images):
            grid.paste(thumb(x, ink=i > 0), (j * w, i * w))
        d.text((j * w + 2, 4 * w + 1), f"{rec['k']}:{rec['iou_plane']:.2f}/"
               f"{rec['iou_shade']:.2f}", fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def counts(recs: list[dict]) -> dict:
    return {"n": len(recs), **{v: sum(r[v] for r in recs) for v in VERDICTS}}


def table(recs: list[dict], scenes: list[str]) -> tuple[str, dict]:
    """The Markdown table (a row per scene, totals with and without a shadow) and its counts."""
    per_scene = {s: counts([r for r in recs if r["scene"] == s]) for s in scenes}
    totals = {}
    for label, shadow in (("with a shadow", True), ("without a shadow", False)):
        group = [s for s in scenes if (s not in NO_SHADOW) == shadow]
        if group:
            totals[label] = {"scenes": len(group),
                             **counts([r for r in recs if r["scene"] in group])}
    rows = [[name, c["n"], *(c[v] for v in VERDICTS)]
            for name, c in [*per_scene.items(),
                            *((f"**{label}** ({c['scenes']} scene{'s' * (c['scenes'] != 1)})", c)
                              for label, c in totals.items())]]
    headers = ["scene", "n", f"good ({LABELS['plane']})", f"good ({LABELS['shade']})",
               "worse with the page steps", "both fail"]
    return markdown_table(headers, rows), {"scenes": per_scene, "totals": totals}


def main() -> None:
    p = parser(__doc__, "data", "json")
    p.add_argument("--scenes", nargs="+", choices=list(SCENES), default=list(SCENES),
                   metavar="NAME", help="scene types (default: all 30)")
    p.add_argument("--per-scene", type=at_least(1), default=12, metavar="N",
                   help="images per scene (default 12)")
    p.add_argument("--grids", metavar="DIR", help="also write DIR/<scene>.png")
    args = p.parse_args()
    scenes = list(dict.fromkeys(args.scenes))
    chars = characters(args.data_dir, args.cache)
    t0, recs = time.perf_counter(), []
    for scene in scenes:
        done = [one_image(scene, k, chars) for k in range(args.per_scene)]
        recs += [rec for rec, _ in done]
        if args.grids:
            save_grid(Path(args.grids) / f"{scene}.png", *map(list, zip(*done)))
        print(f"{scene}: done", file=sys.stderr, flush=True)
    text, summary = table(recs, scenes)
    print(text)
    print(f"\n{len(recs)} images in {time.perf_counter() - t0:.0f} s")
    write_json(args.json, {"options": LABELS, "per_scene": args.per_scene,
                           "rule": {"good_iou": GOOD, "ink_ratio": INK_RATIO, "worse": WORSE,
                                    "drop_components_under": KEEP, "size": SIZE},
                           **summary, "images": recs})


if __name__ == "__main__":
    main()
