"""Speed of ``oneshot`` (PyTorch, CPU) side by side with the tutorial's Keras implementation.

What it measures, for the Keras peer (``benchmarks/keras_peer.py``, fp32) and for our models
(the ``tutorial`` preset's Koch model as fp32, bf16 autocast, channels_last and bf16 +
channels_last; the ``fast`` preset's compact encoder as fp32 and bf16; see ``_speed_ours.py``):

- ``train_b32`` / ``train_b128``: training pairs per second at batch 32 and 128. Ours is the
  library's own step, ``Trainer.step()`` of the ``tutorial`` preset with the variant's model
  (draw the pairs, gather their images, forward both, binary cross-entropy, backward, fused Adam
  6e-5 with the Keras L2 penalties as weight decay); Keras's is ``train_on_batch`` on the same
  pairs, its inputs built before the clock starts.
- ``embed``: images embedded per second (our ``Embedder``; Keras ``encoder.predict``), batch
  256, starting from uint8 images.
- ``eval_tutorial``: seconds for a 20-way evaluation of ``--tasks`` (400) within-alphabet tasks
  the tutorial's way: one forward (Keras: one ``predict`` call) per task over its 20
  (query, candidate) pairs, so each task embeds 40 images.
- ``eval_cache``: seconds for the same tasks our way (``score_tasks``: every distinct image
  embedded once, then the head on cached embeddings; Keras: one ``predict`` over the distinct
  images and the L1 head in numpy).
- ``lake``: seconds for Lake's benchmark (20 runs, 400 trials, 800 images; ours only).
- Fraction of peak of the Koch training step: FLOPs counted analytically, against the rate of a
  large fp32 and bf16 matmul measured in the same run (``--peak-size``, once per repetition).

Models are untrained (seeded initialisation): speed does not depend on the weights. Accuracies
in the JSON are only a consistency check (the tutorial way and the cache way must agree).

On which data: Omniglot from ``$ONESHOT_DATA`` (or the cache): training pairs from the 30
background alphabets (the Trainer's own sampler; the Keras peer gets the same pairs), evaluation
tasks and embedded images from the ``test`` split (``sample_tasks(test, 20, 400,
"within-alphabet", seed=0)``), Lake's ``all_runs.zip``; passed to the Keras worker in one
``.npz``.

How: repetitions are interleaved metric by metric; within each repetition and metric our
variants and the Keras peer run back to back, ours first in even repetitions and Keras first in
odd ones. Each cell is the median over repetitions; ratios to Keras are medians of the
per-repetition ratios (> 1: faster than Keras). Every measurement builds a fresh model (and, for
training, a fresh Trainer) and runs ``--warmup`` untimed steps first.

The Keras side runs in its own process and virtualenv (TensorFlow and PyTorch in one process
fight over threads; TensorFlow pins its own numpy/protobuf); both use ``--threads`` threads::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install tensorflow-cpu keras numpy       # the "bench" extra
    ONESHOT_DATA=/work/shared/omniglot .venv/bin/python benchmarks/speed.py \
        --keras-python .venv-bench/bin/python --json speed.json

Without ``--keras-python`` the Keras peer runs under this interpreter if TensorFlow imports
there, and is skipped with a note otherwise. ``--quick`` is a smoke run (2 tiny repetitions,
batch 32 only, 5 tasks, 2 Lake runs): its numbers are not benchmark results. A full run (3
repetitions of 6 variants plus Keras) takes roughly 15-30 minutes per repetition on 2 cores;
``--variants``, ``--metrics``, ``--reps`` and ``--tasks`` trim it.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from _common import alternate, parser, set_threads
from _speed_ours import (
    PEAK_REPS,
    SEED,
    VARIANTS,
    Settings,
    measure_ours,
    measure_peak,
    prepare_inputs,
)
from _speed_report import KERAS, peak_section, render, summarise

log = logging.getLogger("speed")

KERAS_PEER = Path(__file__).resolve().parent / "keras_peer.py"
KERAS_PREFIX = "@@keras "
QUICK = {"reps": 2, "warmup": 1, "train_steps": 1, "batches": [32], "embed_images": 64,
         "tasks": 5, "lake_runs": 2}


class KerasWorker:
    """``keras_peer.py --worker`` in its own process; one JSON request and answer per line."""

    def __init__(self, python: str, data: Path, threads: int, log_path: Path):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.log_path = log_path
        self.stderr = open(log_path, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [python, str(KERAS_PEER), "--worker", str(data), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env)
        self.hello = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(KERAS_PREFIX):
                msg = json.loads(line[len(KERAS_PREFIX):])
                if "error" in msg:
                    raise RuntimeError(f"Keras worker: {msg['error']}")
                return msg
        tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
        raise RuntimeError(f"Keras worker exited (code {self.proc.wait()}); stderr tail:\n{tail}")

    def measure(self, metric: str, s: Settings) -> dict:
        req = {"op": "measure", "metrics": [metric], "seed": SEED,
               "settings": {"warmup_steps": s.warmup, "train_steps": s.train_steps,
                            "embed_batch": s.embed_batch}}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()["results"][metric]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.stderr.close()


def resolve_keras_python(arg: str | None, off: bool) -> tuple[str | None, str]:
    """(interpreter or None, note)."""
    if off:
        return None, "Keras skipped (--no-keras)"
    if arg:
        if not Path(arg).exists():
            return None, f"Keras skipped: --keras-python {arg} does not exist"
        return arg, f"Keras peer run by {arg}"
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable, "Keras peer run by this interpreter (tensorflow importable here)"
    return None, ("Keras skipped: tensorflow is not importable in this interpreter; install the "
                  "'bench' extra into its own venv and pass --keras-python "
                  ".venv-bench/bin/python (see this script's docstring)")


def run(s: Settings, variants: list, keras_python: str | None, data: tuple) -> dict:
    """{"raw": {system: {metric: [one result per repetition]}}, "keras": the worker's hello,
    "peak": the best measured matmul GFLOP/s}; repetitions interleaved (see the docstring)."""
    log.info("preparing inputs")
    inp = prepare_inputs(s, *data)
    raw: dict[str, dict[str, list[dict]]] = {}
    peaks: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="oneshot-speed-") as tmp:
        worker = None
        if keras_python:
            inp.save(Path(tmp) / "inputs.npz")
            log.info("starting the Keras worker (%s)", keras_python)
            worker = KerasWorker(keras_python, Path(tmp) / "inputs.npz", s.threads,
                                 Path(tmp) / "keras.log")
        try:
            for rep in range(s.reps):
                peaks.append(measure_peak(s.peak_size))
                for metric in s.metrics:
                    for side in alternate(("ours", "keras"), rep):
                        if side == "ours":
                            for v in variants:
                                log.info("rep %d %s: %s", rep, metric, v.name)
                                raw.setdefault(v.name, {}).setdefault(metric, []).append(
                                    measure_ours(v, metric, inp, s, *data))
                                gc.collect()
                        elif worker is not None and metric != "lake":
                            log.info("rep %d %s: keras", rep, metric)
                            raw.setdefault(KERAS, {}).setdefault(metric, []).append(
                                worker.measure(metric, s))
        finally:
            if worker is not None:
                worker.close()
    peak = {k: max(p[k] for p in peaks) for k in ("fp32", "bf16")}
    return {"raw": raw, "keras": worker.hello if worker else {},
            "peak": {**peak, "matmuls": PEAK_REPS * s.reps}}


def build_parser():
    p = parser(__doc__, "threads", "data", "json", threads=len(os.sched_getaffinity(0)))
    p.add_argument("--reps", type=int, help="repetitions (default 3; quick 2)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (not benchmark numbers)")
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
    p.add_argument("--peak-size", type=int, help="side of the peak matmul (default 4096)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def settings(p, args) -> Settings:
    s = Settings(threads=args.threads, **(QUICK if args.quick else {}))
    for name in ("reps", "batches", "train_steps", "tasks", "peak_size"):
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    if args.metrics:
        unknown = set(args.metrics) - set(s.metrics)
        if unknown:
            p.error(f"unknown metrics {sorted(unknown)}; choose from {s.metrics}")
        s.only = list(args.metrics)
    return s


def machine() -> dict:
    cpu: dict = {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()}
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        first = ""
    for line in first.splitlines():
        key, _, value = (x.strip() for x in line.partition(":"))
        if key in ("model name", "cpu family", "model"):
            cpu[key] = value
        elif key == "flags":
            cpu["simd_flags"] = sorted(f for f in value.split()
                                       if f.startswith(("avx", "amx", "fma")))
    return {"cpu": cpu, "torch": torch.__version__, "python": platform.python_version(),
            "load_average_at_end": os.getloadavg()}


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    s = settings(p, args)
    set_threads(s.threads)
    variants = [v for v in VARIANTS if not args.variants or v.name in args.variants]
    keras_python, note = resolve_keras_python(args.keras_python, args.no_keras)
    log.info(note)
    t0 = time.perf_counter()
    out = run(s, variants, keras_python, (args.data_dir, args.cache))
    summary = summarise(out["raw"])
    peak_lines, peak_json = peak_section(summary, s, out["peak"])
    result = {
        "what": "oneshot vs the tutorial's Keras, CPU speed; see benchmarks/speed.py",
        "command": [sys.executable, *sys.argv] if argv is None else ["speed.py", *argv],
        "quick": args.quick, "settings": {**asdict(s), "metrics": s.metrics},
        "variants": [v.name for v in variants],
        "variant_specs": {v.name: {**v.spec.to_dict(), "amp": v.amp,
                                   "channels_last": v.channels_last} for v in variants},
        "machine": machine(), "keras": out["keras"], "keras_note": note,
        "raw": out["raw"], "summary": summary, "peak": peak_json, "peak_lines": peak_lines,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    sys.stdout.write(render(result, s))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    return result


if __name__ == "__main__":
    main()
