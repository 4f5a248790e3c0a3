"""One-shot recognition for users: enrol one (or more) image per class, then classify or verify.

    clf = OneShotClassifier.load()            # the shipped model (or a path)
    clf.enrol(["alice.png", "bob.png"], ["alice", "bob"])
    clf.predict(["visitor.png"], top_k=3, threshold=0.5)
    clf.verify("a.png", "b.png")              # probability of "same class"
    clf.save("gallery.npz"); clf.load_gallery("gallery.npz")

Images go through :func:`oneshot.preprocess.preprocess` (grey, ink = 1 whatever the polarity,
padded square, resized to the encoder's input size). Scores are the model's pair-head logits;
``probability`` is their sigmoid. A class's score is its best-matching enrolled image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import load_model, model_fingerprint
from .data.folder import choose_per_class, list_folder
from .embedding import Embedder
from .errors import UsageError
from .gallery import GalleryError, check_gallery_target, gallery_lock, read_gallery, write_gallery
from .models import SiameseNet
from .preprocess import ImageLike, images_to_tensor, preprocess

__all__ = ["OneShotClassifier", "Prediction", "Verification", "GalleryError", "UNKNOWN",
           "CALIBRATED", "enrol_into_gallery", "EXISTING"]

UNKNOWN = "unknown"
CALIBRATED = "calibrated"  # threshold: the model's calibrated open-set threshold, if it has one


@dataclass(frozen=True)
class Prediction:
    """label: best class or UNKNOWN; probability: sigmoid of its score; top: (label, prob)
    pairs; threshold: the one applied (None: none, every image gets a class)."""

    label: str
    probability: float
    top: list[tuple[str, float]]
    threshold: float | None = None


@dataclass(frozen=True)
class Verification:
    """probability that two images show the same class; same: probability >= threshold."""

    probability: float
    same: bool
    threshold: float


class OneShotClassifier:
    """``crop``: crop images to their ink first; None (the default) means "as the loaded
    gallery says, else no". A crop given explicitly that differs from a loaded gallery's is an
    error: the gallery's embeddings were made the other way."""

    def __init__(self, model: SiameseNet, record: dict | None = None, crop: bool | None = None,
                 device: str = "cpu") -> None:
        self.embedder = Embedder(model.encoder, device)
        self.device = self.embedder.device
        self.model = model.eval().to(self.device)
        self.record = record or {}
        self._crop_given = crop is not None
        self.crop = bool(crop)
        self.fingerprint = model_fingerprint(model)
        d = model.encoder.embedding_dim
        self._emb = torch.empty(0, d)
        self._labels: list[str] = []

    @classmethod
    def load(cls, model_path: str | os.PathLike | None = None, **kwargs) -> "OneShotClassifier":
        """From a model file, a checkpoint, a run folder, or None for the shipped model."""
        model, record = load_model(model_path)
        return cls(model, record, **kwargs)

    def empty_copy(self) -> "OneShotClassifier":
        """A classifier sharing this one's model (and its fingerprint) with an empty gallery."""
        other = object.__new__(OneShotClassifier)
        other.__dict__.update(self.__dict__)
        other._emb, other._labels = self._emb[:0], []
        return other

    @property
    def input_size(self) -> int:
        return self.model.encoder.input_size

    @property
    def classes(self) -> list[str]:
        """Enrolled class labels, in order of first enrolment."""
        return list(dict.fromkeys(self._labels))

    def __len__(self) -> int:
        return len(self._labels)

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 1, S, S) model inputs -> float32 (B, D) embeddings on the CPU."""
        return self.embedder.embed_tensor(x, cpu=True)

    def embed_ink_arrays(self, images) -> torch.Tensor:
        """Ink-1 arrays already in the dataset convention (N, H, W) (e.g. Omniglot's, no
        polarity or contrast step needed) -> float32 (N, D), resized as the evaluation does."""
        return self.embed_tensor(images_to_tensor(images, self.input_size))

    def embed(self, images: ImageLike | list) -> torch.Tensor:
        """Images (paths, PIL images or arrays) -> float32 (B, D) embeddings."""
        return self.embed_tensor(preprocess(images, self.input_size, self.crop))

    def enrol(self, images: ImageLike | list, labels: str | list[str]) -> None:
        """Add images with their class labels to the gallery (several per class allowed)."""
        images = images if isinstance(images, (list, tuple)) else [images]
        labels = [labels] * len(images) if isinstance(labels, str) else list(labels)
        if len(images) != len(labels):
            raise UsageError(f"{len(images)} images but {len(labels)} labels")
        emb = self.embed(list(images))  # all checked before the gallery changes
        self.enrol_embeddings(emb, [str(lab) for lab in labels])

    def enrol_folder(self, root: str | os.PathLike) -> int:
        """Enrol every image of ``root/<class>/<image>`` under its folder's name; returns how
        many images were enrolled."""
        items = list_folder(root)
        self.enrol([str(p) for p, _ in items], [c for _, c in items])
        return len(items)

    def enrol_embeddings(self, emb: torch.Tensor, labels: list[str]) -> None:
        """Add precomputed embeddings (B, D) of this model."""
        if emb.ndim != 2 or emb.shape[1] != self._emb.shape[1] or len(emb) != len(labels):
            raise UsageError(f"embeddings {tuple(emb.shape)} do not fit {len(labels)} labels "
                             f"of dimension {self._emb.shape[1]}")
        if not torch.isfinite(emb).all():
            raise UsageError("embeddings hold NaN or infinite values; nothing was enrolled")
        if any(not str(lab) or str(lab) == UNKNOWN for lab in labels):  # "unknown" = rejected
            raise UsageError(f"class labels must be non-empty and not {UNKNOWN!r}")
        self._emb = torch.cat([self._emb, emb.float()])
        self._labels += [str(lab) for lab in labels]

    def remove(self, label: str) -> int:
        """Remove every image of class ``label``; returns how many were removed."""
        keep = [i for i, lab in enumerate(self._labels) if lab != label]
        n = len(self._labels) - len(keep)
        if n == 0:
            raise KeyError(f"class {label!r} is not enrolled")
        self._emb = self._emb[keep]
        self._labels = [self._labels[i] for i in keep]
        return n

    @torch.no_grad()
    def class_scores(self, query_emb: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Logits (B, K) of each query against each enrolled class (best image of the class)."""
        if not self._labels:
            raise UsageError("the gallery is empty: enrol at least one class first")
        logits = self.model.head.pairwise(query_emb.to(self.device), self._emb.to(self.device))
        classes = self.classes
        position = {lab: i for i, lab in enumerate(classes)}
        idx = torch.tensor([position[lab] for lab in self._labels])
        out = torch.full((len(query_emb), len(classes)), -torch.inf)
        out = out.scatter_reduce(1, idx.expand(len(query_emb), -1), logits.float().cpu(), "amax")
        return out, classes

    @property
    def calibrated_threshold(self) -> float | None:
        """The model's open-set threshold, calibrated on held-out alphabets
        (:mod:`oneshot.calibration`; the record's ``open_set``), or None if it has none."""
        t = self.record.get("open_set", {}).get("threshold") if isinstance(
            self.record.get("open_set"), dict) else None
        return float(t) if isinstance(t, (int, float)) and 0 <= t <= 1 else None

    def predict_embeddings(self, query_emb: torch.Tensor, top_k: int = 1,
                           threshold: float | str | None = CALIBRATED) -> list[Prediction]:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise UsageError(f"top_k={top_k!r}; a whole number of at least 1 expected")
        if threshold == CALIBRATED:
            threshold = self.calibrated_threshold
        if threshold is not None:
            _check_threshold(threshold)
        scores, classes = self.class_scores(query_emb)
        prob = torch.sigmoid(scores)
        k = min(top_k, len(classes))
        vals, idx = prob.topk(k, dim=1)
        preds = []
        for v, i in zip(vals.tolist(), idx.tolist()):
            top = [(classes[j], p) for j, p in zip(i, v)]
            label = top[0][0] if threshold is None or top[0][1] >= threshold else UNKNOWN
            preds.append(Prediction(label, top[0][1], top, threshold))
        return preds

    def predict(self, images: ImageLike | list, top_k: int = 1,
                threshold: float | str | None = CALIBRATED) -> list[Prediction]:
        """Classify each image; below ``threshold`` (a probability; by default the model's
        calibrated one, :attr:`calibrated_threshold`; None for none) the label is UNKNOWN."""
        return self.predict_embeddings(self.embed(images), top_k, threshold)

    @torch.no_grad()
    def verify(self, a: ImageLike, b: ImageLike) -> float:
        """Probability that two images show the same class."""
        e = self.embed([a, b]).to(self.device)
        return float(torch.sigmoid(self.model.head(e[:1], e[1:])).item())

    def verify_pair(self, a: ImageLike, b: ImageLike, threshold: float = 0.5) -> Verification:
        """:meth:`verify` with a decision: same when the probability reaches ``threshold``."""
        _check_threshold(threshold)
        p = self.verify(a, b)
        return Verification(p, p >= threshold, threshold)

    def save(self, path: str | os.PathLike) -> None:
        """Write the gallery (embeddings, labels, model fingerprint, preprocessing) atomically."""
        write_gallery(path, self._emb, self._labels, self.fingerprint,
                      self.model.spec.to_dict(), self.input_size, self.crop)

    def load_gallery(self, path: str | os.PathLike) -> None:
        """Replace the gallery with the one saved at ``path`` (refused if for another model,
        damaged, or enrolled with the other ``crop`` than the one this classifier was given)."""
        g = read_gallery(path)
        if g.fingerprint != self.fingerprint:
            raise GalleryError(f"{path}: gallery was made with another model "
                               f"({g.meta.get('model_spec')}); re-enrol with this model")
        if g.embeddings.shape[1] != self._emb.shape[1]:
            raise GalleryError(f"{path}: embeddings of dimension {g.embeddings.shape[1]}, the "
                               f"model's are {self._emb.shape[1]}")
        if self._crop_given and g.crop != self.crop:
            raise GalleryError(f"{path}: gallery was enrolled with crop={g.crop}; crop="
                               f"{self.crop} cannot apply to it (drop the option, or enrol "
                               "into a new gallery)")
        self.crop = g.crop
        self._emb, self._labels = g.embeddings, list(g.labels)


EXISTING = ("skip", "replace", "append")  # what enrolling does with a class already there


def enrol_into_gallery(clf: OneShotClassifier, gallery: str | os.PathLike,
                       folder: str | os.PathLike, replace: bool = False,
                       existing: str | None = None, per_class: int | None = None,
                       pick: str = "first", seed: int = 0) -> dict[str, list[str]]:
    """Enrol ``folder`` (DIR/<class>/<image>) into the gallery file, under its lock: concurrent
    writers wait for each other, so no update is lost. ``replace`` starts a new gallery.

    ``per_class``: enrol at most that many images of each class (``pick``: the first by name,
    or "random" with ``seed``). ``existing``: what to do with a class the gallery already has:
    "skip" it, "replace" its images, or "append" to them (images already enrolled are not
    added twice); None refuses (GalleryError naming the classes) rather than guess. Nothing
    is written unless every image could be read. Returns {"added" | "skipped" | "replaced" |
    "appended": [classes]}.
    """
    if existing is not None and existing not in EXISTING:
        raise UsageError(f"existing={existing!r}; one of {list(EXISTING)} (or None) expected")
    items = list_folder(folder)
    if per_class is not None:
        items = choose_per_class(items, per_class, pick, seed)
    with gallery_lock(gallery):
        check_gallery_target(gallery)  # before reading: --replace must not replace an image
        if Path(gallery).exists() and not replace:
            try:
                clf.load_gallery(gallery)
            except GalleryError as e:
                raise GalleryError(f"{e} (use --replace to start a new gallery)") from e
        done = _enrol_items(clf, items, existing, gallery)
        clf.save(gallery)
    return done


def _enrol_items(clf: OneShotClassifier, items: list, existing: str | None, gallery) -> dict:
    have = set(clf.classes)
    classes = list(dict.fromkeys(c for _, c in items))
    clash = [c for c in classes if c in have]
    if clash and existing is None:
        raise GalleryError(f"{gallery}: {len(clash)} of these classes are already enrolled "
                           f"({', '.join(clash[:5])}{', ...' if len(clash) > 5 else ''}); say "
                           "what to do with them: --existing skip, replace or append")
    if existing == "skip":
        items = [(p, c) for p, c in items if c not in have]
    emb = clf.embed([str(p) for p, _ in items]) if items else clf._emb[:0]  # all read first
    labels = [c for _, c in items]
    if existing == "replace":
        for c in clash:
            clf.remove(c)
    elif existing == "append":  # the same image twice would only weigh its class more
        ids = {c: i for i, c in enumerate(dict.fromkeys(clf._labels + labels))}
        same = (torch.tensor([ids[c] for c in labels])[:, None]
                == torch.tensor([ids[c] for c in clf._labels])[None, :])
        d = torch.cdist(emb, clf._emb, compute_mode="donot_use_mm_for_euclid_dist")
        seen = ((d < 1e-4) & same).any(1)
        keep = (~seen).nonzero().flatten().tolist()
        emb, labels = emb[keep], [labels[i] for i in keep]
    clf.enrol_embeddings(emb, labels)
    action = {"skip": "skipped", "replace": "replaced", "append": "appended"}.get(existing or "")
    return {"added": [c for c in classes if c not in have],
            **({action: clash} if action else {})}


def _check_threshold(threshold: float) -> None:
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold={threshold!r}; a probability in [0, 1] expected")
