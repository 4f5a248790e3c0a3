"""Hardening of the data and I/O layer (issue 15): zip limits, download deadline, unwritable cache,
umask and stale temporary files, recomputed cache digest. See docs/reliability.md."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import make_zip, tiny_entries

import oneshot
import oneshot.io as oio
from oneshot.data import omniglot as og
from oneshot.data.download import DownloadError, download

DataError = og.DataError  # defined in oneshot.data.dataset, re-exported

SRC = Path(oneshot.__file__).resolve().parents[1]
TINY = og.ArchiveSpec("tiny", "images_tiny.zip", 2, 4, 80, "", "")
RSS_BOUND_MIB = 64  # peak RSS growth allowed while refusing a hostile archive
BOMB_MIB = 256  # uncompressed size of the hostile entry (about 256 KB compressed)

# A child process that imports the data layer without the package's __init__ (which pulls in
# torch and takes seconds): a bare package object whose __path__ is the source folder. Its peak
# RSS is the kernel's high-water mark of its own memory (VmHWM): getrusage's ru_maxrss would
# carry over the parent's (pytest's) peak through fork and exec.
_CHILD_PRELUDE = textwrap.dedent(f"""
    import json, sys, types
    pkg = types.ModuleType("oneshot"); pkg.__path__ = [{str(SRC / "oneshot")!r}]
    sys.modules["oneshot"] = pkg

    def peak_rss_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
""")


def _run_child(code: str, *args: str, timeout: float = 60) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD_PRELUDE + textwrap.dedent(code), *args],
                         capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_DECODE_CHILD = """
    from oneshot.data import omniglot as og
    spec = og.ArchiveSpec("tiny", "images_tiny.zip", 2, 4, 80, "", "")
    before = peak_rss_kib()
    try:
        og.decode_archive(sys.argv[1], spec)
        error = None
    except og.DataError as e:
        error = str(e)
    after = peak_rss_kib()
    print(json.dumps({"error": error, "rss_growth_kib": after - before}))
"""


def _bomb_zip(path: Path, mib: int = BOMB_MIB, method: int = zipfile.ZIP_DEFLATED) -> str:
    """The tiny archive with its first image replaced by ``mib`` MiB of zeros, streamed in 1 MiB
    chunks (the test itself never holds it). Returns the replaced entry's name."""
    entries = tiny_entries()
    victim = sorted(entries)[0]
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in entries.items():
            if name == victim:
                with z.open(name, "w") as f:
                    for _ in range(mib):
                        f.write(chunk)
            else:
                z.writestr(name, data)
    return victim


def _understate_size(path: Path, name: str, size: int) -> None:
    """Make the zip directory declare ``size`` uncompressed bytes for ``name`` (a lie)."""
    raw = bytearray(path.read_bytes())
    pos = raw.rindex(name.encode()) - 46  # the central-directory header of ``name``
    assert raw[pos: pos + 4] == b"PK\x01\x02"
    raw[pos + 24: pos + 28] = struct.pack("<L", size)
    path.write_bytes(bytes(raw))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height, all white: tiny when compressed, huge decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">L", len(data)) + body + struct.pack(">L", zlib.crc32(body))

    row = b"\0" + b"\xff" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">LLBBBBB", width, height, 1, 0,
                                                                 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


# ---- 10. archives: limits from the directory, bounded reads ------------------------------

def test_huge_entry_refused_from_directory_with_bounded_rss(tmp_path):
    path = tmp_path / "bomb.zip"
    _bomb_zip(path)
    assert path.stat().st_size < 2 << 20  # a small file that inflates to 256 MiB
    r = _run_child(_DECODE_CHILD, str(path))
    assert r["error"] and "refused" in r["error"] and f"{BOMB_MIB << 20} bytes" in r["error"]
    assert r["rss_growth_kib"] < RSS_BOUND_MIB * 1024, r


def test_directory_understating_a_size_still_reads_bounded(tmp_path):
    # zipfile stops at the declared size, then fails the CRC check; but an unbounded read()
    # (ZipFile.read) first inflates all the compressed data it is given, here 256 MiB
    path = tmp_path / "liar.zip"
    _understate_size(path, _bomb_zip(path), 400)
    r = _run_child(_DECODE_CHILD, str(path))
    assert r["error"] and "cannot read entry" in r["error"]
    assert r["rss_growth_kib"] < RSS_BOUND_MIB * 1024, r


def test_huge_png_dimensions_refused_before_decoding(tmp_path):
    entries = tiny_entries()
    entries[sorted(entries)[0]] = _png_header_only(9000, 9000)  # 81 Mpixel, under PIL's guard
    path = make_zip(tmp_path / "wide.zip", entries)
    r = _run_child(_DECODE_CHILD, str(path))
    assert r["error"] and "image is 9000x9000, 105x105 expected" in r["error"]
    assert r["rss_growth_kib"] < RSS_BOUND_MIB * 1024, r


@pytest.mark.parametrize("limit,message", [
    ({"max_entries": 50}, "80 entries, at most 50 accepted"),
    ({"max_total_bytes": 10_000}, "uncompressed in all, at most 10000 accepted"),
    ({"max_directory_bytes": 1000}, "byte directory, at most 1000 bytes accepted"),
])
def test_entry_count_total_and_directory_limits(tmp_path, limit, message):
    path = make_zip(tmp_path / "t.zip", tiny_entries())
    with pytest.raises(DataError, match=f"refused, .*{message}"):
        og.decode_archive(path, TINY, limits=oio.ZipLimits(**limit))


def test_unsupported_compression_refused(tmp_path):
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as z:
        for name, data in tiny_entries().items():
            z.writestr(name, data)
    with pytest.raises(DataError, match="compression method 12; only stored and deflated"):
        og.decode_archive(path, TINY)


def test_real_archive_within_default_limits(data_dir):
    with oio.open_zip(data_dir / "images_background.zip", og.ARCHIVE_LIMITS) as z:
        assert len(z.infolist()) == 20275


# ---- 12. downloads: overall deadline, no network -----------------------------------------

TRICKLE_S = 6.0  # a trickling server gives up by itself after this long


@pytest.fixture
def trickle_server():
    """A local server that sends its headers (or only its status line) one byte per 0.1 s."""
    servers = []

    def start(where: str) -> str:
        class Trickle(BaseHTTPRequestHandler):
            def do_GET(self):
                head = b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n"
                try:
                    if where == "body":
                        self.wfile.write(head)
                    t_end = time.monotonic() + TRICKLE_S
                    for b in (head if where == "headers" else b"x" * 1000):
                        if time.monotonic() > t_end:
                            break
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass  # the client hung up

            def log_message(self, *a):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_download_deadline_stops_a_trickle(tmp_path, trickle_server, monkeypatch, where):
    monkeypatch.setenv("ONESHOT_DOWNLOAD_TIMEOUT", "1")
    url = trickle_server(where)
    target = tmp_path / "a.zip"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"did not finish within its deadline of 1 s"):
        download(f"{url}/a.zip", target)
    assert time.monotonic() - t0 < 3.0
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file


def _refused_url() -> str:
    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_no_network_is_a_data_error_that_says_where_to_put_the_archive(tmp_path, monkeypatch):
    monkeypatch.delenv("ONESHOT_DATA", raising=False)
    url = _refused_url()
    with pytest.raises(DataError) as err:
        og.find_archive("small1", None, tmp_path / "cache", base_url=url)
    msg = str(err.value)
    assert isinstance(err.value, DownloadError) and isinstance(err.value, OSError)
    for part in (f"{url}/images_background_small1.zip", og.ARCHIVES["small1"].url,
                 "--data-dir", "$ONESHOT_DATA", str(tmp_path / "cache" / "archives")):
        assert part in msg


def test_cli_data_without_network_prints_an_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    from oneshot import cli

    monkeypatch.delenv("ONESHOT_DATA", raising=False)
    monkeypatch.setattr(og, "OFFICIAL_URL", _refused_url() + "/{name}")
    assert cli.main(["data", "--split", "small1", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "error: download of" in err and "$ONESHOT_DATA" in err and "Traceback" not in err


def test_bad_download_timeout_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("ONESHOT_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(DataError, match="ONESHOT_DOWNLOAD_TIMEOUT='soon' is not a number"):
        download("http://127.0.0.1:9/x", tmp_path / "x")


# ---- 15. unwritable cache, cache under a file ---------------------------------------------

@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS], ids=["EACCES", "EROFS"])
def test_unwritable_cache_falls_back_to_memory(tmp_path, data_dir, monkeypatch, caplog, code):
    # Tests run as root, where chmod does not stop writes, and no read-only mount is at hand:
    # the cache write fails as it would on a read-only folder.
    def refuse(path, *a, **k):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(og, "atomic_write", refuse)
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


_WRITER_CHILD = _CHILD_PRELUDE + textwrap.dedent("""
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
