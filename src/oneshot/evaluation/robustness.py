"""The robustness suite: one-shot accuracy when images are perturbed as a user's would be.

Each perturbation (:mod:`.perturbations`) acts on the full-resolution image, which is then
rendered as a user's file (8-bit grey, dark ink on white) and goes through the one documented
preprocessing, :func:`oneshot.preprocess.preprocess`, the path the classifier uses, before the
model embeds it. A perturbation is applied to the query only and, separately, to the query and
the support set, on the same trials: Lake's 20 runs (400 trials) and saved N-way tasks.

Every distinct image is perturbed once (its own seeded generator, :func:`perturbation_rng`) and
embedded once per perturbation; "query" scores perturbed queries against clean candidates,
"query+support" perturbed against perturbed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..embedding import Embedder
from ..preprocess import Preprocessing, preprocess
from .metrics import Accuracy
from .nway import TaskScores
from .perturbations import get_perturbation, perturbation_rng, to_user_image
from .scorers import score_pairs

__all__ = ["Trials", "lake_trials", "task_trials", "RobustnessScorer", "run_robustness",
           "robustness_markdown", "CONDITIONS"]

log = logging.getLogger(__name__)
CONDITIONS = ("query", "query+support")


@dataclass(frozen=True)
class Trials:
    """One-shot trials on a pool of images.

    images: uint8 (M, H, W), ink = 1 (a Dataset's or Lake's convention); ids: int64 (M,), the
    images' identities for seeding (a dataset index); query: (T,), support: (T, N) indices into
    ``images``; answer: (T,) position in ``support`` of the right candidate.
    """

    name: str
    images: np.ndarray
    ids: np.ndarray
    query: np.ndarray
    support: np.ndarray
    answer: np.ndarray


def lake_trials(runs) -> Trials:
    """Lake's runs as 400 trials: each test image against its run's 20 training images."""
    images, query, support, answer, base = [], [], [], [], 0
    for r in runs:
        n_tr, n_te = len(r.train_images), len(r.test_images)
        images += [r.train_images, r.test_images]
        query.append(base + n_tr + np.arange(n_te))
        support.append(np.tile(base + np.arange(n_tr), (n_te, 1)))
        answer.append(np.asarray(r.answers))
        base += n_tr + n_te
    return Trials(f"Lake's {len(runs)} runs", np.concatenate(images), np.arange(base),
                  np.concatenate(query), np.concatenate(support), np.concatenate(answer))


def task_trials(dataset, tasks, name: str | None = None) -> Trials:
    """A saved task list on ``dataset`` (only the images it uses are kept)."""
    used, inverse = np.unique(np.concatenate([tasks.query, tasks.support.ravel()]),
                              return_inverse=True)
    T = len(tasks.query)
    return Trials(name or f"{len(tasks)} tasks", dataset.images[used], used, inverse[:T],
                  inverse[T:].reshape(tasks.support.shape), np.asarray(tasks.answer))


class RobustnessScorer:
    """Users' images -> :func:`preprocess` (``options``, ``crop``) -> embeddings; pairs scored by
    the model's head. ``embed`` takes ink-1 images (M, H, W) and renders them as user files."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", crop: bool = False,
                 options: Preprocessing | None = None, name: str = "siamese"):
        self.model = model.eval()
        self.name = name
        self.embedder = Embedder(model.encoder, device)
        self.crop = crop
        self.options = options

    def inputs(self, images: np.ndarray) -> torch.Tensor:
        users = [to_user_image(x) for x in images]
        return preprocess(users, self.embedder.input_size, self.crop, self.options)

    def embed(self, images: np.ndarray) -> torch.Tensor:
        return self.embedder.embed_tensor(self.inputs(images), cpu=True)

    @torch.no_grad()
    def score(self, cache: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model.head(cache[a], cache[b]).float()


def _accuracy(scorer, cache, q: np.ndarray, s: np.ndarray, answer: np.ndarray) -> Accuracy:
    T, N = s.shape
    scores = score_pairs(scorer, cache, np.repeat(q, N), s.ravel()).reshape(T, N)
    return TaskScores(scores, answer).accuracy


def _perturbed(trials: Trials, name: str, seed: int) -> np.ndarray:
    p = get_perturbation(name)
    return np.stack([p(x.astype(np.float32), perturbation_rng(seed, name, i))
                     for x, i in zip(trials.images, trials.ids)])


def run_robustness(scorer: RobustnessScorer, trials: list[Trials], perturbations: list[str],
                   seed: int = 0, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Accuracy of ``scorer`` on every (trials, perturbation, condition).

    Rows: ``trials``, ``perturbation``, ``applied_to`` (one of CONDITIONS; "none" for
    "clean"), the accuracy with its 95 % CI and number of trials (``tasks``), and ``seconds``
    (perturbing, preprocessing and embedding the images).
    """
    rows = []
    for tr in trials:
        clean = scorer.embed(tr.images)
        M = len(tr.images)
        for name in perturbations:
            t0 = time.perf_counter()
            if name == "clean":
                cache, conds = clean, {"none": (tr.query, tr.support)}
            else:
                cache = torch.cat([clean, scorer.embed(_perturbed(tr, name, seed))])
                conds = {"query": (M + tr.query, tr.support),
                         "query+support": (M + tr.query, M + tr.support)}
            secs = time.perf_counter() - t0
            for cond, (q, s) in conds.items():
                acc = _accuracy(scorer, cache, q, s, tr.answer)
                rows.append({"trials": tr.name, "perturbation": name, "applied_to": cond,
                             **acc.to_dict(), "seconds": round(secs, 2)})
                log.info("%s, %s on %s: %s", tr.name, name, cond, acc)
            if progress:
                progress(f"{tr.name}: {name} ({secs:.1f} s)")
    return rows


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    return f"{r['accuracy']:.1f} [{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"


def robustness_markdown(rows: list[dict]) -> str:
    """Perturbations down; for each set of trials, query-only and query+support across.
    Cells: accuracy % [95 % Wilson CI]; the header gives the number of trials."""
    sets = list(dict.fromkeys(r["trials"] for r in rows))
    names = list(dict.fromkeys(r["perturbation"] for r in rows))
    cell = {(r["trials"], r["perturbation"], r["applied_to"]): r for r in rows}
    n = {s: next(r["tasks"] for r in rows if r["trials"] == s) for s in sets}
    head = ["perturbation"] + [f"{s} (n={n[s]}), {c}" for s in sets for c in CONDITIONS]
    out = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for p in names:
        cells = []
        for s in sets:
            for c in CONDITIONS:
                cells.append(_cell(cell.get((s, p, c)) or cell.get((s, p, "none"))))
        out.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
