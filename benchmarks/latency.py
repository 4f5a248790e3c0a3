"""Deployment latency, side by side: PyTorch fp32, PyTorch bf16 autocast, ONNX Runtime fp32 and
ONNX Runtime int8 (static, QDQ), for the shipped model (or --model), in one process.

What is timed, per backend (the same thread count everywhere, --threads):

- one image, end to end: a PNG file -> ``oneshot.preprocess.preprocess`` -> embedding -> top-5
  answer against a 20-class gallery (``OneShotClassifier.predict_embeddings``); p50 and p99 over
  --calls calls, the queries cycling over Lake's run01 test images saved as 105x105 PNGs; also the
  p50 of each stage (preprocessing, embedding, matching) and of preprocessing a 1024x1024 RGB PNG;
- batch 256: the encoder alone on 256 preprocessed images, ms per image, median of --reps;
- Lake's 400 trials, end to end from the decoded runs (uint8): resize, embed the 800 images,
  score, accuracy (``lake_benchmark``); median of --reps.

Calls of the backends are interleaved in --rounds rounds, so that a shared machine's slow spells
hit them alike. The int8 model is calibrated on 512 background-alphabet images (never Lake's).

    OMP_NUM_THREADS=1 ONESHOT_DATA=... python benchmarks/latency.py --threads 1 [--json out.json]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import markdown_table, parser, repeat, set_threads, timed, write_json
from PIL import Image

from oneshot.checkpoint import load_model
from oneshot.data.lake import load_lake_runs
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.scorers import EncoderScorer
from oneshot.inference import OneShotClassifier
from oneshot.onnx import calibration_images, export_onnx, load_onnx_model, quantize_onnx
from oneshot.preprocess import images_to_tensor, preprocess

TOP_K = 5
GALLERY = 20
BATCH = 256
CALIBRATION = 512


def save_png(img: np.ndarray, path: Path, size: int | None = None) -> Path:
    """An ink-1 uint8 (H, W) image as Omniglot stores it: black ink on white."""
    im = Image.fromarray(((1 - img) * 255).astype(np.uint8))
    if size:
        im = im.resize((size, size), Image.NEAREST).convert("RGB")
    im.save(path)
    return path


def quantiles(ts: list[float]) -> tuple[float, float]:
    """p50, p99 of times in seconds, in ms."""
    a = 1000 * np.asarray(ts)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def build_backends(model, record, tmp: Path, threads: int, int8: bool) -> dict[str, tuple]:
    """{name: (model for the classifier, embed function, scorer)} for every backend."""
    def torch_embed(amp: bool):
        def embed(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=amp):
                return model.encoder(x).float()
        return embed

    backends = {"PyTorch fp32": (model, torch_embed(False), EncoderScorer(model)),
                "PyTorch bf16 autocast": (model, torch_embed(True),
                                          EncoderScorer(model, amp=True))}
    onnx_path = export_onnx(model, tmp / "model.onnx", record)
    net = load_onnx_model(onnx_path, threads=threads)
    backends["ONNX Runtime fp32"] = (net, net.encoder.embed, EncoderScorer(net))
    if int8:
        q = quantize_onnx(onnx_path, tmp / "int8.onnx",
                          calibration_images(model.encoder.input_size, CALIBRATION))
        net8 = load_onnx_model(q, threads=threads)
        backends["ONNX Runtime int8"] = (net8, net8.encoder.embed, EncoderScorer(net8))
    return backends


def single_image(backends: dict, run, size: int, tmp: Path, calls: int, rounds: int) -> dict:
    """Per backend, lists of seconds: total (PNG -> top-5), pre, embed, match."""
    gallery = [save_png(im, tmp / f"g{i}.png") for i, im in enumerate(run.train_images)]
    queries = [save_png(im, tmp / f"q{i}.png") for i, im in enumerate(run.test_images)]
    labels = [f"class{i:02d}" for i in range(GALLERY)]
    classifiers = {}
    for name, (m, embed, _) in backends.items():
        classifiers[name] = OneShotClassifier(m)
        classifiers[name].enrol_embeddings(embed(preprocess([str(p) for p in gallery], size)),
                                           labels)
    stage = {name: {"total": [], "pre": [], "embed": [], "match": []} for name in backends}
    for _ in range(rounds):  # interleaved, so a slow spell of the machine hits all alike
        for name, (_, embed, _) in backends.items():
            embed(preprocess(str(queries[0]), size))  # warm-up
            for i in range(max(1, calls // rounds)):
                t0 = time.perf_counter()
                x = preprocess(str(queries[i % len(queries)]), size)
                t1 = time.perf_counter()
                e = embed(x)
                t2 = time.perf_counter()
                pred = classifiers[name].predict_embeddings(e, top_k=TOP_K)[0]
                t3 = time.perf_counter()
                assert len(pred.top) == TOP_K
                for key, dt in (("total", t3 - t0), ("pre", t1 - t0), ("embed", t2 - t1),
                                ("match", t3 - t2)):
                    stage[name][key].append(dt)
    return stage


def batch_and_lake(backends: dict, runs, size: int, reps: int) -> dict:
    """Per backend: batch-256 seconds and Lake seconds (medians of ``reps``), Lake accuracy."""
    xb = images_to_tensor(np.concatenate([r.test_images for r in runs])[:BATCH], size)
    out = {}
    for name, (_, embed, scorer) in backends.items():
        embed(xb)
        tb, _ = repeat(lambda e=embed: e(xb), reps)
        tl, res = repeat(lambda s=scorer: lake_benchmark(s, runs), reps)
        out[name] = (tb, tl, res.accuracy.value)
    return out


def report(stage: dict, batch: dict, threads: int) -> dict:
    rows = {}
    for name, st in stage.items():
        p50, p99 = quantiles(st["total"])
        tb, tl, acc = batch[name]
        rows[name] = {"p50_ms": p50, "p99_ms": p99,
                      **{f"{k}_p50_ms": quantiles(st[k])[0] for k in ("pre", "embed", "match")},
                      "batch256_ms_per_image": 1000 * tb / BATCH, "lake_s": tl,
                      "lake_accuracy": acc}
    ref = rows["PyTorch fp32"]
    print(markdown_table(
        [f"backend ({threads} thread{'s' * (threads > 1)})", "1 PNG -> top-5, p50 ms", "p99 ms",
         "preprocess p50", "embed p50", "match p50", "vs PyTorch fp32 (p50)",
         "batch 256, ms/image", "Lake 400 trials, s", "Lake accuracy %"],
        [[name, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['pre_p50_ms']:.3f}",
          f"{r['embed_p50_ms']:.3f}", f"{r['match_p50_ms']:.3f}",
          f"{ref['p50_ms'] / r['p50_ms']:.2f}x", f"{r['batch256_ms_per_image']:.3f}",
          f"{r['lake_s']:.2f}", f"{r['lake_accuracy']:.2f}"] for name, r in rows.items()]))
    return rows


def main() -> None:
    ap = parser(__doc__, "reps", "threads", "json", threads=1)
    ap.add_argument("--model", help="model file or run folder (default: the shipped model)")
    ap.add_argument("--calls", type=int, default=1000, help="single-image calls per backend")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds (calls split)")
    ap.add_argument("--no-int8", action="store_true")
    args = ap.parse_args()
    set_threads(args.threads)
    model, record = load_model(args.model)
    size = model.encoder.input_size
    runs = load_lake_runs()
    with tempfile.TemporaryDirectory(prefix="oneshot-latency-") as tmpdir:
        tmp = Path(tmpdir)
        backends = build_backends(model, record, tmp, args.threads, not args.no_int8)
        stage = single_image(backends, runs[0], size, tmp, args.calls, args.rounds)
        big_png = save_png(runs[0].test_images[0], tmp / "big.png", 1024)
        big = [timed(lambda: preprocess(str(big_png), size))[0] for _ in range(50)]
    rows = report(stage, batch_and_lake(backends, runs, size, args.reps), args.threads)
    big_p50 = quantiles(big)[0]
    print(f"\nmodel {model.spec.encoder} ({size} px, D={model.encoder.embedding_dim}); "
          f"{args.calls} single-image calls per backend in {args.rounds} interleaved rounds; "
          f"medians of {args.reps} for batch and Lake; torch {torch.__version__}, "
          f"{args.threads} thread(s). Preprocessing a 1024x1024 RGB PNG: {big_p50:.1f} ms p50.")
    write_json(args.json, {"threads": args.threads, "rows": rows,
                           "big_png_preprocess_ms": big_p50})


if __name__ == "__main__":
    main()
