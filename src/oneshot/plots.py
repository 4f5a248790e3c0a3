"""Figures (PNG). matplotlib is imported lazily, inside each function, with the Agg backend."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["plot_training", "plot_nway", "plot_task", "show_task"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    from .io import atomic_write

    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")


def _read_metrics(metrics_path: str | os.PathLike) -> dict[str, list]:
    m: dict[str, list] = {k: [] for k in ("steps", "losses", "vs", "va", "lo", "hi", "ls", "la")}
    for line in Path(metrics_path).read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:  # a torn last line from a kill
            break
        if "loss" in r:
            m["steps"].append(r["step"])
            m["losses"].append(r["loss"])
        if "val" in r:
            m["vs"].append(r["step"])
            m["va"].append(r["val"]["accuracy"])
            m["lo"].append(r["val"]["ci95_low"])
            m["hi"].append(r["val"]["ci95_high"])
        if "lake" in r:
            m["ls"].append(r["step"])
            m["la"].append(r["lake"]["accuracy"])
    return m


def plot_training(metrics_path: str | os.PathLike, out: str | os.PathLike) -> None:
    """From a run's metrics.jsonl: the training loss (raw, faint, and its moving average) and
    the validation accuracy with its 95 % CI, plus Lake's accuracy where it was logged
    (``log_lake``: shown for the curve only, never used for selection)."""
    plt = _pyplot()
    m = _read_metrics(metrics_path)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    if m["losses"]:
        import numpy as np

        w = max(1, len(m["losses"]) // 50)
        c = np.concatenate([[0.0], np.cumsum(m["losses"])])
        i = np.arange(1, len(c))
        sm = (c[i] - c[np.maximum(0, i - w)]) / np.minimum(i, w)
        ax[0].plot(m["steps"], m["losses"], lw=0.5, alpha=0.3, label="loss")
        ax[0].plot(m["steps"], sm, label=f"moving average ({w} steps)")
        ax[0].legend(fontsize=8)
    ax[0].set(xlabel="step", ylabel="training loss", title="loss")
    if m["vs"]:
        ax[1].plot(m["vs"], m["va"], marker="o", ms=3, label="validation alphabets")
        ax[1].fill_between(m["vs"], m["lo"], m["hi"], alpha=0.2)
    if m["ls"]:
        ax[1].plot(m["ls"], m["la"], marker="s", ms=3, label="Lake's runs (logged, not used)")
    if m["vs"] or m["ls"]:
        ax[1].legend(fontsize=8)
    ax[1].set(xlabel="step", ylabel="accuracy (%)", title="one-shot accuracy (95 % CI)")
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)


def plot_nway(rows: list[dict], out: str | os.PathLike, title: str) -> None:
    """Accuracy against N, one line per scorer, chance (1/N) dashed; rows from evaluate()."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name in dict.fromkeys(r["scorer"] for r in rows):
        rs = sorted((r for r in rows if r["scorer"] == name), key=lambda r: r["ways"])
        n = [r["ways"] for r in rs]
        acc = [r["accuracy"] for r in rs]
        err = [[a - r["ci95_low"] for a, r in zip(acc, rs)],
               [r["ci95_high"] - a for a, r in zip(acc, rs)]]
        ax.errorbar(n, acc, yerr=err, marker="o", ms=3, capsize=2, label=name)
    ns = sorted({r["ways"] for r in rows})
    ax.plot(ns, [100.0 / n for n in ns], "k--", lw=1, label="chance (1/N)")
    ax.set(xlabel="N (ways)", ylabel="accuracy (%)", ylim=(0, 102), title=title)
    ax.set_xticks(ns)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)


def plot_task(query, support, answer: int, out: str | os.PathLike,
              scores: list[float] | None = None, title: str = "") -> None:
    """Query on the left, the support set as a square grid, the true match framed in green,
    each candidate's score (if given) under it, the best-scoring one framed in red if wrong.

    query: (H, W), support: (N, H, W), ink = 1.
    """
    import math

    plt = _pyplot()
    n = len(support)
    side = math.ceil(math.sqrt(n))
    fig = plt.figure(figsize=(2 + 1.6 * side, 1.7 * side + 0.5))
    gs = fig.add_gridspec(side, side + 1)
    axq = fig.add_subplot(gs[:, 0])
    axq.imshow(1 - query, cmap="gray", vmin=0, vmax=1)
    axq.set_title("query")
    axq.axis("off")
    best = max(range(n), key=lambda i: scores[i]) if scores else None
    for i in range(n):
        ax = fig.add_subplot(gs[i // side, 1 + i % side])
        ax.imshow(1 - support[i], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        colour = "green" if i == answer else "red" if i == best else None
        for sp in ax.spines.values():
            sp.set_visible(colour is not None)
            if colour:
                sp.set_color(colour)
                sp.set_linewidth(3)
        if scores:
            ax.set_xlabel(f"{scores[i]:.2f}", fontsize=8)
    fig.suptitle(title + ("  (green: true match; red: model's wrong pick)" if scores else
                          "  (green: true match)"), fontsize=9)
    _save(fig, out)
    plt.close(fig)


def _is_png(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def show_task(out: str | os.PathLike, ways: int = 9, split: str = "test",
              mode: str = "within-alphabet", seed: int = 0, model=None, data_dir=None,
              cache=None, device: str = "cpu") -> None:
    """Draw one seeded N-way task of ``split`` (a split name or a folder of classes) as a PNG;
    with ``model`` (a path, run folder or "default"), each candidate's pair logit is printed
    under it."""
    from .checkpoint import load_model
    from .datasets import is_split_name, load_data
    from .errors import UsageError
    from .evaluation.nway import score_tasks
    from .evaluation.scorers import EncoderScorer
    from .io import check_replaceable
    from .sampling import sample_tasks

    if Path(out).suffix.lower() != ".png":  # a folder or "t.jpg" got PNG bytes or a traceback
        raise UsageError(f"--out {out}: a .png file name expected")
    check_replaceable(out, _is_png, "a PNG image", UsageError)

    ds = load_data(split, data_dir, cache)
    tl = sample_tasks(ds, ways, 1, mode, seed=seed)
    scores = None
    if model is not None:
        net, _ = load_model(model)
        scores = score_tasks(EncoderScorer(net, device=device), ds.images, tl).scores[0].tolist()
    plot_task(ds.images[tl.query[0]], ds.images[tl.support[0]], int(tl.answer[0]), out,
              scores=scores, title=f"{ways}-way {mode} task, "
              + (f"{split} alphabets" if is_split_name(split) else ds.name)
              + (" (numbers: the model's pair logits)" if scores else ""))
