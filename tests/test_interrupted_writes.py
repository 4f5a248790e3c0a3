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


def test_an_ensemble_member_stops_when_its_parent_is_killed(tmp_path):
    """kill -9 of `train --set members=2` left both members training, orphaned (review)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("import subprocess, sys, time\n"
            "from oneshot.training.ensemble import _die_with_parent\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
            "preexec_fn=_die_with_parent)\n"
            "print(p.pid, flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):  # the member gets SIGTERM at once; give it up to 10 s
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":  # exited, not yet reaped
                return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the member outlived its parent")


def test_every_legal_file_name_can_be_written_and_failures_name_the_target(tmp_path,
                                                                            monkeypatch):
    """A 238-byte name failed ("File name too long" naming a hidden temporary file), and a
    read-only folder's error named the temporary file, not the user's (review)."""
    import errno
    import os

    import pytest

    from oneshot.io import atomic_write_bytes, remove_stale_temps

    long = tmp_path / ("漢" * 78 + ".npz")  # 238 bytes: legal, touch accepts it
    atomic_write_bytes(long, b"x")
    assert long.read_bytes() == b"x" and os.listdir(tmp_path) == [long.name]
    assert remove_stale_temps(long) == []
    real_open = os.open

    def read_only(path, *a, **k):  # as a read-only mount answers (root ignores a mode)
        if str(path).endswith(".tmp"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(tmp_path / "m.pt", b"x")
    assert e.value.errno == errno.EROFS and e.value.filename == str(tmp_path / "m.pt")


def test_sigterm_stops_any_command_like_ctrl_c(tmp_path):
    """SIGTERM to `enrol` or `evaluate` exited 143 without a word; the documented status is
    130, "interrupted", as for Ctrl-C (review)."""
    import os
    import signal
    import subprocess
    import sys

    code = ("import os, signal, time, oneshot.cli as c\n"
            "c.cmd_data = lambda a: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(5))\n"
            "raise SystemExit(c.main(['data']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "ONESHOT_DATA": str(tmp_path)})
    assert r.returncode == 130 and "interrupted" in r.stderr, (r.returncode, r.stderr)
    before = signal.getsignal(signal.SIGTERM)
    from oneshot.errors import sigterm_as_interrupt

    with sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before  # the earlier handler is back


def test_a_damaged_metrics_line_drops_only_itself_on_resume(tmp_path):
    """One bad line in the middle of metrics.jsonl dropped every later line (review)."""
    from oneshot.training.runfolder import RunFolder

    folder = RunFolder(tmp_path / "run")
    folder.root.mkdir()
    folder.metrics.write_text('{"step": 1}\nGARBAGE\n[3]\n{"step": "x"}\n{"step": 2}\n'
                              '{"step": 9}\n{"step": 3, "lo')
    folder.trim_metrics(5)
    assert folder.metrics.read_text() == '{"step": 1}\n{"step": 2}\n'
