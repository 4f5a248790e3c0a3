"""Speed of ``oneshot`` (PyTorch, CPU) side by side with the tutorial's Keras implementation.

What it measures, for the Keras peer (``benchmarks/keras_peer.py``, fp32) and for our models
(the ``koch`` encoder, ``ModelSpec("koch", {}, "l1")``, as fp32, bf16 autocast, channels_last and
bf16 + channels_last; the compact encoder of the ``fast`` preset, ``conv`` at 28x28 with 64
channels, centred, Euclidean head, as fp32 and bf16):

- ``train_b32`` / ``train_b128``: training pairs per second at batch 32 and 128. One step is a
  full step: forward both images, binary cross-entropy (plus the Keras L2 penalties, 2e-4 on
  convolutions and 1e-3 on dense weights, as the tutorial and our ``tutorial`` preset do),
  backward, Adam (lr 6e-5). Input tensors are built before the clock starts, on both sides.
- ``embed``: images embedded per second (our ``EncoderScorer.embed``; Keras ``encoder.predict``),
  batch 256, starting from uint8 images.
- ``eval_tutorial``: seconds for a 20-way evaluation of ``--tasks`` (400) within-alphabet tasks
  the tutorial's way: one forward (Keras: one ``predict`` call) per task over its 20
  (query, candidate) pairs, so each task embeds 40 images.
- ``eval_cache``: seconds for the same tasks our way: every distinct image embedded once, then
  the head on cached embeddings (ours: ``oneshot.evaluation.nway.score_tasks(EncoderScorer(model),
  images, tasks)``; Keras: one ``predict`` over the distinct images and the L1 head in numpy).
- ``lake``: seconds for Lake's benchmark (20 runs, 400 trials, 800 images) via
  ``oneshot.lake_benchmark(EncoderScorer(model), oneshot.load_lake_runs())`` (ours only).
- Fraction of the CPU's peak arithmetic rate reached by the Koch training step (FLOPs counted
  analytically, peak from /proc/cpuinfo; see the printed assumptions).

Models are untrained (seeded initialisation): speed does not depend on the weights. Accuracies
in the JSON are only a consistency check (the tutorial way and the cache way must agree).

On which data: Omniglot from ``$ONESHOT_DATA`` (or the cache): training pairs sampled from the
30 background alphabets (``PairSampler``, seed 0), evaluation tasks and embedded images from the
``test`` split (``sample_tasks(test, 20, 400, "within-alphabet", seed=0)``), Lake's
``all_runs.zip``. The same pairs, images and tasks are fed to both frameworks (passed to the
Keras worker in one ``.npz``).

How: repetitions are interleaved metric by metric; within each repetition and metric our
variants and the Keras peer run back to back, ours first in even repetitions and Keras first in
odd ones, so slow drifts of the machine's load cancel out. Each cell is the median over
repetitions; ratios to Keras are medians of the per-repetition ratios (> 1: faster than Keras).
Every measurement builds a fresh model and runs ``--warmup`` untimed steps first.

The Keras side runs in its own process and virtualenv (TensorFlow and PyTorch in one process
fight over threads; TensorFlow pins its own numpy/protobuf); both use ``--threads`` threads::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install tensorflow-cpu keras numpy       # the "bench" extra
    ONESHOT_DATA=/work/shared/omniglot .venv/bin/python benchmarks/speed.py \
        --keras-python .venv-bench/bin/python --json speed.json

Without ``--keras-python`` the Keras peer runs under this interpreter if TensorFlow imports
there, and is skipped with a note otherwise. ``--quick`` is a smoke run (2 tiny repetitions,
batch 32 only, 5 tasks, 2 Lake runs, about 4 minutes): its numbers are not benchmark results.

Run it on a quiet machine: the full run does 3 repetitions of 6 variants plus Keras, and one
repetition is dominated by the tutorial-way evaluations (400 tasks x 40 Koch forwards each,
about 29 TFLOP per Koch variant) and the batch-128 steps (1.4 TFLOP each); expect roughly
15-30 minutes per repetition on 2 cores. ``--variants``, ``--metrics``, ``--reps`` and
``--tasks`` trim it.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import oneshot
from oneshot import EncoderScorer, ModelSpec, PairSampler, build_model, load_split, sample_tasks
from oneshot.config import preset
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import score_tasks
from oneshot.preprocess import images_to_tensor
from oneshot.train import build_optimizer

log = logging.getLogger("speed")

HERE = Path(__file__).resolve().parent
KERAS_PEER = HERE / "keras_peer.py"
KERAS_PREFIX = "@@keras "
TUTORIAL = preset("tutorial")  # Adam 6e-5, Keras L2 2e-4 (conv) / 1e-3 (dense), as the peer
SEED = 0
KOCH = ModelSpec("koch", {}, "l1")
FAST = ModelSpec(**preset("fast").model_spec)  # the compact encoder the fast preset trains


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
KERAS = "keras (tutorial, fp32)"
EVAL_METRICS = ("eval_tutorial", "eval_cache", "lake")


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
    only: list | None = None     # a subset of the metrics, or all

    @property
    def metrics(self) -> list[str]:
        every = [f"train_b{b}" for b in self.batches] + ["embed", *EVAL_METRICS]
        return [m for m in every if self.only is None or m in self.only]


# --------------------------------------------------------------------------- FLOPs and peak

def koch_layer_macs() -> dict[str, int]:
    """Multiply-accumulates of one 105x105 image through the Koch encoder (convs and fc only;
    pooling, ReLU and sigmoid are < 0.1 % and left out): out_h * out_w * c_out * k * k * c_in."""
    layers = {  # name: (output side, c_out, kernel, c_in)
        "conv1": (96, 64, 10, 1), "conv2": (42, 128, 7, 64),
        "conv3": (18, 128, 4, 128), "conv4": (6, 256, 4, 128),
    }
    macs = {n: s * s * co * k * k * ci for n, (s, co, k, ci) in layers.items()}
    macs["fc"] = 256 * 6 * 6 * 4096
    return macs


def koch_train_flops_per_pair() -> int:
    """FLOPs of one training pair (two images): forward 2 x MACs; backward = weight gradients
    (1 x forward) + input gradients (1 x forward, except conv1, whose input needs no gradient);
    the head and the optimiser are O(parameters), < 1 % and left out."""
    m = koch_layer_macs()
    total = sum(m.values())
    per_image = 2 * total + 2 * (2 * total - m["conv1"])
    return 2 * per_image


def cpu_info() -> dict:
    info: dict = {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    first = text.split("\n\n")[0]
    for line in first.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "cpu family", "model", "cpu MHz"):
            info[key] = value
        elif key == "flags":
            info["flags"] = value.split()
    return info


def peak_gflops(cores: int, info: dict, fma_units: int = 2, ghz: float | None = None) -> dict:
    """Peak arithmetic rates with the stated assumptions (GFLOP/s)."""
    flags = set(info.get("flags", []))
    ghz = ghz or float(info.get("cpu MHz", 0) or 0) / 1000
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fp32 = cores * ghz * fma_units * lanes * 2
    out = {
        "cores": cores, "ghz": round(ghz, 3), "fma_units": fma_units, "fp32_lanes": lanes,
        "fp32": round(fp32, 1),
        "fp32_formula": f"{cores} cores x {ghz:.3f} GHz x {fma_units} FMA units x {lanes} "
                        f"fp32 lanes x 2 FLOP/FMA",
    }
    if "avx512_bf16" in flags:
        out["bf16_upper_bound"] = round(2 * fp32, 1)
        out["bf16_note"] = ("AVX512_BF16 VDPBF16PS does 2 bf16 MACs per fp32 lane, so at most 2x "
                            "fp32 if it issues on every FMA unit each cycle; its throughput on "
                            "this CPU is not verified here: an upper bound, not a measured peak")
    if {"amx_bf16", "amx_tile"} & flags:
        out["amx_note"] = ("AMX-BF16 present; no defensible per-core figure is assumed here "
                           "(fraction not computed)")
    else:
        out["amx_note"] = "no AMX on this CPU (flags lack amx_tile/amx_bf16): no AMX-BF16 peak"
    return out


# --------------------------------------------------------------------------- shared inputs

@dataclass
class Inputs:
    """Everything both frameworks are fed (uint8 images, ink = 1, and indices into them)."""

    train_images: np.ndarray                   # (M, 105, 105)
    pairs: dict[int, tuple[np.ndarray, ...]]   # batch -> (a, b, target), each (steps, batch)
    embed_images: np.ndarray                   # (E, 105, 105)
    task_images: np.ndarray                    # (U, 105, 105): the tasks' distinct images
    task_query: np.ndarray                     # (T,) into task_images
    task_support: np.ndarray                   # (T, N) into task_images
    task_answer: np.ndarray                    # (T,)
    test_images: np.ndarray                    # the whole test split (for score_tasks)
    tasks: oneshot.TaskList                    # the same tasks, indexing test_images
    lake_runs: list

    def save(self, path: Path) -> None:
        arrays = {"train_images": self.train_images, "embed_images": self.embed_images,
                  "task_images": self.task_images, "task_query": self.task_query,
                  "task_support": self.task_support, "task_answer": self.task_answer}
        for b, (a, bb, t) in self.pairs.items():
            arrays.update({f"pairs_{b}_a": a, f"pairs_{b}_b": bb, f"pairs_{b}_t": t})
        np.savez(path, **arrays)


def prepare_inputs(s: Settings, data_dir: str | None) -> Inputs:
    train = load_split("background", data_dir)
    test = load_split("test", data_dir)
    sampler = PairSampler(train, same_alphabet=0.5, seed=SEED)
    raw = {b: sampler.sample(b * (s.warmup + s.train_steps)) for b in s.batches}
    used = np.unique(np.concatenate([np.concatenate([a, b]) for a, b, _ in raw.values()]))
    remap = np.full(len(train), -1, np.int64)
    remap[used] = np.arange(len(used))
    pairs = {b: (remap[a].reshape(-1, b), remap[bb].reshape(-1, b), t.reshape(-1, b))
             for b, (a, bb, t) in raw.items()}
    tasks = sample_tasks(test, s.ways, s.tasks, "within-alphabet", seed=SEED)
    distinct, inverse = np.unique(np.concatenate([tasks.query, tasks.support.ravel()]),
                                  return_inverse=True)
    T = len(tasks)
    rng = np.random.default_rng(SEED)
    embed_idx = rng.choice(len(test), size=min(s.embed_images, len(test)), replace=False)
    runs = oneshot.load_lake_runs(data_dir)[: s.lake_runs]
    return Inputs(
        train_images=train.images[used], pairs=pairs, embed_images=test.images[embed_idx],
        task_images=test.images[distinct], task_query=inverse[:T],
        task_support=inverse[T:].reshape(T, s.ways), task_answer=tasks.answer,
        test_images=test.images, tasks=tasks, lake_runs=runs)


# --------------------------------------------------------------------------- our side

def make_model(v: Variant) -> torch.nn.Module:
    model = build_model(v.spec, seed=SEED)
    if v.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _layout(x: torch.Tensor, v: Variant) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if v.channels_last else x


def train_step(model, opt, xa, xb, target, v: Variant) -> float:
    """One full step, as ``oneshot.train._Run.step`` does it for pairs: autocast forward of both
    images and the BCE loss, zero_grad, backward, and the trainer's own optimiser step (fused
    Adam, the Keras L2 penalties as coupled weight decay: ``oneshot.train.build_optimizer``)."""
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v.amp):
        logits = model(xa, xb)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


@torch.no_grad()
def eval_tutorial_way(model, x: torch.Tensor, query: np.ndarray, support: np.ndarray,
                      v: Variant) -> torch.Tensor:
    """float32 (T, N) logits: per task, one siamese forward over its N (query, candidate) pairs
    (the query repeated N times), as the tutorial's one ``predict`` per task."""
    model.eval()
    T, N = support.shape
    out = torch.empty(T, N)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v.amp):
        for t in range(T):
            q = _layout(x[int(query[t])].expand(N, -1, -1, -1), v)
            c = _layout(x[torch.from_numpy(support[t])], v)
            out[t] = model(q, c).float()
    return out


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def measure_ours(v: Variant, metric: str, inp: Inputs, s: Settings) -> dict:
    """{"seconds", "count"[, "accuracy"]} for one metric on a fresh model (warm-up untimed)."""
    model = make_model(v)
    size = model.encoder.input_size
    if metric.startswith("train_b"):
        B = int(metric[len("train_b"):])
        a, b, t = inp.pairs[B]
        xa = [_layout(images_to_tensor(inp.train_images[r], size), v) for r in a]
        xb = [_layout(images_to_tensor(inp.train_images[r], size), v) for r in b]
        tt = [torch.from_numpy(r) for r in t]
        opt = build_optimizer(model, TUTORIAL, torch.device("cpu"))
        for i in range(s.warmup):
            train_step(model, opt, xa[i], xb[i], tt[i], v)
        steps = range(s.warmup, s.warmup + s.train_steps)
        sec, _ = _timed(lambda: [train_step(model, opt, xa[i], xb[i], tt[i], v) for i in steps])
        return {"seconds": sec, "count": s.train_steps * B}
    scorer = EncoderScorer(model, amp=v.amp, batch=s.embed_batch)
    if metric == "embed":
        scorer.embed(inp.embed_images[: s.embed_batch])
        sec, _ = _timed(lambda: scorer.embed(inp.embed_images))
        return {"seconds": sec, "count": len(inp.embed_images)}
    if metric == "eval_tutorial":
        x = images_to_tensor(inp.task_images, size)
        eval_tutorial_way(model, x, inp.task_query[:1], inp.task_support[:1], v)
        sec, scores = _timed(lambda: eval_tutorial_way(model, x, inp.task_query,
                                                       inp.task_support, v))
        acc = float((scores.argmax(1).numpy() == inp.task_answer).mean())
        return {"seconds": sec, "count": len(inp.task_query), "accuracy": acc}
    if metric == "eval_cache":
        scorer.embed(inp.task_images[:2])
        sec, ts = _timed(lambda: score_tasks(scorer, inp.test_images, inp.tasks))
        acc = float((ts.scores.argmax(1).numpy() == inp.task_answer).mean())
        return {"seconds": sec, "count": len(inp.tasks), "accuracy": acc}
    if metric == "lake":
        scorer.embed(inp.lake_runs[0].train_images[:2])
        sec, res = _timed(lambda: lake_benchmark(scorer, inp.lake_runs))
        return {"seconds": sec, "count": len(inp.lake_runs), "accuracy": res.accuracy.value / 100}
    raise ValueError(f"unknown metric {metric!r}")


# --------------------------------------------------------------------------- the Keras side

class KerasWorker:
    """``keras_peer.py --worker`` in its own process; one JSON request and answer per line."""

    def __init__(self, python: str, data: Path, threads: int, log_path: Path):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.log_path = log_path
        self.stderr = open(log_path, "w")
        self.proc = subprocess.Popen(
            [python, str(KERAS_PEER), "--worker", str(data), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)
        self.hello = self._read()

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(KERAS_PREFIX):
                msg = json.loads(line[len(KERAS_PREFIX):])
                if "error" in msg:
                    raise RuntimeError(f"Keras worker: {msg['error']}")
                return msg
        tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
        raise RuntimeError(f"Keras worker exited (code {self.proc.wait()}); stderr tail:\n{tail}")

    def measure(self, metrics: list[str], s: Settings) -> dict:
        assert self.proc.stdin is not None
        req = {"op": "measure", "metrics": metrics, "seed": SEED,
               "settings": {"warmup_steps": s.warmup, "train_steps": s.train_steps,
                            "embed_batch": s.embed_batch}}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()["results"]

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.stderr.close()


def resolve_keras_python(arg: str | None) -> tuple[str | None, str]:
    """(interpreter or None, note)."""
    if arg:
        if not Path(arg).exists():
            return None, f"Keras skipped: --keras-python {arg} does not exist"
        return arg, f"Keras peer run by {arg}"
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable, "Keras peer run by this interpreter (tensorflow importable here)"
    return None, ("Keras skipped: tensorflow is not importable in this interpreter; install the "
                  "'bench' extra into its own venv and pass --keras-python "
                  ".venv-bench/bin/python (see this script's docstring)")


# --------------------------------------------------------------------------- the run

def run(s: Settings, variants: list[Variant], keras_python: str | None, data_dir: str | None,
        ) -> dict:
    torch.set_num_threads(s.threads)
    log.info("preparing inputs")
    inp = prepare_inputs(s, data_dir)
    raw: dict[str, dict[str, list[dict]]] = {}
    hello: dict = {}
    with tempfile.TemporaryDirectory(prefix="oneshot-speed-") as tmp:
        worker = None
        if keras_python:
            inp.save(Path(tmp) / "inputs.npz")
            log.info("starting the Keras worker (%s)", keras_python)
            worker = KerasWorker(keras_python, Path(tmp) / "inputs.npz", s.threads,
                                 Path(tmp) / "keras.log")
            hello = worker.hello
        try:
            for rep in range(s.reps):
                for metric in s.metrics:
                    sides = ("ours", "keras") if rep % 2 == 0 else ("keras", "ours")
                    for side in sides:
                        if side == "ours":
                            for v in variants:
                                log.info("rep %d %s: %s", rep, metric, v.name)
                                raw.setdefault(v.name, {}).setdefault(metric, []).append(
                                    measure_ours(v, metric, inp, s))
                                gc.collect()
                        elif worker is not None and metric != "lake":
                            log.info("rep %d %s: keras", rep, metric)
                            r = worker.measure([metric], s)[metric]
                            raw.setdefault(KERAS, {}).setdefault(metric, []).append(r)
        finally:
            if worker is not None:
                worker.close()
    return {"raw": raw, "keras": hello}


def _value(metric: str, r: dict) -> float | None:
    """Throughput (per second) for train/embed, seconds for evaluations."""
    if "seconds" not in r:
        return None
    return r["count"] / r["seconds"] if metric.startswith(("train", "embed")) else r["seconds"]


def summarise(raw: dict, s: Settings) -> dict:
    med: dict = {}
    ratio: dict = {}
    for system, per in raw.items():
        for metric, rs in per.items():
            vals = [x for x in (_value(metric, r) for r in rs) if x is not None]
            if vals:
                med.setdefault(system, {})[metric] = statistics.median(vals)
    kr = raw.get(KERAS, {})
    for system, per in raw.items():
        if system == KERAS:
            continue
        for metric, rs in per.items():
            ks = kr.get(metric)
            if not ks:
                continue
            pr = []
            for ours_r, k_r in zip(rs, ks):
                o, k = _value(metric, ours_r), _value(metric, k_r)
                if o and k:
                    pr.append(o / k if metric.startswith(("train", "embed")) else k / o)
            if pr:
                ratio.setdefault(system, {})[metric] = statistics.median(pr)
    headline = None
    if "koch fp32" in raw and kr.get("eval_tutorial") and raw["koch fp32"].get("eval_cache"):
        pr = [k["seconds"] / o["seconds"]
              for o, k in zip(raw["koch fp32"]["eval_cache"], kr["eval_tutorial"])]
        headline = statistics.median(pr)
    return {"median": med, "ratio_vs_keras": ratio, "cache_vs_keras_tutorial": headline}


def _fmt(x: float | None, metric: str) -> str:
    if x is None:
        return "—"
    if metric.startswith(("train", "embed")):
        return f"{x:.3g}" if x < 100 else f"{x:.0f}"
    return f"{x:.2f}"


def headers(s: Settings) -> dict[str, str]:
    h = {f"train_b{b}": f"train b{b} (pairs/s)" for b in s.batches}
    h.update({"embed": "embed (img/s)",
              "eval_tutorial": f"{s.ways}-way x{s.tasks}, tutorial way (s)",
              "eval_cache": f"{s.ways}-way x{s.tasks}, embedding cache (s)",
              "lake": f"Lake, {s.lake_runs} runs (s)"})
    return h


def peak_section(summary: dict, s: Settings, peak: dict) -> tuple[list[str], dict]:
    fpp = koch_train_flops_per_pair()
    macs = koch_layer_macs()
    lines = [
        "Koch training step, FLOPs counted analytically: forward "
        f"{2 * sum(macs.values()) / 1e9:.3f} GFLOP per image (2 x {sum(macs.values()):,} MACs "
        "of convs + fc), backward 2x forward less conv1's input gradient: "
        f"{fpp / 1e9:.2f} GFLOP per training pair.",
        f"Assumed fp32 peak: {peak['fp32_formula']} = {peak['fp32']:.0f} GFLOP/s "
        "(clock: /proc/cpuinfo 'cpu MHz', the base clock a KVM guest sees; boost would lower "
        "the fractions).",
    ]
    if "bf16_upper_bound" in peak:
        lines.append(f"bf16: {peak['bf16_upper_bound']:.0f} GFLOP/s at most ({peak['bf16_note']}).")
    lines.append(f"{peak['amx_note']}.")
    lines += ["", "| system | batch | GFLOP/s | % of fp32 peak | % of bf16 bound |",
              "| --- | ---: | ---: | ---: | ---: |"]
    out: dict = {"flops_per_pair": fpp, "peak": peak, "rows": []}
    for system, med in summary["median"].items():
        if not (system.startswith("koch") or system == KERAS):
            continue
        for b in s.batches:
            rate = med.get(f"train_b{b}")
            if rate is None:
                continue
            g = rate * fpp / 1e9
            f32 = 100 * g / peak["fp32"] if peak.get("fp32") else None
            bf = (100 * g / peak["bf16_upper_bound"]
                  if "bf16" in system and peak.get("bf16_upper_bound") else None)
            out["rows"].append({"system": system, "batch": b, "gflops": g,
                                "pct_fp32_peak": f32, "pct_bf16_bound": bf})
            lines.append(f"| {system} | {b} | {g:.1f} | "
                         f"{'—' if f32 is None else f'{f32:.1f}'} | "
                         f"{'—' if bf is None else f'{bf:.1f}'} |")
    if not out["rows"]:
        lines[-2:] = ["(no Koch or Keras training step was measured in this run)"]
    return lines, out


def render(result: dict, s: Settings) -> str:
    summ, h = result["summary"], headers(s)
    systems = ([KERAS] if KERAS in summ["median"] else []) + [
        v for v in result["variants"] if v in summ["median"]]
    cols = s.metrics
    reps = f"{s.reps} repetition{'s' if s.reps != 1 else ''}"
    out = [f"# oneshot vs the tutorial's Keras: speed ({reps}, median; {s.threads} threads)", ""]
    m = result["machine"]
    out.append(f"CPU: {m['cpu'].get('model name', '?')} (family {m['cpu'].get('cpu family', '?')}"
               f", model {m['cpu'].get('model', '?')}), {m['cpu']['cpus']} CPUs; torch "
               f"{m['torch']}; " + (f"TensorFlow {result['keras']['versions']['tensorflow']}, "
                                    f"Keras {result['keras']['versions']['keras']}."
                                    if result["keras"] else "no Keras."))
    out.append(result["keras_note"] + ".")
    if result["quick"]:
        out.append("**--quick smoke run: tiny repetitions; not benchmark numbers.**")
    out += ["", "| system | " + " | ".join(h[c] for c in cols) + " |",
            "| --- |" + " ---: |" * len(cols)]
    for sys_ in systems:
        med = summ["median"][sys_]
        out.append(f"| {sys_} | " + " | ".join(_fmt(med.get(c), c) for c in cols) + " |")
    if summ["ratio_vs_keras"]:
        out += ["", "Speed relative to Keras (median of per-repetition ratios; > 1 = faster):",
                "", "| system | " + " | ".join(h[c] for c in cols if c != "lake") + " |",
                "| --- |" + " ---: |" * (len(cols) - ("lake" in cols))]
        for sys_ in systems:
            r = summ["ratio_vs_keras"].get(sys_)
            if r:
                out.append(f"| {sys_} | " + " | ".join(
                    "—" if r.get(c) is None else f"{r[c]:.2f}x" for c in cols if c != "lake")
                    + " |")
    if summ["cache_vs_keras_tutorial"]:
        out += ["", f"Our way vs the tutorial's way: koch fp32 with the embedding cache evaluates "
                f"the same {s.tasks} tasks {summ['cache_vs_keras_tutorial']:.1f}x faster than "
                "Keras with one predict per task."]
    out += ["", "## Fraction of CPU peak (Koch training step)", ""]
    out += result["peak_lines"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 2)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (not benchmark numbers)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--keras-python", metavar="PYTHON",
                   help="interpreter with tensorflow + keras for the peer (e.g. "
                        ".venv-bench/bin/python); default: this one if tensorflow imports")
    p.add_argument("--no-keras", action="store_true", help="measure ours only")
    p.add_argument("--variants", nargs="+", metavar="NAME", choices=[v.name for v in VARIANTS],
                   help="subset of our variants (default: all)")
    p.add_argument("--metrics", nargs="+", metavar="METRIC",
                   help="subset of train_bNN, embed, eval_tutorial, eval_cache, lake")
    p.add_argument("--batches", type=int, nargs="+", help="training batch sizes (default 32 128)")
    p.add_argument("--train-steps", type=int, help="timed steps per measurement (default 4)")
    p.add_argument("--tasks", type=int, help="20-way tasks (default 400)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--fma-units", type=int, default=2,
                   help="FMA units per core assumed for the peak (default 2)")
    p.add_argument("--ghz", type=float, help="clock assumed for the peak (default: cpu MHz)")
    p.add_argument("--data-dir", default=os.environ.get("ONESHOT_DATA"))
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)

    s = Settings(threads=args.threads)
    if args.quick:
        s = Settings(reps=2, warmup=1, train_steps=1, batches=[32], embed_images=64, tasks=5,
                     lake_runs=2, threads=args.threads)
    for name, value in (("reps", args.reps), ("batches", args.batches),
                        ("train_steps", args.train_steps), ("tasks", args.tasks)):
        if value is not None:
            setattr(s, name, value)
    if args.metrics:
        every = s.metrics
        unknown = set(args.metrics) - set(every)
        if unknown:
            p.error(f"unknown metrics {sorted(unknown)}; choose from {every}")
        s.only = list(args.metrics)
    variants = [v for v in VARIANTS if not args.variants or v.name in args.variants]

    if args.no_keras:
        keras_python, note = None, "Keras skipped (--no-keras)"
    else:
        keras_python, note = resolve_keras_python(args.keras_python)
    log.info(note)

    t0 = time.perf_counter()
    out = run(s, variants, keras_python, args.data_dir)
    info = cpu_info()
    peak = peak_gflops(min(s.threads, info["cpus"]), info, args.fma_units, args.ghz)
    summary = summarise(out["raw"], s)
    peak_lines, peak_json = peak_section(summary, s, peak)
    result = {
        "what": "oneshot vs the tutorial's Keras, CPU speed; see benchmarks/speed.py",
        "command": [sys.executable, *sys.argv] if argv is None else ["speed.py", *argv],
        "quick": args.quick, "settings": {**asdict(s), "metrics": s.metrics},
        "variants": [v.name for v in variants],
        "variant_specs": {v.name: {**v.spec.to_dict(), "amp": v.amp,
                                   "channels_last": v.channels_last} for v in variants},
        "machine": {"cpu": {k: v for k, v in info.items() if k != "flags"},
                    "cpu_flags_simd": sorted(f for f in info.get("flags", [])
                                             if f.startswith(("avx", "amx", "fma"))),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_at_end": os.getloadavg()},
        "keras": out["keras"], "keras_note": note,
        "raw": out["raw"], "summary": summary, "peak": peak_json, "peak_lines": peak_lines,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    sys.stdout.write(render(result, s))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    return result


if __name__ == "__main__":
    main()
