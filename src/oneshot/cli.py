"""``oneshot`` command line: thin subcommands over the library's functions.

    oneshot data                      decode/verify the archives, print counts and digests
    oneshot evaluate [--model M]      N-way figure + Lake benchmark for baselines (and a model)
    oneshot show-task --ways 9        draw a task as a PNG grid
    oneshot train --preset fast --out runs/NAME
    oneshot export RUN --out model.pt small model file from a run's best checkpoint
    oneshot ensemble RUN RUN --out model.pt   one model averaging several runs' models
    oneshot verify A B                probability that two images show the same class
    oneshot enrol --gallery G.npz DIR one folder per class
    oneshot classify --gallery G.npz IMAGES...   (or --support DIR)
    oneshot demo [--model M] [--port 8000]       draw characters in the browser
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

log = logging.getLogger("oneshot")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the Omniglot zips (default: $ONESHOT_DATA, "
                   "the cache, then download)")
    p.add_argument("--cache", help="cache folder (default: $ONESHOT_CACHE or ~/.cache/oneshot)")


def _add_model_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--model", required=required,
                   help="model file, checkpoint, or run folder (default: the shipped model)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def cmd_data(args) -> int:
    from .data.omniglot import cache_dir
    from .data.splits import load_split

    print(f"cache: {cache_dir(args.cache)}")
    for name in args.split:
        t0 = time.perf_counter()
        ds = load_split(name, args.data_dir, args.cache, progress=_progress(args))
        c = ds.counts()
        print(f"{name:11s} {c['alphabets']:3d} alphabets {c['characters']:5d} characters "
              f"{c['images']:6d} images  digest {ds.digest[:16]}  "
              f"{time.perf_counter() - t0:.2f} s")
    if args.lake:
        from .data.lake import load_lake_runs

        runs = load_lake_runs(args.data_dir)
        print(f"lake runs   {len(runs)} runs, {sum(len(r.test_files) for r in runs)} trials")
    return 0


def _load_scorer(args, name: str | None = None):
    from .checkpoint import load_model
    from .evaluation.scorers import EncoderScorer
    from .inference import resolve_model_path

    path = resolve_model_path(args.model)
    model, _ = load_model(path)
    return EncoderScorer(model.to(args.device), name=name or f"siamese ({path.name})",
                         device=args.device), path


def cmd_evaluate(args) -> int:
    from .evaluation.runner import EvalSettings, default_scorers, evaluate
    from .inference import default_model_path
    from .plots import plot_nway
    from .report import write_report

    scorers = [] if args.no_baselines else default_scorers(args.seed)
    header = [f"# oneshot evaluate\n\nCommand: `oneshot {' '.join(sys.argv[1:])}`\n"]
    if not args.baselines_only and (args.model or default_model_path()):
        sc, path = _load_scorer(args)
        scorers.append(sc)
        header.append(f"Model: `{args.model}`\n" if args.model else
                      "Model: the shipped model (`oneshot/weights/default.pt`)\n")
    if not scorers:
        raise SystemExit("nothing to evaluate: no model and --no-baselines")
    settings = EvalSettings(splits=tuple(args.split), modes=tuple(args.mode),
                            ways=tuple(args.ways), tasks=args.tasks, seed=args.seed,
                            lake=not args.no_lake)
    out = Path(args.out)
    rows, lake = evaluate(scorers, settings, out / "tasks", args.data_dir, args.cache,
                          progress=_progress(args))
    md = write_report(out, rows, lake, "\n".join(header))
    for split in settings.splits:
        for mode in settings.modes:
            sel = [r for r in rows if r["split"] == split and r["mode"] == mode]
            if sel:
                plot_nway(sel, out / f"nway-{split}-{mode}.png",
                          f"{split} alphabets, {mode}, {settings.tasks} tasks per point")
    print(md.read_text())
    print(f"written: {out}/results.md, results.csv, results.json, nway-*.png")
    return 0


def cmd_show_task(args) -> int:
    from .data.splits import load_split
    from .evaluation.nway import score_tasks
    from .plots import plot_task
    from .sampling import sample_tasks

    ds = load_split(args.split, args.data_dir, args.cache)
    tl = sample_tasks(ds, args.ways, 1, args.mode, seed=args.seed)
    scores = None
    if args.model:
        sc, _ = _load_scorer(args)
        scores = score_tasks(sc, ds.images, tl).scores[0].tolist()
    plot_task(ds.images[tl.query[0]], ds.images[tl.support[0]], int(tl.answer[0]), args.out,
              scores=scores, title=f"{args.ways}-way {args.mode} task, {args.split} alphabets")
    print(f"written: {args.out}")
    return 0


def cmd_train(args) -> int:
    from .config import apply_overrides, preset
    from .train import train

    overrides = list(args.set or [])
    for key in ("steps", "device", "seed"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    cfg = apply_overrides(preset(args.preset), overrides)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    r = train(cfg, args.out, args.data_dir, args.cache, resume=args.resume,
              progress=not args.quiet, command=sys.argv)
    print(f"trained {r.steps} steps in {r.train_seconds / 60:.1f} min; best validation "
          f"{r.best_val:.2f} % at step {r.best_step}; run folder {r.out}")
    return 0


def cmd_export(args) -> int:
    from .checkpoint import export_model, load_model
    from .inference import resolve_model_path

    model, record = load_model(resolve_model_path(args.run))
    export_model(model, args.out, record, half=args.half)
    print(f"written: {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_ensemble(args) -> int:
    from .checkpoint import export_model, load_model
    from .inference import resolve_model_path
    from .models import ensemble

    loaded = [load_model(resolve_model_path(r)) for r in args.runs]
    net = ensemble([m for m, _ in loaded])
    export_model(net, args.out, {"members": [str(r) for r in args.runs],
                                 "member_records": [rec for _, rec in loaded]}, half=args.half)
    print(f"written: {args.out} ({len(loaded)} members, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0


def _classifier(args):
    from .inference import OneShotClassifier

    return OneShotClassifier.load(args.model, device=args.device, crop=args.crop)


def cmd_verify(args) -> int:
    p = _classifier(args).verify(args.image_a, args.image_b)
    same = p >= args.threshold
    if args.json:
        print(json.dumps({"a": args.image_a, "b": args.image_b, "probability": p, "same": same}))
    else:
        print(f"{p:.4f}  {'same' if same else 'different'} (threshold {args.threshold})")
    return 0


def cmd_enrol(args) -> int:
    from .data.folder import list_folder
    from .inference import GalleryError

    clf = _classifier(args)
    gallery = Path(args.gallery)
    if gallery.exists() and not args.replace:
        try:
            clf.load_gallery(gallery)
        except GalleryError as e:
            raise SystemExit(f"error: {e} (use --replace to start a new gallery)") from e
    items = list_folder(args.folder)
    clf.enrol([str(p) for p, _ in items], [c for _, c in items])
    clf.save(gallery)
    msg = {"gallery": str(gallery), "classes": len(clf.classes), "images": len(clf)}
    print(json.dumps(msg) if args.json else
          f"gallery {gallery}: {msg['classes']} classes, {msg['images']} images")
    return 0


def cmd_classify(args) -> int:
    from .data.folder import list_folder

    clf = _classifier(args)
    if args.gallery:
        clf.load_gallery(args.gallery)
    else:
        items = list_folder(args.support)
        clf.enrol([str(p) for p, _ in items], [c for _, c in items])
    preds = clf.predict(args.images, top_k=args.top_k, threshold=args.threshold)
    for img, p in zip(args.images, preds):
        if args.json:
            print(json.dumps({"image": img, "label": p.label, "probability": p.probability,
                              "top": [{"label": lab, "probability": s} for lab, s in p.top]}))
        else:
            alts = ", ".join(f"{lab} {s:.3f}" for lab, s in p.top)
            print(f"{img}: {p.label}  ({alts})")
    return 0


def cmd_demo(args) -> int:
    try:
        from .demo import serve
    except ImportError as e:
        raise SystemExit(f"error: {e}") from e
    serve(args.host, args.port, args.model, args.data_dir, args.cache)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="oneshot", description="One-shot image recognition with "
                                 "Siamese networks on Omniglot and on your own images.")
    ap.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="find, verify, decode and cache Omniglot; print counts")
    _add_data_args(p)
    p.add_argument("--split", nargs="+", default=["background", "evaluation"],
                   help="splits to load (default: background evaluation)")
    p.add_argument("--lake", action="store_true", help="also read Lake's 20 runs")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("evaluate", help="N-way one-shot figure and Lake's benchmark")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--baselines-only", action="store_true", help="ignore the shipped model")
    p.add_argument("--no-baselines", action="store_true", help="score only the model")
    p.add_argument("--split", nargs="+", default=["test", "background"])
    p.add_argument("--mode", nargs="+", default=["within-alphabet", "unstructured"],
                   choices=["within-alphabet", "unstructured"])
    p.add_argument("--ways", nargs="+", type=int, default=list(range(1, 20, 2)))
    p.add_argument("--tasks", type=int, default=400, help="tasks per point (default 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-lake", action="store_true", help="skip Lake's benchmark")
    p.add_argument("--out", default="results", help="output folder (default: results)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("show-task", help="draw an N-way task (query and support) as a PNG")
    _add_data_args(p)
    p.add_argument("--model", help="also print each candidate's score")
    p.add_argument("--device", default="cpu")
    p.add_argument("--ways", type=int, default=9, choices=[4, 9, 16, 25])
    p.add_argument("--split", default="test")
    p.add_argument("--mode", default="within-alphabet",
                   choices=["within-alphabet", "unstructured"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="task.png")
    p.set_defaults(func=cmd_show_task)

    p = sub.add_parser("train", help="train a Siamese network from a preset")
    _add_data_args(p)
    p.add_argument("--preset", default="fast", help="tutorial, koch or fast (default: fast)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--set", nargs="*", metavar="FIELD=VALUE",
                   help="override config fields, e.g. --set lr=3e-4 amp=false")
    p.add_argument("--steps", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly")
    p.add_argument("--print-config", action="store_true", help="print the resolved config")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write a small model file from a run or checkpoint")
    p.add_argument("run", help="run folder or checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("ensemble", help="one model file averaging several Euclidean-head models")
    p.add_argument("runs", nargs="+", help="run folders, checkpoints or model files")
    p.add_argument("--out", required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.set_defaults(func=cmd_ensemble)

    def recog(p):
        _add_model_args(p)
        p.add_argument("--crop", action="store_true", help="crop images to their ink first")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("verify", help="probability that two images show the same class")
    recog(p)
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--threshold", type=float, default=0.5)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("enrol", help="add a folder of classes (DIR/<class>/<image>) to a gallery")
    recog(p)
    p.add_argument("--gallery", required=True)
    p.add_argument("--replace", action="store_true", help="start a new gallery")
    p.add_argument("folder")
    p.set_defaults(func=cmd_enrol)

    p = sub.add_parser("classify", help="classify images against a gallery or a support folder")
    recog(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gallery")
    g.add_argument("--support", help="folder DIR/<class>/<image>, enrolled on the fly")
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--threshold", type=float, help="below this probability: unknown")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("demo", help="browser demo: draw a character, see its one-shot matches",
                       description="Serve the browser demo (docs/demo.md). It uses the test "
                       "alphabets and never downloads them: run 'oneshot data' once first.")
    _add_data_args(p)
    p.add_argument("--model", help="model file, checkpoint, or run folder "
                   "(default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on "
                   "(default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from .checkpoint import CheckpointError
    from .data.omniglot import DataError
    from .inference import GalleryError
    from .preprocess import ImageError

    try:
        return args.func(args)
    except (DataError, CheckpointError, GalleryError, ImageError, FileNotFoundError,
            FileExistsError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
