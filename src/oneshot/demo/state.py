"""The demo's state: the model, the test split or a folder of your classes (loaded on first
use) and the support sets, each embedded once."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.omniglot import DataError
from ..data.splits import load_split
from ..datasets import load_folder_dataset
from ..inference import OneShotClassifier
from ..preprocess import ink_squares, squares_to_tensor
from .payload import MAX_UPLOAD_IMAGES, ApiError, png_data_url

SPLIT = "test"
SUPPORT_DRAWER = 1  # the support image of each character is this drawer's
MAX_UPLOADED_SETS = 16  # uploaded support sets kept (least recently used dropped)
MAX_DROPPED_IDS = 4096  # ids of dropped sets remembered, to tell "dropped" from "never made"
MAX_LABEL_CHARS = 64
THUMB_SIZE = 105  # side of the support thumbnails, pixels (Omniglot's size)


@dataclass
class SupportSet:
    """One image per class, embedded once: labels, PNG data URLs, and a classifier holding
    the embeddings as its gallery."""

    key: str
    title: str
    labels: list[str]
    thumbs: list[str]
    gallery: OneShotClassifier

    def to_json(self) -> dict:
        return {"support": self.key, "title": self.title,
                "items": [{"label": lab, "image": t} for lab, t in zip(self.labels, self.thumbs)]}


class DemoState:
    """The model, the test split or the folder ``data`` (loaded on first use; its groups are
    the "alphabets", each class's first image its support image) and the cached support sets."""

    def __init__(self, clf: OneShotClassifier, data_dir=None, cache=None, data=None) -> None:
        self.clf, self.data_dir, self.cache, self.data = clf, data_dir, cache, data
        self.split = SPLIT if data is None else Path(data).name
        self._lock = threading.Lock()
        self._ds = None
        self._alphabets: dict[str, SupportSet] = {}
        self._uploads: OrderedDict[str, SupportSet] = OrderedDict()
        self._dropped: OrderedDict[str, None] = OrderedDict()

    def dataset(self):
        with self._lock:
            if self._ds is None and self.data is not None:
                self._ds = load_folder_dataset(self.data, self.cache)  # --data: a folder
                self.split = self._ds.name
            if self._ds is None:
                try:
                    self._ds = load_split(SPLIT, self.data_dir, self.cache,
                                          allow_download=False)
                except DataError as e:
                    raise ApiError(503, f"the Omniglot {SPLIT} split is unavailable ({e}); "
                                        "'oneshot data' downloads it") from e
            return self._ds

    def alphabets(self) -> list[dict]:
        ds = self.dataset()
        counts = np.bincount(ds.char_alphabet, minlength=len(ds.alphabets))
        return [{"name": a, "characters": int(n)} for a, n in zip(ds.alphabets, counts)]

    def _gallery(self, emb: torch.Tensor, labels: list[str]) -> OneShotClassifier:
        g = self.clf.empty_copy()  # shares the model; no re-hash of its weights
        g.enrol_embeddings(emb, labels)
        return g

    def support(self, key: str) -> SupportSet:
        with self._lock:
            if key in self._uploads:
                self._uploads.move_to_end(key)
                return self._uploads[key]
            if key in self._alphabets:
                return self._alphabets[key]
            dropped = key in self._dropped
        if dropped:
            raise ApiError(404, f"support set {key!r} is no longer kept (the server keeps the "
                                f"last {MAX_UPLOADED_SETS} uploads); upload the images again")
        if key.startswith("upload-"):
            raise ApiError(404, f"unknown support set {key!r}: this server has not made it since "
                                "it started (ids last while it runs); upload the images again")
        ds = self.dataset()
        if key not in ds.alphabets:
            raise ApiError(404, f"unknown support set {key!r}: not an alphabet of the "
                                f"{self.split} data {list(ds.alphabets)} nor a current upload")
        chars = np.flatnonzero(ds.char_alphabet == ds.alphabets.index(key))
        rows = []
        for c in chars:  # drawer 1, or the lowest drawer the character has
            idx = np.flatnonzero(ds.labels == c)
            rows.append(int(idx[np.argmin(np.abs(ds.drawers[idx] - SUPPORT_DRAWER))]))
        imgs = ds.images[rows]
        labels = [ds.characters[c].split("/")[-1] for c in chars]
        emb = self.clf.embed_ink_arrays(imgs)
        s = SupportSet(key, key.replace("_", " "), labels, [png_data_url(i) for i in imgs],
                       self._gallery(emb, labels))
        with self._lock:
            return self._alphabets.setdefault(key, s)

    def upload(self, images: list[tuple[str, np.ndarray]], labels: list[str]) -> SupportSet:
        if not images:
            raise ApiError(400, "no images uploaded; send one image per class")
        if len(images) > MAX_UPLOAD_IMAGES:
            raise ApiError(413, f"{len(images)} images; at most {MAX_UPLOAD_IMAGES} per set")
        if not labels:
            labels = [Path(name).stem or name for name, _ in images]
        if len(labels) != len(images):
            raise ApiError(400, f"{len(images)} images but {len(labels)} labels")
        labels = [str(lab).strip()[:MAX_LABEL_CHARS] for lab in labels]
        if any(not lab for lab in labels):
            raise ApiError(400, "labels must be non-empty")
        views = self._views(images)
        thumbs = squares_to_tensor(views, THUMB_SIZE)[:, 0].numpy()
        emb = self.clf.embed_tensor(squares_to_tensor(views, self.clf.input_size))
        digest = hashlib.sha256(emb.numpy().tobytes() + json.dumps(labels).encode())
        key = "upload-" + digest.hexdigest()[:16]
        s = SupportSet(key, "your images", labels, [png_data_url(t) for t in thumbs],
                       self._gallery(emb, labels))
        with self._lock:
            self._uploads[key] = s
            self._dropped.pop(key, None)
            while len(self._uploads) > MAX_UPLOADED_SETS:
                self._dropped[self._uploads.popitem(last=False)[0]] = None
            while len(self._dropped) > MAX_DROPPED_IDS:
                self._dropped.popitem(last=False)
        return s

    def _views(self, images: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
        """The preprocessed squares of (name, image) pairs; errors use the names."""
        return ink_squares([im for _, im in images], self.clf.crop, [n for n, _ in images])

    def _embed(self, images: list[tuple[str, np.ndarray]]) -> torch.Tensor:
        return self.clf.embed_tensor(squares_to_tensor(self._views(images), self.clf.input_size))

    def verify(self, a: tuple[str, np.ndarray], b: tuple[str, np.ndarray]) -> float:
        """Probability that the named images ``a`` and ``b`` show the same class."""
        e = self._embed([a, b]).to(self.clf.device)
        return float(torch.sigmoid(self.clf.model.head(e[:1], e[1:])).item())

    def classify(self, key: str, image: tuple[str, np.ndarray], top_k: int) -> dict:
        """The named ``image`` against support set ``key``: best ``top_k`` classes."""
        t0 = time.perf_counter()
        s = self.support(key)
        emb = self._embed([image])
        p = s.gallery.predict_embeddings(emb, top_k=top_k, threshold=None)[0]
        scores, classes = s.gallery.class_scores(emb)
        share = dict(zip(classes, torch.softmax(scores[0], 0).tolist()))
        t = self.clf.calibrated_threshold
        return {"support": key, "label": p.label, "probability": p.probability,
                "close_match": None if t is None else p.probability >= t, "threshold": t,
                "top": [{"label": lab, "probability": q, "share": share[lab]}
                        for lab, q in p.top],
                "elapsed_ms": 1000 * (time.perf_counter() - t0)}


