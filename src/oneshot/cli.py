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
    from .datasets import load_data

    print(f"cache: {cache_dir(args.cache)}")
    for name in args.split:
        t0 = time.perf_counter()
        ds = load_data(name, args.data_dir, args.cache, progress=_progress(args))
        c = ds.counts()
        print(f"{name:11s} {c['alphabets']:3d} alphabets {c['characters']:5d} characters "
              f"{c['images']:6d} images  digest {ds.digest[:16]} "
              f"({'recomputed' if ds.digest_verified else 'trusted'})  "
              f"{time.perf_counter() - t0:.2f} s")
    if args.lake:
        from .data.lake import load_lake_runs

        runs = load_lake_runs(args.data_dir, args.cache)
        print(f"lake runs   {len(runs)} runs, {sum(len(r.test_files) for r in runs)} trials")
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoint import default_model_path
    from .evaluation.runner import EvalSettings
    from .report import evaluate_and_report

    models = args.model
    if models is None and not args.baselines_only and default_model_path() is not None:
        models = ["default"]
    modes = args.mode or ["within-alphabet", "unstructured"]
    splits, datasets = list(args.split), None
    if args.data:  # a folder of classes (one part of its class split): no Lake benchmark
        from .datasets import load_folder_part

        ds = load_folder_part(args.data, args.part, args.data_split, args.split_seed,
                              cache=args.cache, progress=_progress(args))
        splits, datasets = [ds.name], {ds.name: ds}
        if len(ds.alphabets) == 1 and not args.mode:
            modes = ["unstructured"]  # one group: within-group tasks would be the same
    rep = evaluate_and_report(
        args.out, EvalSettings(splits=tuple(splits), modes=tuple(modes),
                               ways=tuple(args.ways), tasks=args.tasks, seed=args.seed,
                               lake=not args.no_lake and not args.data),
        model=None if args.baselines_only else models,
        baselines=not args.no_baselines, data_dir=args.data_dir, cache=args.cache,
        device=args.device, progress=_progress(args),
        command="oneshot " + shlex.join(sys.argv[1:]), datasets=datasets)
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
    from .training import apply_overrides, check_config, preset, train
    from .training.warmstart import resolve_init

    typed = {k: getattr(args, k) for k in ("steps", "device", "seed", "data", "data_split",
                                           "init") if getattr(args, k) is not None}
    cfg = apply_overrides(apply_overrides(preset(args.preset), args.set or []), typed)
    cfg = resolve_init(cfg)
    check_config(cfg)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    r = train(cfg, args.out, args.data_dir, args.cache, resume=args.resume,
              progress=not args.quiet, command=sys.argv, overwrite=args.overwrite)
    print(f"trained {r.steps} steps in {r.train_seconds / 60:.1f} min; best validation "
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


def cmd_verify(args) -> int:
    v = _classifier(args).verify_pair(args.image_a, args.image_b, args.threshold)
    if args.json:
        print(json.dumps({"a": args.image_a, "b": args.image_b, "probability": v.probability,
                          "same": v.same, "threshold": v.threshold}))
    else:
        print(f"{v.probability:.4f}  {'same' if v.same else 'different'} "
              f"(threshold {v.threshold})")
    return 0


def cmd_enrol(args) -> int:
    from .inference import enrol_into_gallery

    clf = _classifier(args)
    gallery = Path(args.gallery)
    done = enrol_into_gallery(clf, gallery, args.folder, replace=args.replace,
                              existing=args.existing, per_class=args.per_class,
                              pick=args.pick, seed=args.seed)
    msg = {"gallery": str(gallery), "classes": len(clf.classes), "images": len(clf),
           "enrolled": done}
    what = "; ".join(f"{k} {len(v)} class{'es' if len(v) != 1 else ''}"
                     for k, v in done.items() if v) or "nothing new"
    print(json.dumps(msg) if args.json else
          f"gallery {gallery}: {msg['classes']} classes, {msg['images']} images ({what})")
    return 0


def cmd_classify(args) -> int:
    from .batch import accuracy_by_class, classify_paths

    clf = _classifier(args)
    if args.gallery:
        clf.load_gallery(args.gallery)
    else:
        clf.enrol_folder(args.support)
    outcomes = []
    for o in classify_paths(clf, args.images, args.top_k, args.threshold):
        outcomes.append(o)
        if args.json:
            print(json.dumps(o.to_json()), flush=True)
        elif o.error is not None:
            print(f"{o.path}: error: {o.error}", flush=True)
        else:
            alts = ", ".join(f"{lab} {s:.3f}" for lab, s in o.prediction.top)
            print(f"{o.path}: {o.prediction.label}  ({alts})", flush=True)
    _print_accuracy(accuracy_by_class(outcomes), sys.stderr if args.json else sys.stdout)
    failed = sum(o.error is not None for o in outcomes)
    if not outcomes:
        print(f"error: no images in {' '.join(args.images)}", file=sys.stderr)
    if failed:
        print(f"error: {failed} of {len(outcomes)} images could not be classified",
              file=sys.stderr)
    return EXIT_USAGE if failed or not outcomes else 0


def _print_accuracy(by_class: dict[str, tuple[int, int]], out) -> None:
    """Per-class and overall accuracy of the images whose folder names their class."""
    if not by_class:
        return
    right, total = (sum(v[i] for v in by_class.values()) for i in (0, 1))
    print(f"accuracy (images in a folder named like their class): {100 * right / total:.1f} % "
          f"({right} of {total})", file=out)
    for c, (r, n) in by_class.items():
        print(f"  {c}: {100 * r / n:.1f} % ({r} of {n})", file=out)


def cmd_demo(args) -> int:
    from .errors import UsageError

    try:
        from .demo import serve
    except ImportError as e:
        raise UsageError(f"the demo needs its extra: pip install 'oneshot[demo]' ({e})") from e
    serve(args.host, args.port, args.model, args.data_dir, args.cache, data=args.data)
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
