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

import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model, model_fingerprint
from .io import atomic_write_bytes
from .models import SiameseNet
from .preprocess import ImageLike, preprocess

__all__ = ["OneShotClassifier", "Prediction", "GalleryError", "default_model_path",
           "resolve_model_path", "UNKNOWN"]

UNKNOWN = "unknown"
GALLERY_FORMAT = "oneshot-gallery-1"
EMBED_BATCH = 256


class GalleryError(ValueError):
    """A gallery file is unreadable or belongs to another model."""


def default_model_path() -> Path | None:
    """The model shipped inside the package, if this installation has one."""
    p = Path(str(resources.files("oneshot").joinpath("weights/default.pt")))
    return p if p.is_file() else None


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """A model file from a path, a run folder (its best.pt) or None (the shipped model)."""
    if model is None or str(model) == "default":
        p = default_model_path()
        if p is None:
            raise FileNotFoundError("no model given and this installation ships no default "
                                    "model; train one (oneshot train) and pass --model")
        return p
    p = Path(model)
    if p.is_dir():
        for name in ("best.pt", "last.pt", "model.pt"):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"{p}: run folder holds no best.pt, last.pt or model.pt")
    return p


@dataclass(frozen=True)
class Prediction:
    """label: best class or UNKNOWN; probability: sigmoid of its score; top: (label, prob) pairs."""

    label: str
    probability: float
    top: list[tuple[str, float]]


class OneShotClassifier:
    def __init__(self, model: SiameseNet, record: dict | None = None, crop: bool = False,
                 device: str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.record = record or {}
        self.crop = crop
        self.device = torch.device(device)
        self.fingerprint = model_fingerprint(model)
        d = model.encoder.embedding_dim
        self._emb = torch.empty(0, d)
        self._labels: list[str] = []

    @classmethod
    def load(cls, model_path: str | os.PathLike | None = None, **kwargs) -> "OneShotClassifier":
        """From a model file, a checkpoint, a run folder, or None for the shipped model."""
        model, record = load_model(resolve_model_path(model_path))
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

    @torch.no_grad()
    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 1, S, S) model inputs -> float32 (B, D) embeddings."""
        out = [self.model.encoder(x[i: i + EMBED_BATCH].to(self.device)).float().cpu()
               for i in range(0, len(x), EMBED_BATCH)]
        return torch.cat(out) if out else torch.empty(0, self.model.encoder.embedding_dim)

    def embed(self, images: ImageLike | list) -> torch.Tensor:
        """Images (paths, PIL images or arrays) -> float32 (B, D) embeddings."""
        return self.embed_tensor(preprocess(images, self.input_size, self.crop))

    def enrol(self, images: ImageLike | list, labels: str | list[str]) -> None:
        """Add images with their class labels to the gallery (several per class allowed)."""
        images = images if isinstance(images, (list, tuple)) else [images]
        labels = [labels] * len(images) if isinstance(labels, str) else list(labels)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if any(not str(lab) or str(lab) == UNKNOWN for lab in labels):
            raise ValueError(f"class labels must be non-empty and not {UNKNOWN!r}")
        emb = self.embed(list(images))  # all checked before the gallery changes
        self._emb = torch.cat([self._emb, emb])
        self._labels += [str(lab) for lab in labels]

    def enrol_embeddings(self, emb: torch.Tensor, labels: list[str]) -> None:
        """Add precomputed embeddings (B, D) of this model."""
        if emb.ndim != 2 or emb.shape[1] != self._emb.shape[1] or len(emb) != len(labels):
            raise ValueError(f"embeddings {tuple(emb.shape)} do not fit {len(labels)} labels "
                             f"of dimension {self._emb.shape[1]}")
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
            raise ValueError("the gallery is empty: enrol at least one class first")
        logits = self.model.head.pairwise(query_emb.to(self.device), self._emb.to(self.device))
        classes = self.classes
        position = {lab: i for i, lab in enumerate(classes)}
        idx = torch.tensor([position[lab] for lab in self._labels])
        out = torch.full((len(query_emb), len(classes)), -torch.inf)
        out = out.scatter_reduce(1, idx.expand(len(query_emb), -1), logits.float().cpu(), "amax")
        return out, classes

    def predict_embeddings(self, query_emb: torch.Tensor, top_k: int = 1,
                           threshold: float | None = None) -> list[Prediction]:
        if top_k < 1:
            raise ValueError(f"top_k={top_k}; at least 1 expected")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold={threshold}; a probability in [0, 1] expected")
        scores, classes = self.class_scores(query_emb)
        prob = torch.sigmoid(scores)
        k = min(top_k, len(classes))
        vals, idx = prob.topk(k, dim=1)
        preds = []
        for v, i in zip(vals.tolist(), idx.tolist()):
            top = [(classes[j], p) for j, p in zip(i, v)]
            label = top[0][0] if threshold is None or top[0][1] >= threshold else UNKNOWN
            preds.append(Prediction(label, top[0][1], top))
        return preds

    def predict(self, images: ImageLike | list, top_k: int = 1,
                threshold: float | None = None) -> list[Prediction]:
        """Classify each image; below ``threshold`` (a probability) the label is UNKNOWN."""
        return self.predict_embeddings(self.embed(images), top_k, threshold)

    @torch.no_grad()
    def verify(self, a: ImageLike, b: ImageLike) -> float:
        """Probability that two images show the same class."""
        e = self.embed([a, b])
        return float(torch.sigmoid(self.model.head(e[:1], e[1:])).item())

    def save(self, path: str | os.PathLike) -> None:
        """Write the gallery (embeddings, labels, model fingerprint, preprocessing) atomically."""
        buf = io.BytesIO()
        meta = {"format": GALLERY_FORMAT, "model_fingerprint": self.fingerprint,
                "model_spec": self.model.spec.to_dict(),
                "preprocessing": {"input_size": self.input_size, "crop": self.crop},
                "labels": self._labels}
        np.savez(buf, embeddings=self._emb.numpy(), meta=np.array(json.dumps(meta)))
        atomic_write_bytes(path, buf.getvalue())

    def load_gallery(self, path: str | os.PathLike) -> None:
        """Replace the gallery with the one saved at ``path`` (refused if for another model)."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                emb = torch.from_numpy(z["embeddings"].copy())
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError) as e:
            raise GalleryError(f"{path}: not a readable gallery ({e})") from e
        if meta.get("format") != GALLERY_FORMAT:
            raise GalleryError(f"{path}: format {meta.get('format')!r}, {GALLERY_FORMAT} expected")
        if meta.get("model_fingerprint") != self.fingerprint:
            raise GalleryError(f"{path}: gallery was made with another model "
                               f"({meta.get('model_spec')}); re-enrol with this model")
        if len(meta["labels"]) != len(emb):
            raise GalleryError(f"{path}: {len(emb)} embeddings but {len(meta['labels'])} labels")
        self.crop = meta["preprocessing"]["crop"]
        self._emb, self._labels = emb, list(meta["labels"])


