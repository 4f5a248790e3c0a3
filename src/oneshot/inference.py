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

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real

import torch

from .checkpoint import load_model, model_fingerprint
from .data.folder import list_folder
from .embedding import Embedder
from .errors import UsageError
from .gallery import EXISTING, GalleryError, enrol_into_gallery, read_gallery, write_gallery
from .models import SiameseNet
from .models.heads import checked_logits
from .preprocess import CHANGES as PREPROCESS_CHANGES
from .preprocess import VERSION as PREPROCESS_VERSION
from .preprocess import ImageLike, images_to_tensor, preprocess

__all__ = ["OneShotClassifier", "Prediction", "Verification", "GalleryError", "NotEnrolled",
           "UNKNOWN", "CALIBRATED", "enrol_into_gallery", "EXISTING"]

log = logging.getLogger(__name__)
UNKNOWN = "unknown"


class NotEnrolled(UsageError, KeyError):
    """A class that is not in the gallery."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


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
        if crop is not None and not isinstance(crop, bool):
            raise UsageError(f"crop={crop!r}; True, False or None (the model's) expected")
        self._crop_given = crop is not None
        self.crop = bool(crop)
        self.fingerprint = model_fingerprint(model)
        d = model.encoder.embedding_dim
        self._emb = torch.empty(0, d)
        self._labels: list[str] = []
        self._version = PREPROCESS_VERSION  # the oldest preprocessing of the gallery's images

    @classmethod
    def load(cls, model_path: str | os.PathLike | None = None, **kwargs) -> "OneShotClassifier":
        """From a model file, a checkpoint, a run folder, or None for the shipped model."""
        model, record = load_model(model_path)
        return cls(model, record, **kwargs)

    def empty_copy(self) -> "OneShotClassifier":
        """A classifier sharing this one's model (and its fingerprint) with an empty gallery."""
        other = object.__new__(OneShotClassifier)
        other.__dict__.update(self.__dict__)
        other._emb, other._labels, other._version = self._emb[:0], [], PREPROCESS_VERSION
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

    @property
    def enrolled(self) -> tuple[torch.Tensor, list[str]]:
        """The gallery: embeddings (K, D) and each one's label, in order of enrolment."""
        return self._emb, list(self._labels)

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
        if isinstance(labels, (bytes, bytearray)):  # else taken as a list of numbers
            raise UsageError(f"labels {labels!r}: a class name (str) expected, not bytes; "
                             "decode it first")
        many = not isinstance(labels, str) and isinstance(labels, Iterable)
        labels = list(labels) if many else [labels] * len(images)
        if len(images) != len(labels):
            raise UsageError(f"{len(images)} images but {len(labels)} labels; one label for "
                             "all, or one per image, expected")
        if any(lab is None or isinstance(lab, (bytes, bytearray)) for lab in labels):
            raise UsageError(f"labels {labels[:5]}: a class name per image expected, not None "
                             "or bytes")
        emb = self.embed(list(images))  # all checked before the gallery changes
        self.enrol_embeddings(emb, [str(lab) for lab in labels])

    def enrol_folder(self, root: str | os.PathLike) -> int:
        """Enrol every image of ``root/<class>/<image>`` under its folder's name (of
        ``root/<group>/<class>/<image>`` as "<group>/<class>"); returns how many images were
        enrolled."""
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
        bad = sorted({str(lab) for lab in labels if not str(lab) or str(lab) == UNKNOWN})
        if bad:  # "unknown" is the answer for a rejected image
            raise UsageError(f"class label {bad[0]!r}: class labels must be non-empty and not "
                             f"{UNKNOWN!r} (rename that class or its folder)")
        self._emb = torch.cat([self._emb, emb.float()])
        self._labels += [str(lab) for lab in labels]

    def remove(self, label: str) -> int:
        """Remove every image of class ``label``; returns how many were removed."""
        keep = [i for i, lab in enumerate(self._labels) if lab != label]
        n = len(self._labels) - len(keep)
        if n == 0:
            raise NotEnrolled(f"class {label!r} is not enrolled")
        self._emb = self._emb[keep]
        self._labels = [self._labels[i] for i in keep]
        return n

    @torch.no_grad()
    def class_scores(self, query_emb: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Logits (B, K) of each query against each enrolled class (best image of the class)."""
        if not self._labels:
            raise UsageError("the gallery is empty: enrol at least one class first")
        logits = checked_logits(self.model.head.pairwise(query_emb.to(self.device),
                                                         self._emb.to(self.device)),
                                self.model.head)
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
        if isinstance(top_k, bool) or not isinstance(top_k, Integral) or top_k < 1:
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
        return float(torch.sigmoid(checked_logits(self.model.head(e[:1], e[1:]),
                                                  self.model.head)).item())

    def verify_pair(self, a: ImageLike, b: ImageLike, threshold: float = 0.5) -> Verification:
        """:meth:`verify` with a decision: same when the probability reaches ``threshold``."""
        _check_threshold(threshold)
        p = self.verify(a, b)
        return Verification(p, p >= threshold, threshold)

    def save(self, path: str | os.PathLike) -> None:
        """Write the gallery (embeddings, labels, model fingerprint, preprocessing) atomically."""
        write_gallery(path, self._emb, self._labels, self.fingerprint,
                      self.model.spec.to_dict(), self.input_size, self.crop,
                      self._version if self._labels else PREPROCESS_VERSION)

    def load_gallery(self, path: str | os.PathLike) -> None:
        """Replace the gallery with the one saved at ``path`` (refused if for another model,
        damaged, or enrolled with the other ``crop`` than the one this classifier was given)."""
        g = read_gallery(path)
        if g.fingerprint != self.fingerprint:
            spec = g.meta.get("model_spec")
            mine = self.model.spec.encoder
            raise GalleryError(f"{path}: gallery was made with another model (a "
                               f"{spec.get('encoder') if isinstance(spec, dict) else '?'!r} "
                               f"encoder, fingerprint {str(g.fingerprint)[:12]}; this model: a "
                               f"{mine!r} encoder, fingerprint {self.fingerprint[:12]}; the "
                               "weights differ: another run, a run folder whose best.pt has "
                               "changed since, or an export in other precision); pass that "
                               "model with --model, or enrol again with this one")
        if g.embeddings.shape[1] != self._emb.shape[1]:
            raise GalleryError(f"{path}: embeddings of dimension {g.embeddings.shape[1]}, the "
                               f"model's are {self._emb.shape[1]}")
        if self._crop_given and g.crop != self.crop:
            raise GalleryError(f"{path}: gallery was enrolled with crop={g.crop}; crop="
                               f"{self.crop} cannot apply to it (drop the option, or enrol "
                               "into a new gallery)")
        self.crop = g.crop
        self._emb, self._labels = g.embeddings, list(g.labels)
        self._version = g.meta["preprocessing"].get("version", 1)
        if self._version < PREPROCESS_VERSION:
            changed = "; ".join(v for k, v in PREPROCESS_CHANGES.items() if k > self._version)
            log.warning("%s: enrolled with an earlier preprocessing (version %s, now %s): these "
                        "now read differently: %s; if it holds such images, enrol them again",
                        path, self._version, PREPROCESS_VERSION, changed)
        elif self._version > PREPROCESS_VERSION:
            log.warning("%s: enrolled by a newer oneshot (preprocessing version %s; this one "
                        "has %s): images it reads alike may be read otherwise here; upgrade "
                        "oneshot, or enrol them again with this one", path, self._version,
                        PREPROCESS_VERSION)


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, Real) \
            or not 0.0 <= threshold <= 1.0:  # NaN fails too
        raise UsageError(f"threshold={threshold!r}; a probability in [0, 1] expected")
