"""Classifier speed: 1,000 queries against a 1,000-class gallery.

Enrols one image of each of 1,000 Omniglot characters (background + evaluation, drawer 1) and
classifies 1,000 other images (drawer 2), timing separately the embedding per image and the
matching (one matrix operation over the gallery). Uses the shipped model unless --model is given.

    python benchmarks/predict_speed.py [--model runs/fast] --reps 5
"""

from __future__ import annotations

import numpy as np
import torch
from _common import at_least, markdown_table, parser, repeat, set_threads, write_json

from oneshot.data.splits import load_split
from oneshot.inference import OneShotClassifier
from oneshot.preprocess import images_to_tensor

TOP_K = 5


def gallery_and_queries(data_dir, cache) -> tuple[list, list, list]:
    """(gallery images, their labels, query images): the first and second image of every
    character of the background and evaluation sets."""
    imgs, labels, queries = [], [], []
    for split in ("background", "evaluation"):
        ds = load_split(split, data_dir, cache)
        for c in range(len(ds.characters)):
            sel = np.flatnonzero(ds.labels == c)
            imgs.append(ds.images[sel[0]])
            queries.append(ds.images[sel[1]])
            labels.append(f"{split}/{ds.characters[c]}")
    return imgs, labels, queries


def main() -> None:
    ap = parser(__doc__, "reps", "threads", "data", "json", reps=5)
    ap.add_argument("--model", help="model file or run folder (default: the shipped model)")
    ap.add_argument("--classes", type=at_least(2), default=1000,
                    help="gallery classes (at most the 1,623 characters of Omniglot)")
    args = ap.parse_args()
    set_threads(args.threads)
    clf = OneShotClassifier.load(args.model)
    imgs, labels, queries = gallery_and_queries(args.data_dir, args.cache)
    n = min(args.classes, len(imgs))
    if n < args.classes:
        print(f"--classes {args.classes}: only {n} characters exist; using {n}")
    gallery = images_to_tensor(np.stack(imgs[:n]), clf.input_size)
    query = images_to_tensor(np.stack(queries[:n]), clf.input_size)
    clf.enrol_embeddings(clf.embed_tensor(gallery), labels[:n])
    e, q = repeat(lambda: clf.embed_tensor(query), args.reps)
    m, preds = repeat(lambda: clf.predict_embeddings(q, top_k=TOP_K), args.reps)
    acc = float(np.mean([p.label == lab for p, lab in zip(preds, labels[:n])]))
    print(markdown_table(["what", f"{n} queries x {n}-class gallery"], [
        ["embedding, per image", f"{1000 * e / n:.3f} ms"],
        [f"matching, all queries (one matrix op + top-{TOP_K})", f"{1000 * m:.1f} ms"],
        [f"top-1 accuracy ({n}-way, across alphabets)", f"{100 * acc:.1f} %"]]))
    print(f"\nmodel {clf.model.spec.encoder} {clf.model.spec.encoder_args}, "
          f"{torch.get_num_threads()} threads, medians of {args.reps}")
    write_json(args.json, {"embed_ms_per_image": 1000 * e / n, "match_ms": 1000 * m,
                           "accuracy": acc})


if __name__ == "__main__":
    main()
