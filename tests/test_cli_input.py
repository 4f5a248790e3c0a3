"""User mistakes and odd inputs at the command line, found by using it as a careless user
would: out-of-range counts and seeds, long thin images, system files in folders, a file as a
report folder. Each is a one-line error with exit status 2, or is handled, never a traceback."""

from __future__ import annotations

import json

import pytest

from oneshot.cli import main


@pytest.mark.parametrize("argv, says", [
    (["evaluate", "--tasks", "0"], "--tasks: 0: at least 1 expected"),
    (["evaluate", "--tasks", "-5"], "--tasks: -5: at least 1 expected"),
    (["train", "--out", "r", "--seed", "-1"], "--seed: -1: a seed in [0, 2**32) expected"),
    (["train", "--out", "r", "--seed", "99999999999999999999"], "a seed in [0, 2**32)"),
    (["train", "--out", "r", "--steps", "0"], "--steps: 0: at least 1 expected"),
    (["enrol", "--gallery", "g.npz", "--per-class", "x", "d"], "'x': a whole number expected"),
    (["demo", "--port", "80000"], "80000: a port 1-65535 expected"),
])
def test_counts_and_seeds_out_of_range_are_usage_errors(argv, says, capsys, tmp_path):
    """They used to reach numpy or torch as tracebacks (found by a review helper)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and "Traceback" not in err, err

def test_long_thin_images_are_refused_before_padding(tiny_model_file, tmp_path, capsys):
    """A 20000x40 strip (under 1 kB, 0.8 megapixels) was padded to a 20000x20000 square: 1.9 GB
    (found by a review helper). Refused from the header; as an array, before padding."""
    import numpy as np
    from support import big_white_png

    from oneshot.data.images import ImageTooLargeError
    from oneshot.preprocess import preprocess

    strip = tmp_path / "strip.png"
    strip.write_bytes(big_white_png(20_000, 40))
    assert main(["verify", "--model", str(tiny_model_file), str(strip), str(strip)]) == 2
    err = capsys.readouterr().err
    assert "padded to a 20000x20000 square, over the limit of 80 megapixels" in err, err
    with pytest.raises(ImageTooLargeError, match="padded to a 20000x20000 square"):
        preprocess([np.zeros((40, 20_000), np.float32)], 28)
    assert preprocess([np.pad(np.ones((20, 60), np.float32), 10)], 28).shape == (1, 1, 28, 28)


def test_system_files_in_folders_are_skipped(tiny_model_file, tmp_path, capsys, caplog):
    """Thumbs.db, desktop.ini and dot-files that file browsers leave in image folders are not
    images: skipped in support and query folders (a Thumbs.db made classify exit 2); other
    files that are not images are left out with a warning naming them."""
    from support import class_folder

    support = class_folder(tmp_path / "s", ["a", "b"])
    queries = tmp_path / "q"
    queries.mkdir()
    (queries / "x.png").write_bytes((support / "a" / "0.png").read_bytes())
    for junk in (queries / "Thumbs.db", queries / ".DS_Store", support / "a" / "desktop.ini",
                 support / "b" / "THUMBS.DB"):
        junk.write_bytes(b"not an image")
    (queries / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING", logger="oneshot.batch"):
        assert main(["classify", "--model", str(tiny_model_file), "--support", str(support),
                     str(queries), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["image"].endswith("x.png"), lines
    assert "left out 1 file(s) that are not images by their name: notes.txt" in caplog.text


def test_evaluate_out_that_is_a_file(tmp_path, capsys):
    """A file as --out gave a raw "[Errno 20] Not a directory: 'report.txt/tasks'"."""
    out = tmp_path / "report.txt"
    out.write_text("mine")
    assert main(["evaluate", "--baselines-only", "--no-lake", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is a file; the report needs a folder" in err and "Errno" not in err, err
    assert out.read_text() == "mine"


@pytest.mark.parametrize("setting, says", [
    ("train_split=test", "holds test alphabets"),
    ("train_split=evaluation", "holds test alphabets"),
    ("val_split=train", "share alphabets: validation would score characters the model trains"),
])
def test_training_on_held_out_alphabets_is_refused(setting, says, tmp_path, capsys):
    """These were accepted silently: a model trained on the test alphabets, or selected on its
    own training characters, scores figures that mean nothing. Nothing is written."""
    out = tmp_path / "run"
    assert main(["train", "--preset", "fast", "--out", str(out), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err
    assert not out.exists()


def test_selecting_on_the_test_alphabets_is_warned_of(splits, data_dir, cache_dir, caplog):
    from oneshot.training import apply_overrides, preset
    from oneshot.training.data import load_training_data

    cfg = apply_overrides(preset("fast"), {"val_split": "test"})
    with caplog.at_level("WARNING", logger="oneshot.training"):
        _, val, _ = load_training_data(cfg, data_dir, cache_dir)
    assert val.name == "test" and "val_split='test' holds test alphabets" in caplog.text


def test_half_is_refused_for_onnx(tiny_model_file, tmp_path, capsys):
    """--half was ignored for ONNX: the file came out in float32 without a word."""
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_model_file), "--out", str(out), "--half"]) == 2
    assert "--half applies to --format pt only" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_optional_package_is_a_usage_error(tiny_model_file, tmp_path, monkeypatch,
                                                     capsys):
    """It was a 30-line ImportError traceback with exit status 1."""
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    assert main(["export", str(tiny_model_file), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "needs the optional package 'onnxscript'" in err and "Traceback" not in err, err


def test_evaluate_on_one_class_is_refused(tiny_model_file, tmp_path, capsys):
    """One class printed a table of 100 % for every scorer, random included (1-way tasks)."""
    from support import class_folder

    root = class_folder(tmp_path / "one", ["a"], per_class=3)
    out = tmp_path / "report"
    assert main(["evaluate", "--data", str(root), "--model", str(tiny_model_file), "--out",
                 str(out), "--cache", str(tmp_path / "c")]) == 2
    assert "unstructured tasks have 1 class at most" in capsys.readouterr().err
    assert not out.exists()
    two = class_folder(tmp_path / "two", ["a", "b"], per_class=2)  # an empty report, exit 0
    assert main(["evaluate", "--data", str(two), "--model", str(tiny_model_file), "--out",
                 str(out), "--ways", "3", "5", "--cache", str(tmp_path / "c")]) == 2
    assert "N = [3, 5] fits: N >= 2 is needed" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("argv, says", [
    (["--part", "test"], "--part: with --data DIR only"),
    (["--data-split", "s.json"], "--data-split: with --data DIR only"),
    (["--data", "d", "--full"], "--split and --full choose Omniglot's alphabets"),
    (["--data", "d", "--data-split", "s.json", "--split-seed", "3"],
     "--data-split gives a class split, --split-seed draws one"),
])
def test_evaluate_options_that_contradict(argv, says, tmp_path, capsys):
    """Each was ignored without a word (Omniglot scored for --part test without --data)."""
    assert main(["evaluate", *argv, "--out", str(tmp_path / "r")]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_every_unusable_image_of_a_support_folder_is_named_at_once(tiny_model_file, tmp_path,
                                                                    capsys):
    """Cleaning a folder took one run per bad file: each run named only the first."""
    from support import class_folder

    root = class_folder(tmp_path / "s", ["a", "b"], per_class=2)
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "fake.jpg").write_text("no")
    (root / "b" / "notes.txt").write_text("left out, not an image by its name")
    assert main(["enrol", "--model", str(tiny_model_file), "--gallery",
                 str(tmp_path / "g.npz"), str(root)]) == 2
    err = capsys.readouterr().err
    assert "2 of 6 images cannot be used" in err and "empty.png" in err and "fake.jpg" in err
    assert "notes.txt" not in err.split("cannot be used")[1] and not (tmp_path / "g.npz").exists()


def test_a_second_evaluation_into_a_busy_report_folder_is_refused(tmp_path, capsys):
    """Two evaluations into one --out both exited 0 and left one's tables beside the other's
    figures."""
    from oneshot.locking import FileLock

    out = tmp_path / "report"
    with FileLock(out / ".lock", timeout=0):  # as an evaluation running in another process
        assert main(["evaluate", "--baselines-only", "--no-lake", "--out", str(out)]) == 2
    assert "report folder" in capsys.readouterr().err and not (out / "results.md").exists()


def test_too_many_tasks_are_refused_and_leave_no_folder(tmp_path, capsys):
    """--tasks 100000000 ran for 10 minutes without a word; a failed start left OUT/.lock."""
    out = tmp_path / "r"
    assert main(["evaluate", "--baselines-only", "--no-lake", "--tasks", "100000000", "--out",
                 str(out)]) == 2
    assert "1 to 100,000 expected" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("argv, says", [
    (["show-task", "--out", "."], "--out .: a .png file name expected"),
    (["show-task", "--out", "t.jpg"], "--out t.jpg: a .png file name expected"),
    (["show-task", "--no-model", "--model", "m.pt", "--out", "t.png"], "contradict each other"),
    (["enrol", "--gallery", ".", "d"], ".: is a folder; a file name expected"),
    (["verify", "a.png", "missing.png"], "missing.png: no such file"),
    (["classify", "--gallery", "d", "a.png"], "d: a folder; a gallery file (.npz) expected"),
    (["classify", "--support", "nowhere", "a.png"], "nowhere: no such folder (expected "
                                                    "nowhere/<class>/<image>)"),
    (["classify", "--support", "d", "--threshold", "1.5", "a.png"],
     "threshold=1.5; a probability in [0, 1] expected"),
    (["evaluate", "--data", "d", "--out", "d/report"], "--out d/report is inside --data d"),
    (["evaluate", "--data", "d/", "--out", "./d"], "--out ./d is inside --data d/"),
])
def test_outputs_and_inputs_named_wrongly(argv, says, tiny_model_file, tmp_path, capsys,
                                          monkeypatch):
    """Tracebacks (an Errno 16 rename onto '.', "PosixPath('.') has an empty name") or PNG
    bytes under a .jpg name; a missing file was "not a readable image (broken file...)"."""
    from PIL import Image, ImageDraw
    from support import class_folder

    monkeypatch.chdir(tmp_path)
    class_folder(tmp_path / "d", ["x", "y"])
    im = Image.new("L", (30, 30), 255)
    ImageDraw.Draw(im).line([(5, 5), (25, 25)], fill=0, width=3)
    im.save("a.png")
    code = main([*argv[:1], "--model", str(tiny_model_file), *argv[1:]] if argv[0] != "show-task"
                else argv)
    err = capsys.readouterr()
    assert code == 2 and says in err.err + err.out and "Traceback" not in err.err, err
    assert not (tmp_path / "t.jpg").exists() and not (tmp_path / "d" / "report").exists()
    assert "(--threshold)" not in err.err  # a refused threshold was announced first


def test_a_run_folder_inside_its_data_folder_is_refused(tmp_path, capsys, monkeypatch):
    """Its files would be read as images of the folder by the next command on it (a report's
    plots as a class; review: the next evaluate failed on "class 'ev/tasks' has no images")."""
    from support import class_folder

    monkeypatch.chdir(tmp_path)
    class_folder(tmp_path / "d", ["x", "y", "z"])
    assert main(["train", "--preset", "small", "--data", "d", "--out", "d/run", "--steps",
                 "2"]) == 2
    assert "--out d/run is inside the data folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x", "y", "z"]


def test_system_refusals_are_one_line_errors_and_a_closed_pipe_is_quiet(monkeypatch, capsys):
    """A full disk, a read-only folder or a name too long were tracebacks with exit 1; `| head`
    closing the output was a BrokenPipeError traceback (review)."""
    import oneshot.cli as cli

    def full(args):
        raise OSError(28, "No space left on device", "g.npz.tmp")

    monkeypatch.setattr(cli, "cmd_data", full)
    assert cli.main(["data"]) == 2
    assert capsys.readouterr().err == "error: [Errno 28] No space left on device: 'g.npz.tmp'\n"

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_data", closed)
    assert cli.main(["data"]) == 141 and capsys.readouterr().err == ""
