"""``oneshot`` command line: each subcommand parses, calls one documented library function, and
prints. Nothing heavy is imported until a command runs, so ``--help`` answers at once.

Exit status: 0 success; 2 a user mistake (bad option, input file, config value: a one-line
``error: ...``); 130 interrupted; 1 anything else (a bug: the traceback is shown).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser", "EXIT_USAGE", "EXIT_INTERRUPTED"]

log = logging.getLogger("oneshot")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def cmd_data(args) -> int:
    from .data.omniglot import cache_dir
    from .data.splits import load_split

    out = {"cache": str(cache_dir(args.cache)), "splits": {}}
    if not args.json:
        print(f"cache: {out['cache']}")
    for name in args.split:
        t0 = time.perf_counter()
        ds = load_split(name, args.data_dir, args.cache, progress=_progress(args))
        c = ds.counts()
        out["splits"][name] = {**c, "digest": ds.digest, "digest_recomputed": ds.digest_verified,
                               "seconds": round(time.perf_counter() - t0, 3)}
        if not args.json:
            print(f"{name:11s} {c['alphabets']:3d} alphabets {c['characters']:5d} characters "
                  f"{c['images']:6d} images  digest {ds.digest[:16]} "
                  f"({'recomputed' if ds.digest_verified else 'trusted'})  "
                  f"{time.perf_counter() - t0:.2f} s")
    if args.lake:
        from .data.lake import load_lake_runs

        runs = load_lake_runs(args.data_dir, args.cache)
        out["lake"] = {"runs": len(runs), "trials": sum(len(r.test_files) for r in runs)}
        if not args.json:
            print(f"lake runs   {out['lake']['runs']} runs, {out['lake']['trials']} trials")
    if args.json:
        print(json.dumps(out))
    return 0


def cmd_evaluate(args) -> int:
    from dataclasses import replace

    from .checkpoint import default_model_path
    from .evaluation.runner import FULL, EvalSettings
    from .report import evaluate_and_report

    model = args.model
    if model is None and not args.baselines_only and default_model_path() is not None:
        model = "default"
    base = FULL if args.full else EvalSettings()
    settings = replace(base, splits=tuple(args.split or base.splits), modes=tuple(args.mode),
                       ways=tuple(args.ways), tasks=args.tasks, seed=args.seed,
                       lake=not args.no_lake)
    rep = evaluate_and_report(
        args.out, settings,
        model=None if args.baselines_only else model,
        model_label="the shipped model" if model == "default" else None,
        baselines=not args.no_baselines, data_dir=args.data_dir, cache=args.cache,
        device=args.device, progress=_progress(args),
        command="oneshot " + shlex.join(sys.argv[1:]))
    print(rep.markdown.read_text())
    print("written: " + ", ".join(str(p) for p in rep.files))
    return 0


def cmd_show_task(args) -> int:
    from .checkpoint import default_model_path
    from .plots import show_task

    model = args.model or ("default" if default_model_path() and not args.no_model else None)
    show_task(args.out, args.ways, args.split, args.mode, args.seed, model, args.data_dir,
              args.cache, args.device)
    print(f"written: {args.out}")
    return 0


def cmd_train(args) -> int:
    from .training import (
        TrainConfig,
        TrainingInterrupted,
        apply_overrides,
        check_config,
        preset,
        train,
    )

    typed = {k: getattr(args, k) for k in ("steps", "device", "seed")
             if getattr(args, k) is not None}
    base = TrainConfig.from_file(args.config) if args.config else preset(args.preset)
    cfg = apply_overrides(apply_overrides(base, args.set or []), typed)
    check_config(cfg)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    try:
        r = train(cfg, args.out, args.data_dir, args.cache, resume=args.resume,
                  progress=not args.quiet, command=sys.argv, overwrite=args.overwrite)
    except TrainingInterrupted as e:
        argv = [a for a in sys.argv[1:] if a not in ("--resume", "--overwrite")]
        print(f"{e}:\n  oneshot {shlex.join(argv)} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary = {"steps": r.steps, "train_minutes": round(r.train_seconds / 60, 3),
               "best_val": r.best_val, "best_step": r.best_step, "run": str(r.out)}
    print(json.dumps(summary) if args.json else
          f"trained {r.steps} steps in {r.train_seconds / 60:.1f} min; best validation "
          f"{r.best_val:.2f} % at step {r.best_step}; run folder {r.out}")
    return 0


def cmd_export(args) -> int:
    from .checkpoint import export_model, load_model
    from .errors import UsageError

    fmt = args.format or ("onnx" if str(args.out).lower().endswith(".onnx") else "pt")
    if fmt == "onnx":
        from .onnx import export_onnx_files

        written = export_onnx_files(args.run, args.out, args.int8, args.opset, args.data_dir,
                                    args.cache)
    else:
        if args.int8:
            raise UsageError("--int8 applies to --format onnx only")
        model, record = load_model(args.run)
        export_model(model, args.out, record, half=args.half, inputs=(args.run,))
        written = [Path(args.out)]
    for p in written:
        print(f"written: {p} ({Path(p).stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_ensemble(args) -> int:
    from .checkpoint import export_model, load_model
    from .models import ensemble

    loaded = [load_model(r) for r in args.runs]
    export_model(ensemble([m for m, _ in loaded]), args.out,
                 {"members": [str(r) for r in args.runs],
                  "member_records": [rec for _, rec in loaded]}, half=args.half,
                 inputs=tuple(args.runs))
    print(f"written: {args.out} ({len(loaded)} members, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0


def _classifier(args):
    from .inference import OneShotClassifier

    return OneShotClassifier.load(args.model, device=args.device, crop=args.crop or None)


def _read_pairs(path: str) -> list[tuple[str, str]]:
    from .errors import UsageError

    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2:
            raise UsageError(f"{path}:{n}: {len(parts)} fields; two image paths expected "
                             "(separated by a tab, or by spaces when the paths have none)")
        pairs.append((parts[0].strip(), parts[1].strip()))
    return pairs


def cmd_verify(args) -> int:
    from .errors import UsageError

    if args.pairs and (args.image_a or args.image_b):
        raise UsageError("give two images or --pairs FILE, not both")
    if not args.pairs and not (args.image_a and args.image_b):
        raise UsageError("give two images (or --pairs FILE)")
    pairs = _read_pairs(args.pairs) if args.pairs else [(args.image_a, args.image_b)]
    failed = 0
    for (a, b), v in zip(pairs, _classifier(args).verify_many(pairs, args.threshold)):
        if not hasattr(v, "probability"):
            failed += 1
            print(json.dumps({"a": a, "b": b, "error": str(v)}) if args.json else
                  f"{a} {b}: error: {v}", file=None if args.json else sys.stderr)
        elif args.json:
            print(json.dumps({"a": a, "b": b, "probability": v.probability, "same": v.same,
                              "threshold": v.threshold}))
        else:
            prefix = f"{a} {b}: " if args.pairs else ""
            print(f"{prefix}{v.probability:.4f}  {'same' if v.same else 'different'} "
                  f"(threshold {v.threshold})")
    return EXIT_USAGE if failed else 0


def cmd_enrol(args) -> int:
    from .inference import enrol_into_gallery

    clf = _classifier(args)
    gallery = Path(args.gallery)
    enrol_into_gallery(clf, gallery, args.folder, replace=args.replace)
    msg = {"gallery": str(gallery), "classes": len(clf.classes), "images": len(clf)}
    print(json.dumps(msg) if args.json else
          f"gallery {gallery}: {msg['classes']} classes, {msg['images']} images")
    return 0


def cmd_classify(args) -> int:
    clf = _classifier(args)
    if args.gallery:
        clf.load_gallery(args.gallery)
    else:
        clf.enrol_folder(args.support)
    threshold = "calibrated" if args.threshold is None else args.threshold or None
    preds = clf.predict(args.images, top_k=args.top_k, threshold=threshold)
    if not args.json:
        print(_threshold_note(clf, preds[0].threshold if preds else None), file=sys.stderr)
    for img, p in zip(args.images, preds):
        if args.json:
            print(json.dumps({"image": img, "label": p.label, "probability": p.probability,
                              "threshold": p.threshold,
                              "top": [{"label": lab, "probability": s} for lab, s in p.top]}))
        else:
            alts = ", ".join(f"{lab} {s:.3f}" for lab, s in p.top)
            print(f"{img}: {p.label}  ({alts})")
    return 0


def _threshold_note(clf, used: float | None) -> str:
    if used is None:
        return "threshold: none (every image is given its best class)"
    cal = clf.record.get("open_set", {})
    if used == clf.calibrated_threshold:
        return (f"threshold {used:.3f}: the model's, calibrated on held-out alphabets "
                f"({100 * cal['false_accept']:.1f} % of unknown characters accepted, "
                f"{100 * cal['false_reject']:.1f} % of known ones rejected); "
                "--threshold 0 always names a class")
    return f"threshold {used:.3f} (--threshold)"


def cmd_demo(args) -> int:
    from .errors import UsageError

    try:
        from .demo import serve
    except ImportError as e:
        raise UsageError("the demo needs its extra: pip install 'oneshot-siamese[demo]' "
                         f"({e})") from e
    serve(args.host, args.port, args.model, args.data_dir, args.cache)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    from .cli_parser import build_parser

    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from .errors import OneshotError

    try:
        from .plugins import load_plugins

        load_plugins(args.plugin)
        return globals()[args.func_name](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OneshotError, FileNotFoundError, FileExistsError, IsADirectoryError,
            NotADirectoryError, PermissionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (see :mod:`oneshot.cli_parser`)."""
    from .cli_parser import build_parser as build

    return build()


if __name__ == "__main__":
    sys.exit(main())
