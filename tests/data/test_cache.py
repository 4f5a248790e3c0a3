"""The decoded cache: an unwritable folder falls back to memory, a path under a file is a clear
error, and a forged cache is detected by its recomputed digest (issue 15, items 15 and 20)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from oneshot.data import cache as cache_module
from oneshot.data import omniglot as og
from oneshot.data.dataset import DataError

# ---- 15. unwritable cache, cache under a file ---------------------------------------------

@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS], ids=["EACCES", "EROFS"])
def test_unwritable_cache_falls_back_to_memory(tmp_path, data_dir, monkeypatch, caplog, code):
    # Tests run as root, where chmod does not stop writes, and no read-only mount is at hand:
    # the cache write fails as it would on a read-only folder.
    def refuse(path, *a, **k):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(cache_module, "atomic_write", refuse)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger=og.__name__):
        ds = og.load_archive("small1", data_dir, cache)
    assert len(ds) == 2720 and ds.digest == og.ARCHIVES["small1"].digest
    assert "cannot write the small1 cache" in caplog.text and "from memory" in caplog.text
    assert not (cache / "small1.json").exists()


def test_cache_under_a_regular_file_is_a_clear_error(tmp_path, data_dir, monkeypatch):
    def no_decoding(*a, **k):
        raise AssertionError("decoded before the cache folder was checked")

    monkeypatch.setattr(og, "decode_archive", no_decoding)
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("ONESHOT_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(DataError, match=r"file is a file, not a folder.*ONESHOT_CACHE"):
        og.load_archive("small1", data_dir)


# ---- 20. the cache digest is recomputed, or said to be trusted -----------------------------

def _forge(cache: Path, split: str) -> None:
    """Change one cached image and make the manifest agree (a forged, self-consistent cache)."""
    payload, manifest = cache / f"{split}.npz", cache / f"{split}.json"
    with np.load(payload) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["bits"][0] ^= 0xFF
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload.write_bytes(buf.getvalue())
    meta = json.loads(manifest.read_text())
    meta["payload_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    manifest.write_text(json.dumps(meta))


def test_forged_cache_is_detected_and_rebuilt(tmp_path, data_dir):
    cache = tmp_path / "cache"
    first = og.load_archive("small1", data_dir, cache)
    assert first.digest_verified
    _forge(cache, "small1")
    trusted = og.load_archive("small1", data_dir, cache, verify=False)
    assert not trusted.digest_verified  # the pinned digest, copied: the caller can say so
    assert not np.array_equal(trusted.images[0], first.images[0])
    with pytest.raises(DataError, match="content digest .* recomputed from the cached images"):
        og.verify_cache("small1", cache)
    again = og.load_archive("small1", data_dir, cache)  # verified by default: rebuilt
    assert again.digest_verified and np.array_equal(again.images, first.images)
    assert og.verify_cache("small1", cache).digest == og.ARCHIVES["small1"].digest


def test_digest_status_of_loaded_splits(splits):
    for name in ("background", "evaluation", "validation", "test"):
        assert splits[name].digest_verified, name
    bg = splits["background"]
    assert og.content_digest(bg) == og.ARCHIVES["background"].digest
    assert splits["test"].select(drawers=[1]).with_rotations().digest_verified
