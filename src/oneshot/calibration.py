"""Open-set calibration: the probability below which the classifier answers "unknown".

A one-shot gallery rarely holds every class a user will show it. To say "unknown" for an image
unlike anything enrolled, the classifier compares its best class probability with a threshold.
:func:`calibrate_threshold` picks it on held-out classes (the validation alphabets, never the
test ones): in each trial, ``ways`` characters of one alphabet are enrolled (one drawer's image
each) and ``ways`` more characters stay unknown, drawn from other alphabets
(``unknowns="other-alphabet"``: images unlike anything enrolled, the default) or from the same
alphabet (``"same-alphabet"``: look-alikes, the hardest case); queries of both kinds (another
drawer) are classified. The threshold is the equal-error point: as many unknown queries
accepted (false accepts) as known queries rejected (false rejects).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .data.dataset import Dataset
from .embedding import Embedder
from .errors import ConfigError
from .sampling import character_grid

__all__ = ["OpenSetCalibration", "calibrate_threshold", "calibrate_record", "open_set_rates"]


@dataclass(frozen=True)
class OpenSetCalibration:
    """threshold: probability; false_accept / false_reject: rates at it on the calibration
    trials; known_accuracy: share of known queries answered with their own class (threshold
    ignored); trials, ways, split, seed: how it was measured."""

    threshold: float
    false_accept: float
    false_reject: float
    known_accuracy: float
    unknowns: str
    trials: int
    ways: int
    split: str
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def _trial_scores(model, emb: torch.Tensor, grid: np.ndarray, pool: np.ndarray,
                  others: np.ndarray | None, ways: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One trial: best probability and correctness of each known query, best probability of
    each unknown query (unknowns from ``others``, or from ``pool`` when None)."""
    if others is None:
        chars = rng.choice(pool, size=2 * ways, replace=False)
    else:
        chars = np.concatenate([rng.choice(pool, size=ways, replace=False),
                                rng.choice(others, size=ways, replace=False)])
    d1, d2 = rng.choice(grid.shape[1], size=2, replace=False)
    gallery = emb[torch.from_numpy(grid[chars[:ways], d1])]
    queries = emb[torch.from_numpy(grid[chars, d2])]
    with torch.no_grad():
        prob = torch.sigmoid(model.head.pairwise(queries, gallery).float())
    best, arg = prob.max(dim=1)
    best, arg = best.numpy(), arg.numpy()
    return best[:ways], arg[:ways] == np.arange(ways), best[ways:]


def open_set_rates(known: np.ndarray, unknown: np.ndarray, threshold: float
                   ) -> tuple[float, float]:
    """(false accept, false reject) rates of ``threshold`` for known / unknown best scores."""
    return float((unknown >= threshold).mean()), float((known < threshold).mean())


def _collect(model, emb: torch.Tensor, ds: Dataset, trials: int, ways: int, seed: int,
             unknowns: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best probabilities of known queries, their correctness, and of unknown queries."""
    if unknowns not in ("other-alphabet", "same-alphabet"):
        raise ConfigError(f"unknowns={unknowns!r}; 'other-alphabet' or 'same-alphabet'")
    grid = character_grid(ds)
    need = 2 * ways if unknowns == "same-alphabet" else ways
    alpha = [np.flatnonzero(ds.char_alphabet == a) for a in range(len(ds.alphabets))]
    usable = [a for a, p in enumerate(alpha) if len(p) >= need]
    if not usable or (unknowns == "other-alphabet" and len(alpha) < 2):
        raise ConfigError(f"calibration with {unknowns} unknowns needs alphabets of at least "
                          f"{need} characters (and two alphabets) in {ds.name!r}; lower ways")
    rng = np.random.default_rng(seed)
    known, correct, unknown = [], [], []
    for _ in range(trials):
        a = usable[rng.integers(len(usable))]
        others = None if unknowns == "same-alphabet" else np.flatnonzero(ds.char_alphabet != a)
        k, c, u = _trial_scores(model, emb, grid, alpha[a], others, ways, rng)
        known.append(k), correct.append(c), unknown.append(u)
    return tuple(map(np.concatenate, (known, correct, unknown)))


def calibrate_threshold(model, ds: Dataset, trials: int = 300, ways: int = 10, seed: int = 0,
                        unknowns: str = "other-alphabet", device: str = "cpu",
                        embeddings: torch.Tensor | None = None) -> OpenSetCalibration:
    """The equal-error threshold of ``model`` on ``ds`` (see the module docstring);
    ``embeddings`` of ``ds.images`` may be given to skip embedding them again."""
    emb = embeddings if embeddings is not None else \
        Embedder(model.encoder, device).embed_images(ds.images, cpu=True)
    known, correct, unknown = _collect(model, emb, ds, trials, ways, seed, unknowns)
    candidates = np.unique(np.concatenate([known, unknown]))
    gaps = [abs(np.subtract(*open_set_rates(known, unknown, t))) for t in candidates]
    t = float(candidates[int(np.argmin(gaps))])
    far, frr = open_set_rates(known, unknown, t)
    return OpenSetCalibration(round(t, 6), far, frr, float(correct.mean()), unknowns, trials,
                              ways, ds.name, seed)


def calibrate_record(model, ds: Dataset, trials: int = 500, ways: int = 10, seed: int = 0,
                     device: str = "cpu") -> dict:
    """The ``open_set`` entry of a model record: the equal-error threshold against unknowns
    from other alphabets, and the false-accept rate of same-alphabet look-alikes at it."""
    emb = Embedder(model.encoder, device).embed_images(ds.images, cpu=True)
    cal = calibrate_threshold(model, ds, trials, ways, seed, "other-alphabet", device, emb)
    known, _, unknown = _collect(model, emb, ds, trials, ways, seed, "same-alphabet")
    return {**cal.to_dict(),
            "false_accept_same_alphabet": open_set_rates(known, unknown, cal.threshold)[0]}
