"""The ``oneshot`` argument parser: every subcommand, its options and their defaults.

Imports nothing heavy. Global options (``--quiet``, ``-v``, ``--plugin``) are accepted before
or after the subcommand; every option's help states its default.
"""

from __future__ import annotations

import argparse

__all__ = ["build_parser"]

WAYS_DEFAULT = list(range(1, 20, 2))


class HELP(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help unless it has no default or says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default in (None, False, [], argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number expected") from None


def _ranged(low: int, high: int | None, want: str):
    """An argparse type: a whole number in [low, high] (no upper bound for None)."""
    def parse(text: str) -> int:
        n = _int(text)
        if n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"{n}: {want} expected")
        return n
    return parse


_count = _ranged(1, None, "at least 1")
_seed = _ranged(0, 2**32 - 1, "a seed in [0, 2**32)")
_port = _ranged(1, 65535, "a port 1-65535")


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """On the top parser with real defaults; on subparsers with SUPPRESS, so that a value given
    after the subcommand wins and one given before is not reset."""
    d = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only",
                   **({"default": False} if top else d))
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging",
                   **({"default": False} if top else d))
    p.add_argument("--plugin", action="append", metavar="MODULE|FILE.py",
                   help="import a plugin that registers encoders, heads or objectives "
                   "(repeatable; also $ONESHOT_PLUGINS and the 'oneshot.plugins' entry points)",
                   **({"default": []} if top else d))


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the Omniglot zips and all_runs.zip "
                   "(default: $ONESHOT_DATA, then the cache, then a download, which gives up "
                   "after $ONESHOT_DOWNLOAD_TIMEOUT seconds, 600 by default)")
    p.add_argument("--cache", help="cache folder (default: $ONESHOT_CACHE or ~/.cache/oneshot)")


def _model_args(p: argparse.ArgumentParser, what: str = "model file, checkpoint or run "
                "folder (default: the shipped model)", many: bool = False) -> None:
    p.add_argument("--model", help=what, **({"nargs": "+"} if many else {}))
    p.add_argument("--device", default="auto",
                   help="auto (cuda when available, else cpu), cpu, cuda or cuda:N")


def _folder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", help="your classes instead of Omniglot: "
                   "DIR/<class>/<image> or DIR/<group>/<class>/<image> (--split and Lake's "
                   "benchmark then do not apply)")
    p.add_argument("--part", default="all", choices=["all", "train", "validation", "test"],
                   help="with --data: which classes of its class split (the one 'oneshot train "
                   "--data DIR' draws; test: the classes a model trained there never saw)")
    p.add_argument("--data-split", metavar="FILE",
                   help="with --data: a saved class split (a run's data_split.json)")
    p.add_argument("--split-seed", type=_seed, help="with --data and no --data-split: the "
                   "seed that draws the split (default: 0, as train's split_seed)")


def _sub(sub, name: str, func: str, help: str, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=kw.pop("description", help),
                       formatter_class=HELP, **kw)
    _global_options(p, top=False)
    p.set_defaults(func_name=func)
    return p


def _add_data_and_evaluation(sub) -> None:
    p = _sub(sub, "data", "cmd_data", "find, verify, decode and cache Omniglot; print counts")
    _data_args(p)
    p.add_argument("--split", nargs="+", help="splits to load: Omniglot split names, or "
                   "folders of your classes (DIR/<class>/<image> or DIR/<group>/<class>/<image>)"
                   " (default: background evaluation)")
    p.add_argument("--lake", action="store_true", help="also read Lake's 20 runs")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = _sub(sub, "evaluate", "cmd_evaluate", "N-way one-shot figure and Lake's benchmark",
             description="Lake's benchmark and the tutorial's N-way figure on the test "
             "alphabets for the shipped model (or --model) beside the baselines: about a "
             "minute on a 2-core CPU. --full adds the background alphabets and modified "
             "Hausdorff on every N-way point: a few minutes. The report in --out is "
             "rewritten after each part, with a progress line per part on stderr.")
    _data_args(p)
    _model_args(p, "model files, checkpoints or run folders, scored side by side ('default': "
                "the shipped model) (default: the shipped model)", many=True)
    _folder_args(p)
    p.add_argument("--full", action="store_true", help="test and background alphabets, "
                   "modified Hausdorff on every point (a few minutes on 2 cores)")
    p.add_argument("--baselines-only", action="store_true", help="ignore the shipped model")
    p.add_argument("--no-baselines", action="store_true", help="score only the model")
    p.add_argument("--split", nargs="+", help="splits (default: test; with --full: test "
                   "background)")
    p.add_argument("--mode", nargs="+", choices=["within-alphabet", "unstructured"],
                   help="task modes (default: both; a folder without groups: unstructured)")
    p.add_argument("--ways", nargs="+", type=_count, default=WAYS_DEFAULT,
                   help="values of N (on a folder, those larger than its classes allow are "
                   "left out)")
    p.add_argument("--tasks", type=_count, default=400, help="tasks per point")
    p.add_argument("--seed", type=_seed, default=0, help="task seed (N is added per point)")
    p.add_argument("--no-lake", action="store_true", help="skip Lake's benchmark")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="the models' numerics: auto is bf16 autocast only for encoders "
                   "measured to be as accurate in it (the koch encoder), on hardware with "
                   "bf16 (AVX-512 BF16, AMX or CUDA) (default: auto)")
    p.add_argument("--out", default="results", help="report folder (an earlier report there "
                   "is replaced; its saved task files are reused)")

    p = _sub(sub, "show-task", "cmd_show_task", "draw an N-way task (query and support) as a PNG")
    _data_args(p)
    _model_args(p, "model whose pair logits are printed under the candidates "
                "(default: the shipped model)")
    p.add_argument("--no-model", action="store_true", help="draw the task without scores")
    p.add_argument("--ways", type=int, default=9, choices=[4, 9, 16, 25], help="N")
    p.add_argument("--split", help="split name, or a folder of classes (default: test)")
    p.add_argument("--mode", default="within-alphabet",
                   choices=["within-alphabet", "unstructured"], help="task mode")
    p.add_argument("--seed", type=_seed, default=0, help="task seed")
    p.add_argument("--out", default="task.png", help="PNG to write")


def _add_training(sub) -> None:
    p = _sub(sub, "train", "cmd_train", "train a Siamese network from a preset")
    _data_args(p)
    p.add_argument("--preset", default="fast", help="tutorial, koch, fast, shipped (the "
                   "shipped model: two fast members side by side); for your own folder: "
                   "finetune or small")
    p.add_argument("--config", metavar="FILE.json", help="start from a saved config (a run's "
                   "config.json or a plain config object) instead of a preset")
    p.add_argument("--data", metavar="DIR", help="train on your classes: DIR/<class>/<image> "
                   "or DIR/<group>/<class>/<image>, split into train, validation and test "
                   "(saved as OUT/data_split.json) (default: the preset's, Omniglot)")
    p.add_argument("--data-split", metavar="FILE", help="with --data: use this class split "
                   "(e.g. another run's data_split.json) instead of drawing one")
    p.add_argument("--init", metavar="MODEL", help="start from these weights: 'default' (the "
                   "shipped model), a model file or a run folder; the network is that model's "
                   "(default: the preset's)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--set", nargs="*", action="extend", metavar="FIELD=VALUE",
                   help="override config fields, e.g. --set lr=3e-4 amp=false")
    p.add_argument("--steps", type=_count, help="the config's steps (default: the preset's)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the preset's, auto)")
    p.add_argument("--seed", type=_seed, help="the config's seed (default: the preset's, 0)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in a folder that is not empty (replaces a run's files)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")

    p = _sub(sub, "export", "cmd_export", "write a small model file (PyTorch or ONNX) from a "
             "run, checkpoint or model file")
    _data_args(p)
    p.add_argument("run", help="run folder, checkpoint or model file ('default': the shipped "
                   "model)")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--format", choices=["pt", "onnx"],
                   help="pt (PyTorch, weights_only) or onnx (the encoder as an ONNX graph, for "
                   "ONNX Runtime; needs the onnx extra) (default: onnx when --out ends in "
                   ".onnx, else pt)")
    p.add_argument("--half", action="store_true", help="pt: store weights as float16 (not "
                   "for onnx: use --int8)")
    p.add_argument("--int8", metavar="OUT.onnx", help="onnx: also write an int8 quantisation, "
                   "calibrated on 512 background-alphabet images")
    p.add_argument("--opset", type=int, default=20, help="onnx: opset version")

    p = _sub(sub, "ensemble", "cmd_ensemble",
             "one model file averaging several Euclidean-head models")
    p.add_argument("runs", nargs="+", help="run folders, checkpoints or model files")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.add_argument("--views", metavar="SET", help="test-time views in the model: each image "
                   "embedded as the mean of a few rotated and scaled copies (sets: none, rot, "
                   "rot-scale; default: none added)")


def _add_recognition(sub) -> None:
    def recog(p):
        _model_args(p)
        p.add_argument("--crop", action="store_true", help="crop images to their ink first")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p = _sub(sub, "verify", "cmd_verify", "probability that two images show the same class")
    recog(p)
    p.add_argument("image_a", nargs="?", help="first image")
    p.add_argument("image_b", nargs="?", help="second image")
    p.add_argument("--pairs", metavar="FILE", help="verify many pairs: a line per pair, two "
                   "paths separated by a tab (or spaces); '-' reads standard input. A pair "
                   "whose image cannot be read is reported and the others go on (exit 2)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="probability at or above which the pair is 'same' (0.5: the "
                   "probability is trained to be calibrated on pairs; classify's higher open-set "
                   "threshold asks another question: is the best of many matches good enough)")

    p = _sub(sub, "enrol", "cmd_enrol",
             "add a folder of classes to a gallery (DIR/<group>/<class>: <group>/<class>)")
    recog(p)
    p.add_argument("--gallery", required=True, help="gallery file (.npz) to create or extend")
    p.add_argument("--replace", action="store_true", help="start a new gallery")
    p.add_argument("--existing", choices=["skip", "replace", "append"],
                   help="a class the gallery already has: keep it as it is, replace its images, "
                   "or add these (none twice) (default: refuse, naming the classes)")
    p.add_argument("--per-class", type=_count, metavar="K",
                   help="enrol at most K images of each class (default: all)")
    p.add_argument("--pick", choices=["first", "random"], default="first",
                   help="with --per-class: the first K by file name, or K at random")
    p.add_argument("--seed", type=_seed, default=0, help="with --pick random")
    p.add_argument("folder", help="DIR/<class>/<image> or DIR/<group>/<class>/<image>")

    p = _sub(sub, "classify", "cmd_classify",
             "classify images against a gallery or a support folder",
             description="Classify images (files, or folders searched recursively) against a "
             "gallery or a support folder. A file that cannot be read is reported (a JSON "
             "line with an 'error' field under --json) and the others go on; the exit status "
             "is then 2. Images in a folder named like an enrolled class (<class> or "
             "<group>/<class>) count towards the accuracy printed at the end (on stderr "
             "under --json).")
    recog(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--gallery", help="gallery file made by 'oneshot enrol'")
    g.add_argument("--support", help="folder of classes, as enrol reads it, enrolled on the fly")
    p.add_argument("--top-k", type=int, default=1, help="best classes to list")
    p.add_argument("--threshold", type=float,
                   help="below this probability the answer is 'unknown'; 0: always name a "
                   "class (default: the model's threshold calibrated on held-out alphabets, "
                   "if it has one)")
    p.add_argument("images", nargs="+", help="images or folders of images to classify")


def _add_demo(sub) -> None:
    p = _sub(sub, "demo", "cmd_demo", "browser demo: draw a character, see its one-shot matches",
             description="Serve the browser demo (docs/demo.md). It uses the test alphabets "
             "and never downloads them: run 'oneshot data' once first; or, with --data, "
             "your own classes.")
    _data_args(p)
    p.add_argument("--data", metavar="DIR", help="show your classes instead of the test "
                   "alphabets: DIR/<class>/<image> or DIR/<group>/<class>/<image> (groups are "
                   "the alphabets; each class's first image by name is its support image)")
    p.add_argument("--model", help="model file, checkpoint, or run folder "
                   "(default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (this machine "
                   "only by default)")
    p.add_argument("--port", type=_port, default=8000, help="port (1-65535)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="oneshot", formatter_class=HELP,
                                 description="One-shot image recognition with Siamese "
                                 "networks on Omniglot and on your own images.")
    _global_options(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_and_evaluation(sub)
    _add_training(sub)
    _add_recognition(sub)
    _add_demo(sub)
    return ap
