"""File locks: one holder at a time, and a tidy lock's folder removed again without letting a
second holder in."""

from __future__ import annotations

import threading
import time

import pytest

from oneshot.locking import FileLock, LockTimeout


def test_tidy_lock_removes_the_folder_it_made_and_only_that(tmp_path):
    made = FileLock(tmp_path / "new" / ".lock", timeout=0, tidy=True)
    with made:
        assert (tmp_path / "new" / ".lock").exists()
    assert not (tmp_path / "new").exists()  # a start that failed leaves nothing behind
    (tmp_path / "old").mkdir()
    with FileLock(tmp_path / "old" / ".lock", timeout=0, tidy=True):
        pass
    assert (tmp_path / "old").is_dir()  # not made by the lock: kept
    with FileLock(tmp_path / "used" / ".lock", timeout=0, tidy=True):
        (tmp_path / "used" / "results.md").write_text("x")
    assert (tmp_path / "used" / "results.md").exists()  # not empty: kept
    # a report stopped by a full disk after making tasks/ left .lock and an empty tasks/
    with FileLock(tmp_path / "full" / ".lock", timeout=0, tidy=True):
        (tmp_path / "full" / "tasks").mkdir()
    assert not (tmp_path / "full").exists()
    with FileLock(tmp_path / "some" / ".lock", timeout=0, tidy=True):
        (tmp_path / "some" / "tasks").mkdir()
        (tmp_path / "some" / "tasks" / "a.npz").write_bytes(b"x")
    assert (tmp_path / "some" / "tasks" / "a.npz").exists()  # something in it: kept


def test_a_waiter_on_a_removed_lock_file_locks_the_new_one(tmp_path):
    """A waiter that opened the lock file before a tidy holder removed it would lock the
    removed file, and a third process the new one: two holders at once (found in review)."""
    path = tmp_path / "run" / ".lock"
    first = FileLock(path, timeout=0, tidy=True)
    first.acquire()
    waiter = FileLock(path, timeout=10)
    t = threading.Thread(target=waiter.acquire)
    t.start()
    time.sleep(0.3)  # the waiter has opened the file and polls for the lock
    first.release()  # removes .lock and the folder
    t.join(10)
    assert not t.is_alive() and path.exists()
    with pytest.raises(LockTimeout, match="in use by another process"):
        FileLock(path, timeout=0).acquire()  # the waiter holds the file that is there now
    waiter.release()
    with FileLock(path, timeout=0):
        pass


def test_a_removing_lock_leaves_no_file_and_still_excludes(tmp_path):
    """A gallery's lock file goes when released; a waiter that had opened it, and a newcomer
    after it, are never both holders."""
    path = tmp_path / "gallery.npz.lock"
    first = FileLock(path, timeout=0, remove=True)
    first.acquire()
    waiter = FileLock(path, timeout=10, remove=True)
    t = threading.Thread(target=waiter.acquire)
    t.start()
    time.sleep(0.3)  # the waiter has opened the file and polls for the lock
    first.release()
    t.join(10)
    assert not t.is_alive() and path.exists()  # the waiter made and holds a new file
    with pytest.raises(LockTimeout, match="in use by another process"):
        FileLock(path, timeout=0).acquire()
    waiter.release()
    assert list(tmp_path.iterdir()) == []
