"""Atomic writes respect the umask, and temporary files of killed writers are cleaned while a
live writer's are kept (issue 15, item 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from support import CHILD_PRELUDE

import oneshot.io as oio

# ---- 18. umask, stale temporary files ------------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_respects_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        oio.atomic_write_bytes(tmp_path / "g.npz", b"x")
        oio.atomic_write_json(tmp_path / "config.json", {"a": 1})
    finally:
        os.umask(old)
    for name in ("g.npz", "config.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


def test_a_full_disk_names_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    """ENOSPC from fsync on a descriptor named no file: 'error: [Errno 28] No space left on
    device' did not say which of a command's outputs failed."""
    import errno

    target = tmp_path / "gallery.npz"
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(oio.os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        oio.atomic_write_bytes(target, b"new")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["gallery.npz"]


_WRITER_CHILD = CHILD_PRELUDE + textwrap.dedent("""
    import oneshot.io as oio
    with oio.atomic_write(sys.argv[1]) as f:
        f.write(b"from the child")
        f.flush()
        print("ready", flush=True)
        sys.stdin.readline()  # the parent says when to finish (or kills us)
""")


def _writer(target: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _WRITER_CHILD, str(target)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def _temps(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def test_killed_writers_temp_is_cleaned_but_a_live_writers_is_kept(tmp_path):
    target = tmp_path / "g.npz"
    killed = _writer(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    left = _temps(tmp_path, "g.npz")
    assert len(left) == 1 and str(killed.pid) in left[0]  # what a SIGKILL leaves behind
    live = _writer(target)
    try:
        live_temp = [t for t in _temps(tmp_path, "g.npz") if t not in left]
        oio.atomic_write_bytes(target, b"from the parent")
        assert _temps(tmp_path, "g.npz") == live_temp  # the dead writer's went, the live one's not
        assert target.read_bytes() == b"from the parent"
        live.stdin.write("done\n")
        live.stdin.flush()
        assert live.wait(timeout=10) == 0
    finally:
        live.kill()
        live.wait()
    assert target.read_bytes() == b"from the child" and _temps(tmp_path, "g.npz") == []


def test_a_cache_write_cleans_a_killed_write_of_another_entry(tmp_path):
    """A decode killed while writing the cache entry of a folder that then changed (a new
    entry name) left its temporary file for good (review): cache writes sweep the folder."""
    from oneshot.data.cache import write_cache
    from oneshot.data.dataset import Dataset

    killed = _writer(tmp_path / "folder-old.npz")
    live = _writer(tmp_path / "folder-other.npz")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        (tmp_path / "notes.txt.tmp").write_text("not ours")
        assert len(_temps(tmp_path, "folder-old.npz")) == 1
        ds = Dataset(images=np.zeros((2, 105, 105), np.uint8), labels=np.array([0, 1]),
                     drawers=np.array([1, 1]), characters=("a/x", "a/y"),
                     char_alphabet=np.array([0, 0]), alphabets=("a",),
                     char_ids=np.zeros(2, np.int64), name="new", digest="x")
        write_cache(ds, "folder-new", tmp_path)
        assert _temps(tmp_path, "folder-old.npz") == []  # the dead writer's went
        assert len(_temps(tmp_path, "folder-other.npz")) == 1  # a live writer's stays
        assert (tmp_path / "notes.txt.tmp").exists()  # not a name this project makes
    finally:
        live.kill()
        live.wait()


def test_old_style_and_foreign_temps_are_cleaned_only_when_old(tmp_path):
    target = tmp_path / "last.pt"
    names = {"old_legacy": ".last.pt.ab12cd_3.tmp", "new_legacy": ".last.pt.zz99yy00.tmp",
             "old_foreign": ".last.pt.otherhost-1.0123456789abcdef.tmp",
             "old_unrelated": ".last.pt.bak", "old_other_target": ".last.pt.old.ab12cd_3.tmp"}
    for key, name in names.items():
        (tmp_path / name).write_bytes(b"partial")
        if key.startswith("old"):
            past = time.time() - 2 * 86400  # two days
            os.utime(tmp_path / name, (past, past))
    oio.atomic_write_bytes(target, b"x")
    left = {p.name for p in tmp_path.iterdir()} - {target.name}
    assert left == {names["new_legacy"], names["old_unrelated"], names["old_other_target"]}


