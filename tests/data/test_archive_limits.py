"""Hostile archives are refused from the zip directory, with bounded reads and bounded memory
(issue 15, item 10; docs/reliability.md)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from support import big_white_png, make_zip, run_child, tiny_entries

import oneshot.io as oio
from oneshot.data import omniglot as og
from oneshot.data.dataset import DataError

TINY = og.ArchiveSpec("tiny", "images_tiny.zip", 2, 4, 80, "", "")
RSS_BOUND_MIB = 64  # peak RSS growth allowed while refusing a hostile archive
BOMB_MIB = 256  # uncompressed size of the hostile entry (about 256 KB compressed)


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



# ---- 10. archives: limits from the directory, bounded reads ------------------------------

def test_huge_entry_refused_from_directory_with_bounded_rss(tmp_path):
    path = tmp_path / "bomb.zip"
    _bomb_zip(path)
    assert path.stat().st_size < 2 << 20  # a small file that inflates to 256 MiB
    r = run_child(_DECODE_CHILD, str(path))
    assert r["error"] and "refused" in r["error"] and f"{BOMB_MIB << 20} bytes" in r["error"]
    assert r["rss_growth_kib"] < RSS_BOUND_MIB * 1024, r


def test_directory_understating_a_size_still_reads_bounded(tmp_path):
    # zipfile stops at the declared size, then fails the CRC check; but an unbounded read()
    # (ZipFile.read) first inflates all the compressed data it is given, here 256 MiB
    path = tmp_path / "liar.zip"
    _understate_size(path, _bomb_zip(path), 400)
    r = run_child(_DECODE_CHILD, str(path))
    assert r["error"] and "cannot read entry" in r["error"]
    assert r["rss_growth_kib"] < RSS_BOUND_MIB * 1024, r


def test_huge_png_dimensions_refused_before_decoding(tmp_path):
    entries = tiny_entries()
    entries[sorted(entries)[0]] = big_white_png(9000, 9000)  # 81 Mpixel, under PIL's guard
    path = make_zip(tmp_path / "wide.zip", entries)
    r = run_child(_DECODE_CHILD, str(path))
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


