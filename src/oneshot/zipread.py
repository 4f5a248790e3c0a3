"""Zip archives from outside (Omniglot's, Lake's runs, cached arrays), read within limits:
:func:`open_zip` checks the end record and directory against :class:`ZipLimits` before
``zipfile`` parses anything big, :func:`read_zip_entry` reads at most a bound (a lying
directory cannot inflate past it). Re-exported by :mod:`oneshot.io`; docs/reliability.md."""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass

__all__ = ["ZipLimitError", "ZipLimits", "open_zip", "read_zip_entry"]


class ZipLimitError(ValueError):
    """A zip archive exceeds :class:`ZipLimits` or uses an unsupported compression method."""


@dataclass(frozen=True)
class ZipLimits:
    """Upper bounds for a zip archive, checked from its directory before any entry is read.

    The defaults leave a wide margin over the Omniglot archives (at most 20,275 entries, 486 bytes
    per image, 4.8 MB uncompressed, a 2 MB directory) and keep a hostile archive's cost to tens of
    megabytes. Sizes in bytes.
    """

    max_entries: int = 100_000
    max_entry_bytes: int = 1 << 20
    max_total_bytes: int = 64 << 20
    max_directory_bytes: int = 16 << 20


_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_SUPPORTED = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def _directory_extent(fp) -> tuple[int, int]:
    """(entries, directory bytes) as declared by the end records of an open zip file."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    tail_len = min(size, _EOCD.size + 0xFFFF)  # the end record and at most a 64 KiB comment
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06", 0, max(0, len(tail) - _EOCD.size + 4))
    if pos < 0:
        raise zipfile.BadZipFile("no end-of-directory record (not a zip file, or truncated)")
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, pos)
    loc = pos - _EOCD64_LOCATOR.size
    if loc >= 0 and tail[loc: loc + 4] == b"PK\x06\x07":  # ZIP64: the true values are elsewhere
        _, _, rec_offset, _ = _EOCD64_LOCATOR.unpack_from(tail, loc)
        fp.seek(rec_offset)
        rec = fp.read(_EOCD64.size)
        if len(rec) != _EOCD64.size or rec[:4] != b"PK\x06\x06":
            raise zipfile.BadZipFile("ZIP64 end record missing or damaged")
        fields = _EOCD64.unpack(rec)
        entries, cd_size = fields[7], fields[8]
    return entries, cd_size


def open_zip(path: str | os.PathLike, limits: ZipLimits = ZipLimits()) -> zipfile.ZipFile:
    """Open a zip archive for reading after checking it against ``limits``.

    The declared directory size and entry count are read from the end record before
    :class:`zipfile.ZipFile` parses the directory (which it loads whole); then every entry's
    declared size, the total, and the compression method (stored or deflated only: their
    decompression can be bounded) are checked. Raises ZipLimitError for an archive beyond the
    limits, zipfile.BadZipFile or OSError for one that is not a readable zip.
    """
    with open(path, "rb") as fp:
        entries, cd_size = _directory_extent(fp)
    if entries > limits.max_entries:
        raise ZipLimitError(f"{entries} entries, at most {limits.max_entries} accepted")
    if cd_size > limits.max_directory_bytes:
        raise ZipLimitError(f"a {cd_size}-byte directory, at most "
                            f"{limits.max_directory_bytes} bytes accepted")
    zf = zipfile.ZipFile(path)
    try:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise ZipLimitError(f"{len(infos)} entries, at most {limits.max_entries} accepted")
        total = 0
        for info in infos:
            if info.compress_type not in _SUPPORTED:
                raise ZipLimitError(
                    f"entry {info.filename!r} uses compression method {info.compress_type}; "
                    f"only {' and '.join(_SUPPORTED.values())} entries are accepted")
            if info.file_size > limits.max_entry_bytes:
                raise ZipLimitError(
                    f"entry {info.filename!r} is {info.file_size} bytes uncompressed, at most "
                    f"{limits.max_entry_bytes} accepted")
            total += info.file_size
        if total > limits.max_total_bytes:
            raise ZipLimitError(f"{total} bytes uncompressed in all, at most "
                                f"{limits.max_total_bytes} accepted")
    except BaseException:
        zf.close()
        raise
    return zf


def read_zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo | str,
                   max_bytes: int = ZipLimits.max_entry_bytes) -> bytes:
    """The bytes of one entry, reading at most ``max_bytes`` + 1 of them whatever the directory
    says; ZipLimitError beyond ``max_bytes``. A directory that understates the size ends in
    zipfile.BadZipFile (CRC mismatch) after at most the declared size."""
    with zf.open(info) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        name = info.filename if isinstance(info, zipfile.ZipInfo) else info
        raise ZipLimitError(f"entry {name!r} holds more than {max_bytes} bytes")
    return data
