"""The summary and Markdown report of ``speed.py``: medians, ratios to Keras, fraction of the
measured peak. Not a script."""

from __future__ import annotations

from _common import markdown_table, median
from _speed_ours import Settings, koch_train_flops_per_pair

from oneshot.models.encoders import koch_layer_macs

KERAS = "keras (tutorial, fp32)"


def _value(metric: str, r: dict) -> float | None:
    """Throughput (per second) for train/embed, seconds for evaluations."""
    if "seconds" not in r:
        return None
    return r["count"] / r["seconds"] if metric.startswith(("train", "embed")) else r["seconds"]


def _ratio(metric: str, ours: dict, keras: dict) -> float | None:
    """> 1: ours is faster."""
    o, k = _value(metric, ours), _value(metric, keras)
    if not (o and k):
        return None
    return o / k if metric.startswith(("train", "embed")) else k / o


def summarise(raw: dict) -> dict:
    """Medians per system and metric; per system, the median of the per-repetition ratios to
    Keras; koch fp32 with the embedding cache against Keras the tutorial's way."""
    med: dict = {}
    ratio: dict = {}
    kr = raw.get(KERAS, {})
    for system, per in raw.items():
        for metric, rs in per.items():
            vals = [x for x in (_value(metric, r) for r in rs) if x is not None]
            if vals:
                med.setdefault(system, {})[metric] = median(vals)
            pr = [x for x in (_ratio(metric, o, k) for o, k in zip(rs, kr.get(metric, [])))
                  if x is not None]
            if pr and system != KERAS:
                ratio.setdefault(system, {})[metric] = median(pr)
    headline = None
    if "koch fp32" in raw and kr.get("eval_tutorial") and raw["koch fp32"].get("eval_cache"):
        headline = median(k["seconds"] / o["seconds"]
                          for o, k in zip(raw["koch fp32"]["eval_cache"], kr["eval_tutorial"]))
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
    """Lines of the fraction-of-peak section and its JSON: the Koch training step's GFLOP/s
    (FLOPs counted analytically) against the measured fp32 and bf16 matmul rates."""
    fpp, macs = koch_train_flops_per_pair(), sum(koch_layer_macs().values())
    lines = [
        f"Koch training step, FLOPs counted analytically: forward {2 * macs / 1e9:.3f} GFLOP "
        f"per image (2 x {macs:,} MACs of convs + fc), backward 2x forward less conv1's input "
        f"gradient: {fpp / 1e9:.2f} GFLOP per training pair.",
        f"Peak measured in this run: a {s.peak_size}^3 torch matmul, {s.threads} threads, best "
        f"of {peak['matmuls']}: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} "
        "GFLOP/s (a practical peak, not a theoretical one: a well-tuned convolution can "
        "exceed it).", ""]
    rows, out = [], {"flops_per_pair": fpp, "peak": peak, "rows": []}
    for system, med in summary["median"].items():
        if not (system.startswith("koch") or system == KERAS):
            continue
        for b in s.batches:
            rate = med.get(f"train_b{b}")
            if rate is None:
                continue
            g = rate * fpp / 1e9
            f32 = 100 * g / peak["fp32"]
            bf = 100 * g / peak["bf16"] if "bf16" in system else None
            out["rows"].append({"system": system, "batch": b, "gflops": g,
                                "pct_fp32_peak": f32, "pct_bf16_peak": bf})
            rows.append([system, b, f"{g:.1f}", f"{f32:.1f}",
                         "—" if bf is None else f"{bf:.1f}"])
    lines.append(markdown_table(["system", "batch", "GFLOP/s", "% of fp32 matmul",
                                 "% of bf16 matmul"], rows) if rows else
                 "(no Koch or Keras training step was measured in this run)")
    return lines, out


def _intro(result: dict, s: Settings) -> list[str]:
    m, k = result["machine"], result["keras"]
    reps = f"{s.reps} repetition{'s' if s.reps != 1 else ''}"
    out = [f"# oneshot vs the tutorial's Keras: speed ({reps}, median; {s.threads} threads)", "",
           f"CPU: {m['cpu'].get('model name', '?')} (family {m['cpu'].get('cpu family', '?')}, "
           f"model {m['cpu'].get('model', '?')}), {m['cpu']['cpus']} CPUs; torch {m['torch']}; "
           + (f"TensorFlow {k['versions']['tensorflow']}, Keras {k['versions']['keras']}."
              if k else "no Keras."), result["keras_note"] + "."]
    if result["quick"]:
        out.append("**--quick smoke run: tiny repetitions; not benchmark numbers.**")
    return out


def render(result: dict, s: Settings) -> str:
    summ, h, cols = result["summary"], headers(s), s.metrics
    systems = [x for x in [KERAS, *result["variants"]] if x in summ["median"]]
    out = _intro(result, s) + ["", markdown_table(
        ["system", *(h[c] for c in cols)],
        [[x, *(_fmt(summ["median"][x].get(c), c) for c in cols)] for x in systems])]
    vs = [c for c in cols if c != "lake"]
    if summ["ratio_vs_keras"]:
        out += ["", "Speed relative to Keras (median of per-repetition ratios; > 1 = faster):",
                "", markdown_table(["system", *(h[c] for c in vs)], [
                    [x, *("—" if summ["ratio_vs_keras"][x].get(c) is None
                          else f"{summ['ratio_vs_keras'][x][c]:.2f}x" for c in vs)]
                    for x in systems if x in summ["ratio_vs_keras"]])]
    if summ["cache_vs_keras_tutorial"]:
        out += ["", f"Our way vs the tutorial's way: koch fp32 with the embedding cache evaluates "
                f"the same {s.tasks} tasks {summ['cache_vs_keras_tutorial']:.1f}x faster than "
                "Keras with one predict per task."]
    out += ["", "## Fraction of peak (Koch training step)", "", *result["peak_lines"]]
    return "\n".join(out) + "\n"
