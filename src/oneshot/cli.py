"""``oneshot`` command line: each subcommand parses, calls one documented library function, and
prints; nothing heavy is imported until a command runs, so ``--help`` answers at once. Exit
status: 0 success; 2 a user mistake (bad option, input file, config value) or a refusal of
the system (full disk, read-only folder): a one-line ``error: ...``; 130 interrupted; 141 the
reader of the output went away (``| head``); 1 anything else (a bug: the traceback is shown)."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path

from .cli_parser import build_parser  # argparse only: --help stays quick
from .errors import NamedStdout, UsageError, sigterm_as_interrupt, silence_stdout

__all__ = ["main", "build_parser", "EXIT_USAGE", "EXIT_INTERRUPTED"]

log = logging.getLogger("oneshot")
EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 2, 130, 141  # 141: as a shell's for SIGPIPE


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def cmd_data(args) -> int:
    from .data.omniglot import cache_dir
    from .datasets import load_data, warn_if_shadowed

    out = {"cache": str(cache_dir(args.cache)), "splits": {}}
    if not args.json:
        print(f"cache: {out['cache']}")
    warn_if_shadowed(args.split or [])
    for name in args.split or ["background", "evaluation"]:
        t0 = time.perf_counter()
        ds = load_data(name, args.data_dir, args.cache, progress=_progress(args))
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
    from .datasets import check_folder_options, warn_if_shadowed
    from .evaluation.runner import FULL, EvalSettings
    from .report import evaluate_and_report

    check_folder_options(args)
    models = args.model
    if models is None and not args.baselines_only and default_model_path() is not None:
        models = ["default"]
    base = FULL if args.full else EvalSettings()
    modes = args.mode or list(base.modes)
    splits, datasets = list(args.split or base.splits), None
    warn_if_shadowed(args.split or [])
    if args.data:  # a folder of classes (one part of its class split): no Lake benchmark
        from .datasets import load_folder_part

        ds = load_folder_part(args.data, args.part, args.data_split, args.split_seed or 0,
                              cache=args.cache, progress=_progress(args))
        splits, datasets = [ds.name], {ds.name: ds}
        if len(ds.alphabets) == 1 and not args.mode:
            modes = ["unstructured"]  # one group: within-group tasks would be the same
    settings = replace(base, splits=tuple(splits), modes=tuple(modes), ways=tuple(args.ways),
                       tasks=args.tasks, seed=args.seed,
                       lake=not args.no_lake and not args.data, precision=args.precision)
    rep = evaluate_and_report(
        args.out, settings, model=None if args.baselines_only else models,
        baselines=not args.no_baselines, data_dir=args.data_dir, cache=args.cache,
        device=args.device, progress=_progress(args),
        command="oneshot " + shlex.join(sys.argv[1:]), datasets=datasets)
    print(rep.markdown.read_text())
    print("written: " + ", ".join(str(p) for p in rep.files))
    return 0


def cmd_show_task(args) -> int:
    from .checkpoint import default_model_path
    from .datasets import warn_if_shadowed
    from .plots import show_task

    if args.no_model and args.model:
        raise UsageError("--no-model and --model contradict each other; give one")
    model = args.model or ("default" if default_model_path() and not args.no_model else None)
    warn_if_shadowed([args.split] if args.split else [])
    show_task(args.out, args.ways, args.split or "test", args.mode, args.seed, model, args.data_dir,
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
    from .training.distributed import process_rank
    from .training.warmstart import resolve_init

    typed = {k: getattr(args, k) for k in ("steps", "device", "seed", "data", "data_split",
                                           "init") if getattr(args, k) is not None}
    base = TrainConfig.from_file(args.config) if args.config else preset(args.preset)
    cfg = resolve_init(apply_overrides(apply_overrides(base, args.set or []), typed))
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
    what = (f"{cfg.members} members, {r.steps} steps at most, {r.train_seconds / 60:.1f} "
            f"training minutes in all; ensemble validation {r.best_val:.2f} %; model file "
            f"{r.out / 'model.pt'}" if cfg.members > 1 else
            f"{r.steps} steps in {r.train_seconds / 60:.1f} min; best validation "
            f"{r.best_val:.2f} % at step {r.best_step}; run folder {r.out}")
    if process_rank()[0] == 0:  # under torchrun, rank 0 reports (the others' results: nan)
        print(json.dumps(summary) if args.json else f"trained {what}")
    return 0


def cmd_export(args) -> int:
    from .checkpoint import export_model, load_model
    fmt = args.format or ("onnx" if str(args.out).lower().endswith(".onnx") else "pt")
    for flag, only in (("half", "pt"), ("int8", "onnx")):  # ONNX: --int8 for a smaller file
        if getattr(args, flag) and fmt != only:
            raise UsageError(f"--{flag} applies to --format {only} only")
    if fmt == "onnx":
        from .onnx import export_onnx_files

        written = export_onnx_files(args.run, args.out, args.int8, args.opset, args.data_dir,
                                    args.cache)
    else:
        model, record = load_model(args.run)
        export_model(model, args.out, record, half=args.half, inputs=(args.run,))
        written = [Path(args.out)]
    for p in written:
        print(f"written: {p} ({Path(p).stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_ensemble(args) -> int:
    from .checkpoint import export_ensemble

    n = export_ensemble(args.runs, args.out, args.half, args.views)
    print(f"written: {args.out} ({n} member{'s' if n != 1 else ''}, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0


def _classifier(args):
    from .inference import OneShotClassifier

    return OneShotClassifier.load(args.model, device=args.device, crop=args.crop or None)


def cmd_verify(args) -> int:
    if args.pairs and (args.image_a or args.image_b):
        raise UsageError("give two images or --pairs FILE, not both")
    if not args.pairs and not (args.image_a and args.image_b):
        raise UsageError("give two images (or --pairs FILE)")
    from .batch import read_pairs, verify_many

    pairs = read_pairs(args.pairs) if args.pairs else [(args.image_a, args.image_b)]
    failed = 0
    for (a, b), v in zip(pairs, verify_many(_classifier(args), pairs, args.threshold)):
        if not hasattr(v, "probability"):
            failed += 1
            print(json.dumps({"a": a, "b": b, "error": str(v)}) if args.json else
                  f"{a} {b}: error: {v}", file=None if args.json else sys.stderr)
        elif args.json:
            print(json.dumps({"a": a, "b": b, "probability": v.probability, "same": v.same,
                              "threshold": v.threshold}), flush=True)
        else:
            prefix = f"{a} {b}: " if args.pairs else ""
            print(f"{prefix}{v.probability:.4f}  {'same' if v.same else 'different'} "
                  f"(threshold {v.threshold})", flush=True)  # a pipe sees lines as they come
    return EXIT_USAGE if failed else 0


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
    from .batch import classify_paths, print_accuracy, threshold_note

    clf = _classifier(args)
    if args.gallery:
        clf.load_gallery(args.gallery)
    else:
        clf.enrol_folder(args.support)
    outcomes = []
    threshold = "calibrated" if args.threshold is None else args.threshold or None
    if not (args.json or args.quiet):  # the note is information, as a log line is
        used = clf.calibrated_threshold if threshold == "calibrated" else threshold
        print(threshold_note(clf, used), file=sys.stderr)
    for o in classify_paths(clf, args.images, args.top_k, threshold):
        outcomes.append(o)
        if args.json:
            print(json.dumps(o.to_json()), flush=True)
        elif o.error is not None:
            print(f"{o.path}: error: {str(o.error).removeprefix(f'{o.path}: ')}", flush=True)
        else:
            alts = ", ".join(f"{lab} {s:.3f}" for lab, s in o.prediction.top)
            print(f"{o.path}: {o.prediction.label}  ({alts})", flush=True)
    print_accuracy(outcomes, sys.stderr if args.json else sys.stdout)
    failed = sum(o.error is not None for o in outcomes)
    if not outcomes:
        print(f"error: no images in {' '.join(args.images)}", file=sys.stderr)
    if failed:
        print(f"error: {failed} of {len(outcomes)} images could not be classified", file=sys.stderr)
    return EXIT_USAGE if failed or not outcomes else 0



def cmd_demo(args) -> int:
    try:
        from .demo import serve
    except ImportError as e:
        raise UsageError("the demo needs its extra: pip install 'oneshot-siamese[demo]' "
                         f"({e})") from e
    serve(args.host, args.port, args.model, args.data_dir, args.cache, data=args.data)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from .errors import OneshotError

    try:
        from .plugins import load_plugins

        load_plugins(args.plugin)
        with NamedStdout.installed(), sigterm_as_interrupt():  # (/dev/full: named; 130)
            return globals()[args.func_name](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `oneshot classify ... | head`: the reader has gone, not an error
        return silence_stdout(EXIT_PIPE)
    except (OneshotError, OSError) as e:  # a full disk, a read-only folder: said, not traced
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
