"""Characters cropped tightly to their ink, as users crop them: how many lose ink to the
preprocessing's frame and ruling steps, or are refused as blank. 43 characters (Latin capitals
and digits, Greek, Cyrillic, symbols) in every DejaVu face on this machine (Debian's
fonts-dejavu), drawn at 120 pt, each cropped to its ink and with a 2-px margin; each image's
cleaned ink (steps 1-5, ``oneshot.preprocess.ink_squares``) is compared with the same image
cleaned without ``clear_frame`` and ``clear_rules``.

    python benchmarks/tight_crops.py --json tight.json

An image counts as damaged when over 1 % of the ink it has without those steps is lost with
them, and as refused when the preprocessing raises (an image found blank). Prints a table per
face and the total. Needs no Omniglot data; takes about a minute.
"""

from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

import numpy as np
from _common import markdown_table, parser, write_json
from _glyphs import FONT_GLOB
from PIL import Image, ImageDraw, ImageFont

from oneshot.data.images import ImageError
from oneshot.preprocess import DEFAULT, ink_squares

CHARS = "ABDEFHIJKLMNOPRTUZ1234570+=-#%&ΠΣΞΓЖШЩ田王工三丁"
MARGINS = (0, 2)  # px of paper left round the ink's box
LOST = 0.01  # share of the ink lost that counts as damage
OFF = dataclasses.replace(DEFAULT, clear_rules=False, clear_frame=False)


def crops(font_file: str) -> list[tuple[str, int, np.ndarray]]:
    """(character, margin, 8-bit image: black on white, cropped) for every character the face
    draws."""
    font = ImageFont.truetype(font_file, 120)
    out = []
    for ch in CHARS:
        im = Image.new("L", (200, 200), 255)
        ImageDraw.Draw(im).text((30, 10), ch, font=font, fill=0)
        a = np.asarray(im)
        ys, xs = np.nonzero(a < 128)
        if not len(ys):
            continue
        for m in MARGINS:
            out.append((ch, m, a[max(ys.min() - m, 0): ys.max() + 1 + m,
                                 max(xs.min() - m, 0): xs.max() + 1 + m]))
    return out


def judge(img: np.ndarray) -> str:
    """"ok", "damaged" (ink lost) or "refused" (an error)."""
    try:
        got, ref = ink_squares(img)[0] > 0.5, ink_squares(img, options=OFF)[0] > 0.5
    except ImageError:
        return "refused"
    return "damaged" if (ref & ~got).sum() > LOST * max(ref.sum(), 1) else "ok"


def main() -> None:
    p = parser(__doc__, "json")
    args = p.parse_args()
    rows, report = [], {}
    for font_file in sorted(glob.glob(FONT_GLOB)):
        face = Path(font_file).stem
        verdicts = [(ch, m, judge(img)) for ch, m, img in crops(font_file)]
        bad = [f"{ch}{'+' + str(m) if m else ''}" for ch, m, v in verdicts if v != "ok"]
        counts = {v: sum(1 for *_, x in verdicts if x == v) for v in ("damaged", "refused")}
        report[face] = {"images": len(verdicts), **counts, "which": bad}
        rows.append([face, len(verdicts), counts["damaged"], counts["refused"],
                     " ".join(bad[:12]) + (" ..." if len(bad) > 12 else "")])
    total = {k: sum(r[k] for r in report.values()) for k in ("images", "damaged", "refused")}
    rows.append(["**all**", total["images"], total["damaged"], total["refused"], ""])
    print(markdown_table(["face", "images", "damaged", "refused", "which (+2: with margin)"],
                         rows, align="lrrrl"))
    write_json(args.json, {"faces": report, "total": total})


if __name__ == "__main__":
    main()
