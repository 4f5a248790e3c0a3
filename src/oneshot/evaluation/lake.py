"""Lake's official 20-way within-alphabet benchmark: 20 runs, 400 trials.

Per run, every test image is scored against the 20 training images (the test x training matrix of
Lake's ``demo_classification.py``) and assigned the best one; ties go to the first training file,
as ``numpy.argmin`` does in Lake's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.lake import ITEMS, LakeRun
from .metrics import Accuracy
from .nway import predict_positions
from .scorers import Scorer, score_pairs

__all__ = ["LakeResult", "lake_benchmark", "PUBLISHED"]

# Published 20-way within-alphabet accuracies (percent) on the same 20 runs: Lake, Salakhutdinov
# & Tenenbaum 2015 (Science); Koch, Zemel & Salakhutdinov 2015 (Table 2).
PUBLISHED = {
    "Humans (Lake et al. 2015)": 95.5,
    "BPL (Lake et al. 2015)": 96.7,
    "Koch et al. 2015 Siamese convnet": 92.0,
    "Modified Hausdorff (Lake's baseline)": 61.2,
    "1-nearest neighbour, pixels (Koch et al. 2015, as cited)": 21.7,
}


@dataclass(frozen=True)
class LakeResult:
    name: str
    per_run_correct: np.ndarray  # int (20,), of 20 trials each

    trials_per_run: int = ITEMS
    predictions: np.ndarray | None = None  # int (runs, trials): chosen training image per trial

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(int(self.per_run_correct.sum()),
                        self.trials_per_run * len(self.per_run_correct))

    @property
    def per_run_error(self) -> np.ndarray:
        """Percent error of each run."""
        return 100.0 * (1 - self.per_run_correct / self.trials_per_run)

    def to_dict(self) -> dict:
        return {"scorer": self.name, **self.accuracy.to_dict(),
                "error": round(100 - self.accuracy.value, 4),
                "per_run_error": [round(float(e), 2) for e in self.per_run_error]}


def lake_benchmark(scorer: Scorer, runs: list[LakeRun]) -> LakeResult:
    """Score ``scorer`` on Lake's runs; every image is embedded once (800 in all)."""
    images = np.concatenate([np.concatenate([r.train_images, r.test_images]) for r in runs])
    cache = scorer.embed(images)
    a, b, base = [], [], 0
    for r in runs:
        n_tr, n_te = len(r.train_images), len(r.test_images)
        a.append(np.repeat(base + n_tr + np.arange(n_te), n_tr))
        b.append(np.tile(base + np.arange(n_tr), n_te))
        base += n_tr + n_te
    scores = score_pairs(scorer, cache, np.concatenate(a), np.concatenate(b))
    correct, preds, pos = [], [], 0
    for r in runs:
        n_tr, n_te = len(r.train_images), len(r.test_images)
        preds.append(predict_positions(scores[pos: pos + n_tr * n_te].reshape(n_te, n_tr)))
        correct.append(int((preds[-1] == r.answers).sum()))
        pos += n_tr * n_te
    return LakeResult(scorer.name, np.array(correct), len(runs[0].test_images) if runs else ITEMS,
                      np.stack(preds) if preds else None)
