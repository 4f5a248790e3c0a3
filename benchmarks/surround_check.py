"""Which images preprocessing step 2a (``oneshot.page.fill_surround``: a page on a dark table)
changes among the robustness suite's: every perturbation on the 400 training images of Lake's
runs, and the eight that reach the step's later tests (noise 0.2, blur, dilation by 2 px,
inversion, JPEG, gradient, shadow, tight crop) on 4,000 test-alphabet images each (seeded); and
light ink on a dark board at levels 0.01, 0.05 and 0.15 (the suite's inversion is black, 0, which
the step refuses at once; chalk and dark-mode drawings are not): the same 4,000 images. An image
is changed when the step does not return its input. Prints a line per set.

    ONESHOT_DATA=... python benchmarks/surround_check.py
"""

from __future__ import annotations

import numpy as np
from _common import parser
from photo_scenes import characters

REACHING = ("gaussian-0.2", "blur", "dilate-2", "invert", "jpeg-20", "gradient-background",
            "shadow", "tight-crop")


def main() -> None:
    from oneshot import load_split
    from oneshot.evaluation.perturbations import (
        get_perturbation,
        list_perturbations,
        perturbation_rng,
        to_user_image,
    )
    from oneshot.page import fill_surround

    args = parser(__doc__, "data").parse_args()
    lake = characters(args.data_dir, args.cache)
    test = load_split("test", args.data_dir, args.cache).images
    sub = test[np.random.default_rng(0).choice(len(test), 4000, replace=False)]
    total = changed_total = 0
    for name in list_perturbations():
        p = get_perturbation(name)
        for label, images in [("Lake", lake)] + ([("test", sub)] if name in REACHING else []):
            changed = 0
            for i, c in enumerate(images.astype(np.float32)):
                g = to_user_image(p(c, perturbation_rng(1, name, i))).astype(np.float32) / 255
                changed += fill_surround(g) is not g
            total, changed_total = total + len(images), changed_total + changed
            print(f"{name:22s} {label:5s} {len(images):5d} images, changed {changed}",
                  flush=True)
    for board in (0.01, 0.05, 0.15):  # light ink on a dark board: no table round a page
        changed = sum(fill_surround(g) is not g for g in (
            np.round(255 * (board + (0.9 - board) * c)).astype(np.float32) / 255 for c in sub))
        total, changed_total = total + len(sub), changed_total + changed
        print(f"light ink on {board:<12} test  {len(sub):5d} images, changed {changed}",
              flush=True)
    print(f"all: {changed_total} of {total} images changed")


if __name__ == "__main__":
    main()
