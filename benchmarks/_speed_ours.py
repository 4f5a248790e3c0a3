"""Our side of ``speed.py``: the variants, the inputs both frameworks are fed, one measurement of
one metric on a fresh model, and the machine's measured matmul peak. Not a script.

Training steps are the library's own: a :class:`oneshot.training.Trainer` built from the
``tutorial`` preset (pairs objective, Adam 6e-5, the Keras L2 penalties as weight decay) with
the variant's model, precision and layout, stepped with ``Trainer.step()``. Embedding and
evaluation go through :class:`oneshot.embedding.Embedder`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from _common import timed

from oneshot import (
    Embedder,
    EncoderScorer,
    PairSampler,
    build_model,
    load_lake_runs,
    load_split,
    sample_tasks,
)
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import predict_positions, score_tasks
from oneshot.models import ModelSpec
from oneshot.models.encoders import koch_layer_macs
from oneshot.preprocess import images_to_tensor
from oneshot.training import TrainConfig, Trainer, apply_overrides, preset

SEED = 0
DEVICE = "cpu"
TUTORIAL = apply_overrides(preset("tutorial"), {"device": DEVICE, "seed": SEED})
KOCH = TUTORIAL.model_spec          # Koch's encoder, the tutorial's initialisation, L1 head
FAST = preset("fast").model_spec    # the compact encoder the fast preset trains
EVAL_METRICS = ("eval_tutorial", "eval_cache", "lake")
PEAK_REPS = 3                       # matmuls timed per precision and repetition (best kept)


@dataclass(frozen=True)
class Variant:
    name: str
    spec: ModelSpec
    amp: bool = False            # bf16 autocast
    channels_last: bool = False


VARIANTS = [
    Variant("koch fp32", KOCH),
    Variant("koch bf16", KOCH, amp=True),
    Variant("koch channels_last", KOCH, channels_last=True),
    Variant("koch bf16+channels_last", KOCH, amp=True, channels_last=True),
    Variant("fast fp32", FAST),
    Variant("fast bf16", FAST, amp=True),
]


@dataclass
class Settings:
    reps: int = 3
    warmup: int = 1
    train_steps: int = 4
    batches: list = field(default_factory=lambda: [32, 128])
    embed_images: int = 512
    embed_batch: int = 256
    ways: int = 20
    tasks: int = 400
    lake_runs: int = 20
    threads: int = 1
    peak_size: int = 4096
    only: list | None = None     # a subset of the metrics, or all

    @property
    def metrics(self) -> list[str]:
        every = [f"train_b{b}" for b in self.batches] + ["embed", *EVAL_METRICS]
        return [m for m in every if self.only is None or m in self.only]


def train_config(v: Variant, batch: int) -> TrainConfig:
    """The tutorial preset with the variant's model, precision and layout, at ``batch``."""
    return apply_overrides(TUTORIAL, {
        "encoder": v.spec.encoder, "encoder_args": dict(v.spec.encoder_args),
        "head": v.spec.head, "head_args": dict(v.spec.head_args), "amp": v.amp,
        "channels_last": v.channels_last, "batch": batch})


def koch_train_flops_per_pair() -> int:
    """FLOPs of one training pair (two images): forward 2 x MACs; backward = weight gradients
    (1 x forward) + input gradients (1 x forward, except conv1, whose input needs no gradient);
    the head and the optimiser are O(parameters), < 1 % and left out."""
    m = koch_layer_macs()
    total = sum(m.values())
    return 2 * (2 * total + 2 * (2 * total - m["conv1"]))


def measure_peak(size: int, reps: int = PEAK_REPS) -> dict[str, float]:
    """GFLOP/s of a size x size x size matmul in fp32 and in bf16 on this machine with torch's
    current threads: the best of ``reps`` after a warm-up (a practical peak for dense work)."""
    gen = torch.Generator().manual_seed(SEED)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(size, size, generator=gen).to(dtype) for _ in range(2))
        torch.mm(a, b)
        best = min(timed(lambda a=a, b=b: torch.mm(a, b))[0] for _ in range(reps))
        out[name] = 2 * size ** 3 / best / 1e9
    return out


@dataclass
class Inputs:
    """What both frameworks are fed (uint8 images, ink = 1, and indices into them)."""

    train_images: np.ndarray                   # (M, 105, 105): the training split
    pairs: dict[int, tuple[np.ndarray, ...]]   # batch -> (a, b, target), each (steps, batch)
    embed_images: np.ndarray                   # (E, 105, 105)
    task_images: np.ndarray                    # (U, 105, 105): the tasks' distinct images
    task_query: np.ndarray                     # (T,) into task_images
    task_support: np.ndarray                   # (T, N) into task_images
    test_images: np.ndarray                    # the whole test split (for score_tasks)
    tasks: object                              # the TaskList, indexing test_images
    lake_runs: list

    def save(self, path: Path) -> None:
        """The Keras worker's ``.npz`` (only the training images the pairs use)."""
        used = np.unique(np.concatenate([np.concatenate([a.ravel(), b.ravel()])
                                         for a, b, _ in self.pairs.values()]))
        remap = np.full(len(self.train_images), -1, np.int64)
        remap[used] = np.arange(len(used))
        arrays = {"train_images": self.train_images[used], "embed_images": self.embed_images,
                  "task_images": self.task_images, "task_query": self.task_query,
                  "task_support": self.task_support, "task_answer": self.tasks.answer}
        for b, (a, bb, t) in self.pairs.items():
            arrays.update({f"pairs_{b}_a": remap[a], f"pairs_{b}_b": remap[bb],
                           f"pairs_{b}_t": t})
        np.savez(path, **arrays)


def trainer_pairs(train, batch: int, steps: int) -> tuple[np.ndarray, ...]:
    """(a, b, target), each (steps, batch): the pairs a Trainer of ``train_config(_, batch)``
    draws in its first ``steps`` steps (its pairs objective's sampler, seeded as the Trainer
    seeds it: numpy ``default_rng(cfg.seed)``), so that the Keras peer trains on the same."""
    sampler = PairSampler(train, TUTORIAL.same_alphabet, TUTORIAL.balance,
                          seed=np.random.default_rng(TUTORIAL.seed))
    return tuple(np.stack(x) for x in zip(*(sampler.sample(batch) for _ in range(steps))))


def prepare_inputs(s: Settings, data_dir, cache) -> Inputs:
    train = load_split(TUTORIAL.train_split, data_dir, cache, drawers=TUTORIAL.drawers)
    test = load_split("test", data_dir, cache)
    tasks = sample_tasks(test, s.ways, s.tasks, "within-alphabet", seed=SEED)
    distinct, inverse = np.unique(np.concatenate([tasks.query, tasks.support.ravel()]),
                                  return_inverse=True)
    T = len(tasks)
    embed_idx = np.random.default_rng(SEED).choice(
        len(test), size=min(s.embed_images, len(test)), replace=False)
    return Inputs(
        train_images=train.images,
        pairs={b: trainer_pairs(train, b, s.warmup + s.train_steps) for b in s.batches},
        embed_images=test.images[embed_idx], task_images=test.images[distinct],
        task_query=inverse[:T], task_support=inverse[T:].reshape(T, s.ways),
        test_images=test.images, tasks=tasks,
        lake_runs=load_lake_runs(data_dir, cache)[: s.lake_runs])


def measure_train(v: Variant, batch: int, s: Settings, data_dir, cache) -> dict:
    """Training pairs in ``s.train_steps`` steps of a fresh Trainer (warm-up steps untimed)."""
    with tempfile.TemporaryDirectory(prefix="oneshot-speed-") as tmp:
        trainer = Trainer(train_config(v, batch), Path(tmp) / "run", data_dir, cache,
                          progress=False)
        for _ in range(s.warmup):
            trainer.step()
        sec, steps = timed(lambda: [trainer.step() for _ in range(s.train_steps)])
    return {"seconds": sec, "count": sum(pairs for _, pairs in steps)}


@torch.no_grad()
def eval_tutorial_way(model, embedder: Embedder, x: torch.Tensor, query: np.ndarray,
                      support: np.ndarray) -> torch.Tensor:
    """float32 (T, N) logits, the tutorial's way: per task, one forward over its N (query,
    candidate) pairs, so the query is embedded N times and each candidate once per task."""
    T, N = support.shape
    out = torch.empty(T, N)
    for t in range(T):
        pair_images = torch.cat([x[int(query[t])].expand(N, -1, -1, -1),
                                 x[torch.from_numpy(support[t])]])
        e = embedder.embed_tensor(pair_images)
        out[t] = model.head(e[:N], e[N:]).float()
    return out


def measure_ours(v: Variant, metric: str, inp: Inputs, s: Settings, data_dir, cache) -> dict:
    """{"seconds", "count"[, "accuracy"]} for one metric on a fresh model (warm-up untimed)."""
    if metric.startswith("train_b"):
        return measure_train(v, int(metric[len("train_b"):]), s, data_dir, cache)
    model = build_model(v.spec, seed=SEED).eval()
    if v.channels_last:
        model = model.to(memory_format=torch.channels_last)
    embedder = Embedder(model, DEVICE, v.amp, v.channels_last, s.embed_batch)
    scorer = EncoderScorer(model, embedder=embedder)
    if metric == "embed":
        scorer.embed(inp.embed_images[: s.embed_batch])
        sec, _ = timed(lambda: scorer.embed(inp.embed_images))
        return {"seconds": sec, "count": len(inp.embed_images)}
    if metric == "eval_tutorial":
        x = images_to_tensor(inp.task_images, model.encoder.input_size)
        q, sup = inp.task_query, inp.task_support
        eval_tutorial_way(model, embedder, x, q[:1], sup[:1])
        sec, scores = timed(lambda: eval_tutorial_way(model, embedder, x, q, sup))
    elif metric == "eval_cache":
        scorer.embed(inp.task_images[:2])
        sec, ts = timed(lambda: score_tasks(scorer, inp.test_images, inp.tasks))
        scores = ts.scores
    elif metric == "lake":
        scorer.embed(inp.lake_runs[0].train_images[:2])
        sec, res = timed(lambda: lake_benchmark(scorer, inp.lake_runs))
        return {"seconds": sec, "count": len(inp.lake_runs), "accuracy": res.accuracy.value / 100}
    else:
        raise ValueError(f"unknown metric {metric!r}")
    acc = float((predict_positions(scores) == inp.tasks.answer).mean())
    return {"seconds": sec, "count": len(inp.tasks), "accuracy": acc}
