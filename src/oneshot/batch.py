"""The classifier on many files at once, as ``oneshot classify`` uses it.

- :func:`expand_paths`: files as given, folders searched recursively (hidden names skipped);
- :func:`classify_paths`: each image classified, or its failure recorded (an unreadable or
  blank file, a missing path), without stopping the batch;
- :func:`accuracy_by_class`: when an image's folder is named like an enrolled class, that is
  its true class; accuracy per class and overall over those images.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .data.layout import is_image_name, is_skipped
from .errors import OneshotError, UsageError
from .inference import OneShotClassifier, Prediction, Verification, _check_threshold
from .preprocess import ImageError, ImageLike, preprocess

log = logging.getLogger(__name__)
__all__ = ["Outcome", "expand_paths", "classify_paths", "accuracy_by_class", "BATCH",
           "verify_many", "read_pairs", "threshold_note", "print_accuracy"]

BATCH = 256  # images preprocessed and embedded together


@dataclass(frozen=True)
class Outcome:
    """One input: its path, the prediction or the error message (one of them is None), and its
    true class when its folder names an enrolled class (else None)."""

    path: str
    prediction: Prediction | None
    error: str | None
    truth: str | None
    enrolled: bool = False  # the very image (same embedding) is in the gallery

    def to_json(self) -> dict:
        out: dict = {"image": self.path}
        if self.error is not None:
            out["error"] = self.error
        else:
            p = self.prediction
            out.update(label=p.label, probability=p.probability, threshold=p.threshold,
                       top=[{"label": lab, "probability": s} for lab, s in p.top])
        if self.truth is not None:
            out.update(truth=self.truth, correct=self.correct)
        if self.enrolled:
            out.update(enrolled=True)
        return out

    @property
    def correct(self) -> bool | None:
        if self.truth is None or self.prediction is None:
            return None
        return self.prediction.label == self.truth


def expand_paths(paths: list[str | os.PathLike]) -> list[str]:
    """Each file as given; each folder's image files below it, recursively, sorted: not
    hidden or system files (``data.layout.is_skipped``), nor files that are not images by
    their name (``data.layout.is_image_name``; a warning counts them). A path that does not
    exist is kept (classifying it reports the error)."""
    out: list[str] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(str(p))
            continue
        found = sorted(f for f in p.rglob("*") if f.is_file() and not any(
            is_skipped(part) for part in f.relative_to(p).parts))
        images = [str(f) for f in found if is_image_name(f.name)]
        other = [str(f.relative_to(p)) for f in found if not is_image_name(f.name)]
        if other:
            log.warning("%s: left out %d file(s) that are not images by their name: %s%s", p,
                        len(other), ", ".join(other[:5]), ", ..." if len(other) > 5 else "")
        out += images
    return out


def _prepared(clf: OneShotClassifier, path: str) -> torch.Tensor | str:
    """The model input (1, 1, S, S) of one file, or what is wrong with it."""
    if not Path(path).exists():
        return f"{path}: no such file"
    try:
        return preprocess(path, clf.input_size, clf.crop)
    except (OneshotError, OSError) as e:
        return str(e)


def _truth(path: Path, classes: set[str]) -> str | None:
    """The class an image's folder names, if enrolled: "<class>", or "<group>/<class>" as a
    grouped folder's classes are enrolled (see :func:`oneshot.data.folder.list_folder`)."""
    path = path.absolute()  # "a/x.png" typed inside a group folder is still "<group>/a"
    for name in (f"{path.parent.parent.name}/{path.parent.name}", path.parent.name):
        if name in classes:
            return name
    return None


def classify_paths(clf: OneShotClassifier, paths: list[str | os.PathLike], top_k: int = 1,
                   threshold: float | str | None = "calibrated") -> Iterator[Outcome]:
    """Classify every image of ``paths`` (see :func:`expand_paths`), in order, ``BATCH`` at a
    time; a file that fails gives an Outcome with its error and the others go on."""
    files = expand_paths(paths)
    classes = set(clf.classes)
    for i in range(0, len(files), BATCH):
        chunk = files[i: i + BATCH]
        ready = [_prepared(clf, f) for f in chunk]
        good = [x for x in ready if isinstance(x, torch.Tensor)]
        emb = clf.embed_tensor(torch.cat(good)) if good else None
        preds = iter(clf.predict_embeddings(emb, top_k, threshold) if good else [])
        known = iter(_enrolled(clf, emb) if good else [])
        for f, x in zip(chunk, ready):
            truth = _truth(Path(f), classes)
            if isinstance(x, str):
                yield Outcome(f, None, x, truth)
            else:
                yield Outcome(f, next(preds), None, truth, next(known))


def _enrolled(clf: OneShotClassifier, emb: torch.Tensor) -> list[bool]:
    """Whether each embedding is one of the gallery's own (an enrolled image, given again)."""
    gallery, _ = clf.enrolled
    if not len(gallery):
        return [False] * len(emb)
    d = torch.cdist(emb.float(), gallery.float(), compute_mode="donot_use_mm_for_euclid_dist")
    return (d.min(dim=1).values < 1e-4).tolist()


def accuracy_by_class(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """{class: (correct, images)} over the outcomes with a true class and a prediction, but
    for enrolled images given again (they would count as one-shot successes)."""
    out: dict[str, list[int]] = {}
    for o in outcomes:
        if o.correct is not None and not o.enrolled:
            c = out.setdefault(o.truth, [0, 0])
            c[0] += int(o.correct)
            c[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def verify_many(clf: OneShotClassifier, pairs: list[tuple[ImageLike, ImageLike]],
                threshold: float = 0.5) -> Iterator[Verification | ImageError]:
    """``clf.verify_pair`` for many pairs, in order, yielded as they are scored: ``BATCH``
    pairs at a time, each distinct image read and embedded once (its embedding kept, its
    pixels not). An image that cannot be used gives its ImageError in the place of its pairs'
    results."""
    _check_threshold(threshold)
    emb: dict = {}  # image -> embedding (D,) or its ImageError
    for i in range(0, len(pairs), BATCH):
        chunk = pairs[i: i + BATCH]
        _embed_new(clf, [k for pair in chunk for k in pair], emb)
        for a, b in chunk:
            ea, eb = emb[_key(a)], emb[_key(b)]
            bad = next((e for e in (ea, eb) if isinstance(e, ImageError)), None)
            if bad is not None:
                yield bad
                continue
            with torch.no_grad():
                p = float(torch.sigmoid(clf.model.head(ea[None], eb[None])).item())
            yield Verification(p, p >= threshold, threshold)


@torch.no_grad()
def _embed_new(clf: OneShotClassifier, images: list, emb: dict) -> None:
    """Add the embeddings (or ImageErrors) of the images of ``images`` not yet in ``emb``."""
    inputs = {}
    for k in images:
        if _key(k) in emb or _key(k) in inputs:
            continue
        try:
            inputs[_key(k)] = preprocess(k, clf.input_size, clf.crop)
        except ImageError as e:
            emb[_key(k)] = e
    if inputs:
        emb.update(zip(inputs, clf.embed_tensor(torch.cat(list(inputs.values()))).to(
            clf.device)))


def _key(image: ImageLike):
    """A dict key for an image: a path as itself, an array or PIL image by identity."""
    try:
        hash(image)
        return image
    except TypeError:
        return id(image)


def read_pairs(path: str) -> list[tuple[str, str]]:
    """The pairs of a pairs file ('-': standard input): a line per pair, two paths separated by
    a tab (or by spaces when the paths have none); blank lines and '#' comments skipped; UTF-8
    (a byte-order mark is dropped). UsageError naming every malformed line, or for no pairs."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not a readable UTF-8 text file of pairs ({e})") from e
    pairs, bad = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2:
            bad.append(f"{path}:{n}: {len(parts)} fields")
        else:
            pairs.append((parts[0].strip(), parts[1].strip()))
    if bad or not pairs:
        raise UsageError(("; ".join(bad[:10]) + (" ..." if len(bad) > 10 else "") if bad else
                          f"{path}: no pairs") + "; a line per pair expected: two image paths "
                         "separated by a tab, or by spaces when the paths have none")
    return pairs


def threshold_note(clf, used: float | None) -> str:
    if used is None:
        return "threshold: none (every image is given its best class)"
    _check_threshold(used)  # refused before it is announced
    cal = clf.record.get("open_set", {})
    if used == clf.calibrated_threshold:
        return (f"threshold {used:.3f}: the model's, calibrated on held-out alphabets "
                f"({100 * cal['false_accept']:.1f} % of unknown characters accepted, "
                f"{100 * cal['false_reject']:.1f} % of known ones rejected); "
                "--threshold 0 always names a class")
    return f"threshold {used:.3f} (--threshold)"


def print_accuracy(outcomes: list[Outcome], out) -> None:
    """Per-class and overall accuracy of the images whose folder names their class, not
    counting the enrolled images themselves (said when there are some)."""
    by_class = accuracy_by_class(outcomes)
    again = sum(o.enrolled and o.correct is not None for o in outcomes)
    note = f"; {again} enrolled image(s) given again left out" if again else ""
    if not by_class:
        print(f"accuracy: no image to count{note}", file=out) if again else None
        return
    right, total = (sum(v[i] for v in by_class.values()) for i in (0, 1))
    print(f"accuracy (images in a folder named like their class): {100 * right / total:.1f} % "
          f"({right} of {total}{note})", file=out)
    for c, (r, n) in by_class.items():
        print(f"  {c}: {100 * r / n:.1f} % ({r} of {n})", file=out)
