"""The command line: help everywhere, `oneshot data`, baseline evaluation, show-task, and the
README's user workflow (enrol a folder, classify)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from oneshot.checkpoint import export_model
from oneshot.cli import build_parser, main
from oneshot.models import ModelSpec, build_model

SUBCOMMANDS = ["data", "evaluate", "show-task", "train", "export", "verify", "enrol", "classify"]


@pytest.fixture
def env(data_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("ONESHOT_DATA", str(data_dir))
    monkeypatch.setenv("ONESHOT_CACHE", str(cache_dir))


def test_help_on_every_subcommand(capsys):
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert set(SUBCOMMANDS) <= names
    for cmd in sorted(names):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: oneshot" in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "oneshot", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "evaluate" in out and "train" in out


def test_data_prints_counts(env, capsys):
    assert main(["data", "--lake"]) == 0
    out = capsys.readouterr().out
    assert "30 alphabets   964 characters  19280 images" in out
    assert "20 alphabets   659 characters  13180 images" in out
    assert "20 runs, 400 trials" in out


def test_evaluate_baselines_writes_table_and_figure(env, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["evaluate", "--baselines-only", "--split", "test", "--mode", "within-alphabet",
               "--ways", "1", "5", "--tasks", "40", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    scorers = {r["scorer"] for r in res["nway"]}
    assert scorers == {"random", "nearest-neighbour"}  # MHD on N-way points: --full only
    one_way = [r for r in res["nway"] if r["ways"] == 1]
    assert all(r["accuracy"] == 100.0 for r in one_way)
    assert {r["scorer"] for r in res["lake"]} == scorers | {"modified-hausdorff"}
    err = capsys.readouterr().err  # a progress line per part, terminal or not
    assert "[1/2] lake:" in err and "[2/2] curve test within-alphabet:" in err
    md = (out / "results.md").read_text()
    assert "Lake's 20-way" in md and "95 % CI" in md and "Task files" in md
    assert (out / "nway-test-within-alphabet.png").stat().st_size > 5000
    assert (out / "results.csv").read_text().startswith("split,mode,ways,scorer")
    # task files are reused: a second run scores the same tasks
    sha = {r["task_sha256"] for r in res["nway"]}
    main(["evaluate", "--baselines-only", "--split", "test", "--mode", "within-alphabet",
          "--ways", "1", "5", "--tasks", "40", "--out", str(out), "--no-lake"])
    again = json.loads((out / "results.json").read_text())
    assert {r["task_sha256"] for r in again["nway"]} == sha


def test_show_task(env, tmp_path):
    assert main(["show-task", "--ways", "4", "--out", str(tmp_path / "t.png")]) == 0
    assert Image.open(tmp_path / "t.png").size[0] > 200


def test_errors_are_clear(env, tmp_path, capsys):
    assert main(["verify", "--model", str(tmp_path / "nope.pt"), "a.png", "b.png"]) == 2
    assert "nope.pt: no such model" in capsys.readouterr().err
    assert main(["train", "--preset", "nonsense", "--out", str(tmp_path / "r")]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_enrol_and_classify_folder(env, splits, tmp_path, capsys):
    model = tmp_path / "m.pt"
    export_model(build_model(ModelSpec("conv", {"input_size": 28, "width": 8}, "euclidean"),
                             seed=0), model)
    ds = splits["test"]
    support = tmp_path / "support"
    for c in range(3):
        (support / ds.characters[c].replace("/", "_")).mkdir(parents=True)
        i = int(np.flatnonzero((ds.labels == c) & (ds.drawers == 1))[0])
        Image.fromarray(((1 - ds.images[i]) * 255).astype(np.uint8)).save(
            support / ds.characters[c].replace("/", "_") / "one.png")
    gallery = tmp_path / "g.npz"
    assert main(["enrol", "--model", str(model), "--gallery", str(gallery), str(support),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "gallery": str(gallery), "classes": 3, "images": 3,
        "enrolled": {"added": sorted(p.name for p in support.iterdir())}}
    q = next(support.iterdir()) / "one.png"
    assert main(["classify", "--model", str(model), "--gallery", str(gallery), str(q),
                 "--top-k", "2", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["label"] == q.parent.name and len(rec["top"]) == 2
    assert main(["verify", "--model", str(model), str(q), str(q), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True  # an image matches itself
    # an empty class folder is refused and the gallery stays as it was
    before = gallery.read_bytes()
    (support / "empty").mkdir()
    assert main(["enrol", "--model", str(model), "--gallery", str(gallery), str(support)]) == 2
    assert "has no images" in capsys.readouterr().err
    assert gallery.read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["verify", "--device", "cuda", "a.png", "b.png"], "no CUDA device"),
    (["verify", "--device", "tpu", "a.png", "b.png"], "unknown device 'tpu'"),
    (["verify", "--threshold", "nan", "a.png", "b.png"], "threshold=nan"),
    (["verify", "--threshold", "5", "a.png", "b.png"], "threshold=5.0"),
    (["train", "--out", "R", "--set", "lr=nan"], "lr=nan"),
    (["train", "--out", "R", "--set", "lr=inf"], "lr=inf"),
    (["train", "--out", "R", "--set", "lr=-1"], "lr=-1.0"),
    (["train", "--out", "R", "--set", "drawers=5"], "drawers=5"),
    (["train", "--out", "R", "--set", "encoder_args=[1,2]"], "encoder_args=[1, 2]"),
    (["train", "--out", "R", "--set", "threads=-1"], "threads=-1"),
    (["train", "--out", "R", "--set", 'encoder_args={"width":0}', "--print-config"],
     "encoder 'conv'"),
    (["train", "--out", "R", "--device", "cuda"], "no CUDA device"),
])
def test_bad_options_are_one_line_errors(argv, message, tiny_model_file, tmp_path, capsys,
                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "verify":
        argv = [argv[0], "--model", str(tiny_model_file), *argv[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert not (tmp_path / "R").exists()


def test_bugs_surface_with_status_1(monkeypatch):
    """Only user mistakes become 'error: ...' (2); a programming error keeps its traceback."""
    import oneshot.cli as cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "cmd_data", broken)
    r = subprocess.run([sys.executable, "-c", "import sys, oneshot.cli as c; "
                        "c.cmd_data = lambda a: {}['bug']; sys.exit(c.main(['data']))"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" in r.stderr and "KeyError" in r.stderr
    with pytest.raises(KeyError):
        cli.main(["data"])


def test_global_options_after_the_subcommand(capsys):
    args = build_parser().parse_args(["data", "--quiet", "-v"])
    assert args.quiet and args.verbose
    args = build_parser().parse_args(["--quiet", "data"])
    assert args.quiet and not args.verbose


def test_help_is_fast_and_imports_no_torch():
    code = ("import sys, time; t = time.perf_counter(); from oneshot.cli import build_parser; "
            "build_parser(); print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == "False" and float(out[0]) < 1.0, out


def test_verify_many_pairs_from_a_file(tiny_model_file, tmp_path, capsys):
    from support import class_folder

    folder = class_folder(tmp_path / "s", ["a", "b"], per_class=2)
    a0, a1, b0 = (str(folder / c / f) for c, f in (("a", "0.png"), ("a", "1.png"),
                                                    ("b", "0.png")))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"# a comment\n{a0}\t{a1}\n{a0} {b0}\n{a0}\t{tmp_path / 'broken.png'}\n"
                     f"{b0}\t{b0}\n")
    rc = main(["verify", "--model", str(tiny_model_file), "--pairs", str(pairs), "--json"])
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 2 and len(rows) == 4  # one bad image: reported, the others go on
    assert "error" in rows[2] and "broken.png" in rows[2]["error"]
    assert rows[3]["same"] is True and all("probability" in r for r in rows[:2])
    assert main(["verify", "--model", str(tiny_model_file), a0]) == 2
    assert "two images" in capsys.readouterr().err


def test_data_json(env, capsys):
    assert main(["data", "--split", "small1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["small1"]["images"] == 2720
    assert out["splits"]["small1"]["digest_recomputed"] in (True, False)


def test_classify_says_which_threshold(tiny_model_file, tmp_path, capsys):
    from support import class_folder

    folder = class_folder(tmp_path / "s", ["a", "b"])
    q = str(folder / "a" / "0.png")
    m = ["--model", str(tiny_model_file), "--support", str(folder)]
    assert main(["classify", *m, q]) == 0
    assert "threshold: none" in capsys.readouterr().err  # a model without a calibration
    assert main(["classify", *m, q, "--threshold", "0.9999", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["threshold"] == 0.9999 and rec["label"] in ("a", "unknown")


@pytest.mark.parametrize("side", [12_000, 50_000])
def test_huge_images_are_refused_before_decoding(side, tiny_model_file, tmp_path, capsys):
    """A 12000x12000 1-bit PNG (about 80 KB) used to be decoded (1.9 GB); a header claiming
    50000x50000 gave a DecompressionBombError traceback."""
    import struct
    import zlib

    from support import big_white_png

    raw = bytearray(big_white_png(side, side if side < 20_000 else 1))
    if side >= 20_000:  # only the header claims the height: patch IHDR, fix its CRC
        raw[20:24] = struct.pack(">L", side)
        raw[29:33] = struct.pack(">L", zlib.crc32(bytes(raw[12:29])))
    big = tmp_path / "big.png"
    big.write_bytes(bytes(raw))
    assert main(["verify", "--model", str(tiny_model_file), str(big), str(big)]) == 2
    err = capsys.readouterr().err
    assert "over the limit of 40 megapixels" in err, err
    assert "Traceback" not in err


def test_enrol_replace_into_a_folder_is_refused(tiny_model_file, tmp_path, capsys):
    from support import class_folder

    folder = class_folder(tmp_path / "s", ["a"])
    assert main(["enrol", "--model", str(tiny_model_file), "--replace", "--gallery",
                 str(tmp_path), str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_your_own_classes_workflow(env, tmp_path, capsys):
    """folder -> evaluate -> fine-tune -> evaluate -> classify, on a tiny synthetic folder."""
    from support import class_folder

    names = [f"g{g}/c{c}" for g in range(5) for c in range(4)]
    data = class_folder(tmp_path / "mine", names, per_class=[2 + i % 3 for i in range(20)])
    out = tmp_path / "report"
    assert main(["evaluate", "--data", str(data), "--part", "test", "--tasks", "20",
                 "--ways", "2", "4", "20", "--no-baselines", "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "mine-test (your classes), unstructured" in md and "the shipped model" in md
    assert "within-alphabet" not in md  # one group in the test part: within it is the same
    assert "Lake" not in md and "| 20 |" not in md  # 4 classes in a group: N = 20 left out
    run = tmp_path / "ft"
    assert main(["--quiet", "train", "--preset", "finetune", "--data", str(data), "--out",
                 str(run), "--steps", "2", "--set", "val_every=2", "val_tasks=10",
                 "amp=false", "threads=1"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert main(["evaluate", "--data", str(data), "--data-split", str(run / "data_split.json"),
                 "--part", "test", "--model", "default", str(run), "--tasks", "20", "--ways",
                 "2", "--mode", "unstructured", "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "| nearest-neighbour | modified-hausdorff | the shipped model | siamese (ft/best.pt)" \
        in md and "Warning" not in md
    assert main(["evaluate", "--data", str(data), "--model", str(run), "--no-baselines",
                 "--tasks", "5", "--ways", "2", "--out", str(tmp_path / "all")]) == 0
    test_groups = json.loads((run / "data_split.json").read_text())["test"]
    total, unseen = sum(2 + i % 3 for i in range(20)), sum(
        len(list((data / g).rglob("*.png"))) for g in test_groups)
    warn = f"trained or selected on {total - unseen} of the {total} images of mine (the same pic"
    assert warn in capsys.readouterr().out
    new = tmp_path / "renamed" / "mine"
    shutil.copytree(data, new)  # the same pictures under other names: found by content
    for g in data.iterdir():
        (new / g.name).rename(new / f"x{g.name}")
    assert main(["evaluate", "--data", str(new), "--model", str(run), "--no-baselines",
                 "--tasks", "5", "--ways", "2", "--out", str(tmp_path / "all2")]) == 0
    assert warn in capsys.readouterr().out
    # classify a folder with the fine-tuned model: accuracy per class; a bad file: exit 2
    (tmp_path / "broken.png").write_bytes(b"no image")
    assert main(["classify", "--model", str(run), "--support", str(data / "g1"),
                 str(data / "g1"), str(tmp_path / "broken.png")]) == 2
    cap = capsys.readouterr()
    assert "accuracy: no image to count; 12 enrolled image(s) given again left out" in cap.out
    assert "broken.png: error:" in cap.out and "1 of" in cap.err
    assert main(["classify", "--model", str(run), "--support", str(data / "g1"), "--json",
                 str(tmp_path / "broken.png")]) == 2
    assert "error" in json.loads(capsys.readouterr().out)
    gallery = tmp_path / "g.npz"
    assert main(["enrol", "--model", str(run), "--gallery", str(gallery), "--per-class", "1",
                 str(data / "g1")]) == 0
    assert "4 classes, 4 images (added 4 classes)" in capsys.readouterr().out
    assert main(["enrol", "--model", str(run), "--gallery", str(gallery), str(data / "g1")]) == 2
    assert "--existing skip, replace or append" in capsys.readouterr().err
