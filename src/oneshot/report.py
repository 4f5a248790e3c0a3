"""Reports of evaluation results: Markdown tables, CSV, JSON and figures (written atomically),
and :func:`evaluate_and_report`, what ``oneshot evaluate`` does."""

from __future__ import annotations

import csv
import io
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.lake import load_lake_runs
from .errors import UsageError
from .evaluation.baselines import ModifiedHausdorffScorer
from .evaluation.lake import PUBLISHED, LakeResult, lake_benchmark
from .evaluation.runner import EvalSettings, check_fits, curve_for, default_scorers
from .io import atomic_write_bytes, atomic_write_json
from .locking import FileLock

__all__ = ["nway_markdown", "lake_markdown", "write_report", "write_figures",
           "evaluate_and_report", "EvaluationReport"]


def _cell(r: dict) -> str:
    return f"{r['accuracy']:.1f} [{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"


def _what(split: str) -> str:
    """How a table names its data: Omniglot's splits are alphabets, anything else classes."""
    from .datasets import is_split_name

    return f"{split} alphabets" if is_split_name(split) else f"{split} (your classes)"


def nway_markdown(rows: list[dict]) -> str:
    """One table per (split, mode): N down, scorers across, accuracy % [95 % CI]."""
    out = []
    for split, mode in dict.fromkeys((r["split"], r["mode"]) for r in rows):
        rs = [r for r in rows if r["split"] == split and r["mode"] == mode]
        scorers = list(dict.fromkeys(r["scorer"] for r in rs))
        ways = sorted({r["ways"] for r in rs})
        cell = {(r["scorer"], r["ways"]): r for r in rs}
        n = rs[0]["tasks"]
        out.append(f"### {_what(split)}, {mode} ({n} tasks per point, accuracy % [95 % CI])\n")
        out.append("| N | " + " | ".join(scorers) + " |")
        out.append("| ---: | " + " | ".join("---:" for _ in scorers) + " |")
        for w in ways:
            out.append(f"| {w} | " + " | ".join(_cell(cell[(s, w)]) for s in scorers) + " |")
        files = sorted({(r["task_file"], r["task_sha256"][:16]) for r in rs})
        out.append("\nTask files (SHA-256 prefix): " + ", ".join(f"`{f}` {h}" for f, h in files))
        out.append("")
    return "\n".join(out)


def lake_markdown(results: list[LakeResult]) -> str:
    """Lake's 20 runs: our scorers beside the published figures."""
    out = ["### Lake's 20-way within-alphabet benchmark (20 runs, 400 trials)\n",
           "| system | accuracy % | 95 % CI | error % | source |",
           "| --- | ---: | --- | ---: | --- |"]
    for r in results:
        lo, hi = r.accuracy.interval
        out.append(f"| {r.name} | {r.accuracy.value:.2f} | [{lo:.1f}, {hi:.1f}] | "
                   f"{100 - r.accuracy.value:.2f} | measured here |")
    for name, acc in PUBLISHED.items():
        out.append(f"| {name} | {acc:.1f} | | {100 - acc:.1f} | published |")
    return "\n".join(out) + "\n"


def write_report(out: str | os.PathLike, rows: list[dict], lake: list[LakeResult],
                 header: str = "") -> Path:
    """Write results.md, results.csv and results.json into ``out``; returns results.md."""
    out = Path(out)
    md = [header] if header else []
    if lake:
        md.append(lake_markdown(lake))
    if rows:
        md.append(nway_markdown(rows))
    atomic_write_bytes(out / "results.md", "\n".join(md).encode())
    if rows:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(out / "results.csv", buf.getvalue().encode())
    atomic_write_json(out / "results.json", {"nway": rows, "lake": [r.to_dict() for r in lake]})
    return out / "results.md"


def write_figures(out: str | os.PathLike, rows: list[dict]) -> list[Path]:
    """One N-way figure per (split, mode) in ``rows``: ``nway-<split>-<mode>.png``."""
    from .plots import plot_nway

    paths = []
    for split, mode in dict.fromkeys((r["split"], r["mode"]) for r in rows):
        sel = [r for r in rows if r["split"] == split and r["mode"] == mode]
        path = Path(out) / f"nway-{split}-{mode}.png"
        which = {"background": " (the training alphabets)",
                 "test": " (Lake's 10 test alphabets)"}.get(split, "")
        plot_nway(sel, path, f"{_what(split)}{which}, {mode}\n{sel[0]['tasks']} tasks per "
                  "point, each N its own saved tasks")
        paths.append(path)
    return paths


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`evaluate_and_report` wrote: rows, Lake results, the files."""

    rows: list[dict]
    lake: list[LakeResult]
    markdown: Path
    files: list[Path]


def evaluate_and_report(out: str | os.PathLike, settings: EvalSettings, model=None,
                        model_label: str | None = None, baselines: bool = True,
                        data_dir=None, cache=None, device: str = "cpu", progress: bool = False,
                        command: str | None = None, datasets: dict | None = None
                        ) -> EvaluationReport:
    """Score the baselines (``baselines``) and ``model`` (a path, run folder, "default", a list
    of these, or None for none) on Lake's runs (``settings.lake``) and the N-way curves of
    ``settings`` (saved tasks under ``out/tasks``); ``datasets``: {split: Dataset} for splits
    not loaded by name (a folder's part). The report (results.md, .csv, .json, figures) is
    rewritten after each part, so an interrupted run keeps what it finished; a line per part
    says the time spent and an estimate of what remains (``progress_line``)."""
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out}: is a file; the report needs a folder (made if absent)")
    for ds in (datasets or {}).values():
        check_fits(ds, settings.modes, settings.ways)
    models = [] if model is None else list(model) if isinstance(model, (list, tuple)) else [model]
    scorers, header = _scorers_and_header(settings, models, model_label, baselines, device,
                                          command, datasets)
    parts: list[tuple] = [("lake",)] if settings.lake else []
    parts += [("curve", split, mode) for split in settings.splits for mode in settings.modes]
    rows, lake = [], []  # the curves' rows; a LakeResult per scorer
    t0, md, figures, caches = time.perf_counter(), Path(out) / "results.md", [], {}
    # one evaluation at a time per folder: two would mix their files (a second is refused)
    with FileLock(Path(out) / ".lock", timeout=0, what=f"report folder {out}", tidy=True,
                  remove=True):
        stale = _earlier_figures(Path(out))  # refuses a folder with files not of a report
        for k, part in enumerate(parts):
            t = time.perf_counter()
            if part[0] == "lake":
                runs = load_lake_runs(data_dir, cache)
                lake = [lake_benchmark(sc, runs) for sc in scorers]
            else:
                new = curve_for(scorers, part[1], part[2], settings, Path(out) / "tasks",
                                data_dir, cache, datasets, caches)
                rows += new
            todo = [] if k + 1 == len(parts) else [
                f"**Incomplete: {k + 1} of {len(parts)} parts so far** (the run was stopped, or "
                "is still running).\n"]
            while stale:  # the earlier report's figures: kept until now
                stale.pop().unlink(missing_ok=True)
            md = write_report(out, rows, lake, "\n".join(header + todo))
            if part[0] == "curve" and new:  # this curve's figure only, after the report
                figures += write_figures(out, new)  # that makes them an earlier report's
            progress_line(k + 1, len(parts), " ".join(part), time.perf_counter() - t,
                          time.perf_counter() - t0)
    return EvaluationReport(rows, lake, md, [md] + figures)


REPORT_FILES = ("results.md", "results.csv", "results.json")


def _ours(f: Path) -> bool:
    """Whether ``f`` (one of ``REPORT_FILES``) was written by :func:`write_report`."""
    if not f.is_file() or f.is_symlink():
        return False
    try:
        with open(f, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    return head.startswith({".md": b"# oneshot evaluate", ".csv": b"split,mode,ways,",
                            ".json": b'{\n  "lake": '}[f.suffix])


def _earlier_figures(out: Path) -> list[Path]:
    """An earlier report's N-way figures in ``out`` (removed as the new report's results.*
    first replace its own). UsageError if a results file there is not a report's (the user's
    results.md), or figures stand beside no report of ours: they would be overwritten."""
    if not out.is_dir():
        return []
    files = [out / n for n in REPORT_FILES if (out / n).exists() or (out / n).is_symlink()]
    figures = sorted(out.glob("nway-*.png"))
    strange = [f for f in files if not _ours(f)] or (figures if not files else [])
    if strange:
        raise UsageError(f"--out {out}: {strange[0].name} is there and is not from an earlier "
                         "`oneshot evaluate` report; refusing to overwrite it (move it, or "
                         "choose another --out)")
    return figures


def progress_line(done: int, total: int, what: str, seconds: float, elapsed: float) -> None:
    """One line on stderr per finished part (visible whether or not stderr is a terminal)."""
    left = elapsed / done * (total - done)
    print(f"[{done}/{total}] {what}: {seconds:.1f} s (elapsed {elapsed:.0f} s, about "
          f"{left:.0f} s left)", file=sys.stderr, flush=True)


def _scorers_and_header(settings, models, model_label, baselines, device, command, datasets):
    """The scorers (baselines, then the models) and the report's header lines."""
    scorers = default_scorers(settings.seed) if baselines else []
    header = ["# oneshot evaluate\n"]
    if command:
        header.append(f"Command: `{command}`\n")
    mine, lines = _model_scorers(models, model_label, device, settings.precision)
    scorers += mine
    header += lines + _warnings(models, datasets)
    if not scorers:
        raise UsageError("nothing to evaluate: no model and no baselines")
    if settings.lake and not settings.mhd_nway and \
            any(isinstance(s, ModifiedHausdorffScorer) for s in scorers):
        header.append("Modified Hausdorff is scored on Lake's runs only (`--full` adds it to "
                      "every N-way point).\n")
    header.append("Each N has its own saved tasks (seed + N).\n")
    if set(settings.splits) & {"test", "background"}:
        header.append("The background split is the 30 training alphabets; the test split the "
                      "10 alphabets of Lake's runs.\n")
    return scorers, header


def _model_scorers(models: list, label: str | None, device: str,
                   precision: str = "auto") -> tuple[list, list[str]]:
    """An EncoderScorer per model (a path, run folder or "default"), with distinct names and
    the numerics of ``precision`` (``oneshot.embedding.resolve_precision``; bf16 shows in the
    name, so in every table and file), and the report's header lines naming them."""
    from .checkpoint import load_model, resolve_model_path
    from .embedding import resolve_precision
    from .evaluation.scorers import EncoderScorer

    scorers, header = [], []
    for m in models:
        path = resolve_model_path(m)
        net, _ = load_model(path)
        short = path.name if path.parent.name in ("", ".") else f"{path.parent.name}/{path.name}"
        amp = resolve_precision(precision, net, device)
        name = (label if label and len(models) == 1
                else "the shipped model" if str(m) == "default" else f"siamese ({short})")
        suffix = " [bf16]" if amp else ""
        name += suffix
        while name in {s.name for s in scorers}:
            name += "'"
        scorers.append(EncoderScorer(net, name=name, device=device, amp=amp))
        line = (f"Model: `{path}`" if name == f"siamese ({short}){suffix}"
                else f"Model: `{path.name}` ({name})")
        header.append(line + (" (evaluated under bf16 autocast)\n" if amp else "\n"))
    return scorers, header


def seen_images(model_path: Path, ds) -> tuple[int, str]:
    """(how many images of ``ds`` the run of ``model_path`` trained or selected on, how that was
    found), from the run folder's ``data_split.json``: by the images' fingerprints (the same
    pictures under any names) and by class name (only so for runs that saved none); (0, "")
    when the model has no such file. A file that cannot be read gives (-1, its error)."""
    from .data.dataset import DataError
    from .data.partition import ClassSplit, fingerprints

    split_file = model_path.parent / "data_split.json"
    if not split_file.is_file():
        return 0, ""
    try:
        split = ClassSplit.load(split_file)
    except DataError as e:
        return -1, str(e)
    names = set(split.parts["train"]) | set(split.parts["validation"])
    mine = [c.split("/")[0] if split.by == "groups" else c for c in ds.characters]
    by_name = np.isin(ds.labels, [k for k, c in enumerate(mine) if c in names])
    if not split.seen_images:  # a run made before fingerprints were saved
        return int(by_name.sum()), "by class name"
    known = set(split.seen_images)  # the same pictures under any name, or the same names
    same = np.array([f in known for f in fingerprints(ds.images)], bool)
    return int((same | by_name).sum()), "the same pictures or classes"


def _warnings(models: list, datasets: dict | None) -> list[str]:
    from .checkpoint import resolve_model_path

    out = []
    for m in models:
        path = resolve_model_path(m)
        for ds in (datasets or {}).values():
            n, how = seen_images(path, ds)
            if n < 0:
                out.append(f"**Warning**: cannot tell what `{path}` was trained on ({how}).\n")
            elif n:
                split = shlex.quote(str(path.parent / "data_split.json"))
                out.append(f"**Warning**: `{path}` was trained or selected on {n} of the "
                           f"{len(ds.images)} images of {ds.name} ({how}, going by its run's "
                           "data_split.json): its scores here are not one-shot on new "
                           "classes; evaluate the test part of its own split (`--part test "
                           f"--data-split {split}`), and if this is it, the folder holds the "
                           "same pictures in classes of different parts: remove them.\n")
    return out
