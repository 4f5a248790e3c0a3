"""Classifier speed: 1,000 queries against a 1,000-class gallery.

Enrols one image of each of 1,000 Omniglot characters (background + evaluation, drawer 1) and
classifies 1,000 other images (drawer 2), timing separately the embedding per image and the
matching (one matrix operation over the gallery). Uses the shipped model unless --model is given.

    python benchmarks/predict_speed.py [--model runs/fast] --reps 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from oneshot.data.splits import load_split
from oneshot.inference import OneShotClassifier
from oneshot.preprocess import images_to_tensor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    clf = OneShotClassifier.load(args.model)
    imgs, labels, queries = [], [], []
    for split in ("background", "evaluation"):
        ds = load_split(split)
        for c in range(len(ds.characters)):
            sel = np.flatnonzero(ds.labels == c)
            imgs.append(ds.images[sel[0]])
            queries.append(ds.images[sel[1]])
            labels.append(f"{split}/{ds.characters[c]}")
    n = args.classes
    gallery = images_to_tensor(np.stack(imgs[:n]), clf.input_size)
    query = images_to_tensor(np.stack(queries[:n]), clf.input_size)
    clf.enrol_embeddings(clf.embed_tensor(gallery), labels[:n])
    emb_t, match_t = [], []
    for _ in range(args.reps):
        t = time.perf_counter()
        q = clf.embed_tensor(query)
        emb_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        preds = clf.predict_embeddings(q, top_k=5)
        match_t.append(time.perf_counter() - t)
    acc = np.mean([p.label == lab for p, lab in zip(preds, labels[:n])])
    e, m = statistics.median(emb_t), statistics.median(match_t)
    print(f"| what | {n} queries x {n}-class gallery |")
    print("| --- | ---: |")
    print(f"| embedding, per image | {1000 * e / n:.3f} ms |")
    print(f"| matching, all queries (one matrix op + top-5) | {1000 * m:.1f} ms |")
    print(f"| top-1 accuracy ({n}-way, across alphabets) | {100 * acc:.1f} % |")
    print(f"\nmodel {clf.model.spec.encoder} {clf.model.spec.encoder_args}, "
          f"{torch.get_num_threads()} threads, medians of {args.reps}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"embed_ms_per_image": 1000 * e / n, "match_ms": 1000 * m,
                       "accuracy": acc}, f, indent=2)


if __name__ == "__main__":
    main()
