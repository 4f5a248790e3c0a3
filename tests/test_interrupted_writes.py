"""What an interrupted or refused command leaves of the user's files (review): an earlier
report survives a re-run stopped before its first part, a report folder's lock goes, and a
damaged run config is named, not a traceback."""

from __future__ import annotations

from oneshot.cli import main
from oneshot.locking import FileLock


def test_an_earlier_report_stays_until_the_new_one_replaces_it(tmp_path, monkeypatch):
    """A re-run stopped in its first part deleted the whole earlier report."""
    import oneshot.report as report

    out = tmp_path / "r"
    args = ["evaluate", "--baselines-only", "--no-lake", "--ways", "3", "--tasks", "10",
            "--split", "test", "--mode", "within-alphabet", "--out", str(out)]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"results.md", "nway-test-within-alphabet.png"} <= set(before)

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "curve_for", stop)
    assert main(args) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_removing_lock_goes_from_a_folder_it_made_that_is_not_empty(tmp_path):
    """`evaluate --out NEW` left NEW/.lock behind (the folder was not empty, so it stayed)."""
    lock = FileLock(tmp_path / "new" / ".lock", tidy=True, remove=True)
    with lock:
        (tmp_path / "new" / "results.md").write_text("x")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["results.md"]


def test_a_damaged_ensemble_config_is_named(tmp_path, capsys):
    out = tmp_path / "e"
    out.mkdir()
    for text in ('{"config": {"steps": 1', "[1, 2]"):
        (out / "config.json").write_text(text)
        code = main(["train", "--preset", "fast", "--set", "members=2", "steps=10",
                     "--out", str(out), "--resume"])
        err = capsys.readouterr().err
        assert code == 2 and "config.json is not a readable run config" in err, err
