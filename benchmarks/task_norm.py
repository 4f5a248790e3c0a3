"""Task-level normalisation of embeddings (issue #13's "transductive refinement"): does using a
task's own support set to rescale or recentre the embeddings before the nearest-neighbour rule
help? No training; the model's Euclidean distances on transformed embeddings.

Variants, all computed from the task's N support embeddings only (never from the query):
``raw`` (the model as it is), ``std-scale EPS`` (each dimension divided by its standard
deviation over the support set plus EPS times the mean of those deviations: dimensions that
tell this alphabet's characters apart weigh more), ``l2`` (each embedding scaled to unit
length) and ``cl2n`` (the support mean subtracted, then unit length; Wang et al. 2019,
"SimpleShot"). Rows: accuracy with its 95 % interval, and the paired difference against
``raw`` on the same tasks. For a model that is an ensemble, the embedding is its members'
weighted concatenation (the transform sees the ensemble as one network).

    python benchmarks/task_norm.py src/oneshot/weights/default.pt --threads 2
"""

from __future__ import annotations

import numpy as np
import torch
from _common import TEST_TASK_FILE, markdown_table, parser, set_threads, validation_tasks
from score_models import paired

EPS = (0.1, 0.3, 1.0)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def variants(support: torch.Tensor, query: torch.Tensor) -> dict[str, tuple]:
    """{name: (support (T, N, D), query (T, 1, D))} transformed by the task's support set."""
    mean, std = support.mean(1, keepdim=True), support.std(1, keepdim=True)
    out = {"raw": (support, query)}
    for eps in EPS:
        w = 1 / (std + eps * std.mean(-1, keepdim=True)).clamp_min(1e-12)
        out[f"std-scale {eps}"] = (support * w, query * w)
    out["l2"] = (_unit(support), _unit(query))
    out["cl2n"] = (_unit(support - mean), _unit(query - mean))
    return out


def correct(embeddings: torch.Tensor, tasks) -> dict[str, np.ndarray]:
    """{variant: per-task correctness (T,)} of the nearest support image to the query."""
    support = embeddings[torch.as_tensor(tasks.support)]
    query = embeddings[torch.as_tensor(tasks.query)][:, None]
    return {name: ((s - q).pow(2).sum(-1).argmin(1).numpy() == tasks.answer)
            for name, (s, q) in variants(support, query).items()}


def main() -> None:
    from oneshot import Accuracy, load_split
    from oneshot.checkpoint import load_model
    from oneshot.embedding import Embedder
    from oneshot.sampling import TaskList

    ap = parser(__doc__, "threads", "data", threads=1)
    ap.add_argument("model", help="a model file or run folder")
    ap.add_argument("--tasks", type=int, default=3000)
    ap.add_argument("--task-dir", default="runs/tasks")
    args = ap.parse_args()
    set_threads(args.threads)
    net, _ = load_model(args.model)
    val, vt, _ = validation_tasks(args.tasks, args.task_dir, args.data_dir, args.cache)
    test = load_split("test", args.data_dir, args.cache)
    sets = {"validation": (val, vt), "test": (test, TaskList.load(TEST_TASK_FILE, test))}
    res = {}
    for name, (ds, tasks) in sets.items():
        emb = Embedder(net.encoder, "cpu").embed_images(ds.images).float()
        res[name] = correct(emb, tasks)
    rows = [[v] + [str(Accuracy(int(res[s][v].sum()), len(res[s][v]))) for s in sets]
            + [paired(res[s]["raw"], res[s][v]) for s in sets] for v in res["validation"]]
    print(markdown_table(["variant", "validation", "test", "vs raw (validation)",
                          "vs raw (test)"], rows))


if __name__ == "__main__":
    main()
