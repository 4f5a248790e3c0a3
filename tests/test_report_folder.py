"""What `oneshot evaluate --out` holds and may replace, and its saved tasks when the data
changed."""

from __future__ import annotations

import json

import numpy as np

from oneshot.cli import main


def test_a_report_folder_holds_one_report(tmp_path, monkeypatch):
    """Re-running into an old report left its figures and rows beside the new ones, and an
    interrupted run's results.md did not say it was incomplete (review)."""
    import oneshot.report as report

    out = tmp_path / "r"
    args = ["evaluate", "--baselines-only", "--no-lake", "--ways", "3", "--tasks", "10",
            "--split", "test"]
    assert main([*args, "--mode", "within-alphabet", "--out", str(out)]) == 0
    assert (out / "nway-test-within-alphabet.png").exists()
    assert main([*args, "--mode", "unstructured", "--out", str(out)]) == 0
    assert not (out / "nway-test-within-alphabet.png").exists()
    assert "within-alphabet" not in (out / "results.csv").read_text()
    assert list((out / "tasks").glob("*within-alphabet*"))  # task files stay for reuse

    def stop(*a, **k):
        raise KeyboardInterrupt

    real = report.curve_for
    calls = []
    monkeypatch.setattr(report, "curve_for", lambda *a, **k: stop() if calls else
                        calls.append(1) or real(*a, **k))
    assert main([*args, "--mode", "within-alphabet", "unstructured", "--out", str(out)]) == 130
    assert "Incomplete: 1 of 2 parts" in (out / "results.md").read_text()


def test_evaluate_never_overwrites_files_it_did_not_write(tmp_path, capsys):
    """--out holding the user's own results.md (or figures beside no report) was overwritten
    without a word (review); an earlier report's files are still replaced."""
    out = tmp_path / "mydocs"
    out.mkdir()
    (out / "results.md").write_text("my notes")
    args = ["evaluate", "--baselines-only", "--no-lake", "--ways", "3", "--tasks", "10",
            "--split", "test", "--mode", "unstructured", "--out", str(out)]
    assert main(args) == 2
    assert "results.md is there and is not from an earlier `oneshot evaluate` report" in \
        capsys.readouterr().err
    assert (out / "results.md").read_text() == "my notes" and sorted(out.iterdir()) == [
        out / "results.md"]
    (out / "results.md").unlink()
    (out / "nway-test-unstructured.png").write_bytes(b"my figure")
    assert main(args) == 2 and "nway-test-unstructured.png is there" in capsys.readouterr().err
    (out / "nway-test-unstructured.png").unlink()
    assert main(args) == 0 and main(args) == 0  # its own report, replaced
    assert (out / "results.md").read_text().startswith("# oneshot evaluate")


def test_evaluate_draws_new_tasks_when_the_folder_changed(tmp_path, caplog):
    """Images added to a folder made every later `evaluate --data` into the same --out fail on
    the old task files' digest (review): they are drawn again, with a warning."""
    from support import class_folder

    data = class_folder(tmp_path / "ev", ["a", "b", "c", "d"], per_class=2)
    out = tmp_path / "report"
    args = ["evaluate", "--data", str(data), "--baselines-only", "--no-lake", "--ways", "3",
            "--tasks", "10", "--out", str(out), "--cache", str(tmp_path / "c")]
    assert main(args) == 0
    class_folder(tmp_path / "more", ["e"], per_class=2)
    (tmp_path / "more" / "e").rename(data / "e")
    assert main(args) == 0
    assert "drawn from other images of ev than there are now (8 then, 10 now" in caplog.text
    assert '"images": 10' in "".join(
        json.dumps(json.loads(str(np.load(f)["meta"]))) for f in (out / "tasks").glob("*.npz"))
