"""The data layer on the real archives, and every error path on synthetic files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import make_zip, png_bytes, tiny_entries

from oneshot.data import omniglot as og
from oneshot.data.splits import load_split

LAKE_ALPHABETS = {"Atlantean", "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada", "Malayalam",
                  "Manipuri", "Old_Church_Slavonic_(Cyrillic)", "Tengwar", "Tibetan"}


TINY = og.ArchiveSpec("tiny", "images_tiny.zip", 2, 4, 80, "", "")

def test_counts_and_digests(splits):
    bg, ev = splits["background"], splits["evaluation"]
    assert bg.counts() == {"alphabets": 30, "characters": 964, "images": 19280}
    assert ev.counts() == {"alphabets": 20, "characters": 659, "images": 13180}
    assert bg.digest == og.ARCHIVES["background"].digest
    assert ev.digest == og.ARCHIVES["evaluation"].digest
    assert bg.images.shape == (19280, 105, 105) and bg.images.dtype == np.uint8
    assert set(np.unique(bg.images)) == {0, 1}
    assert 0.02 < bg.images.mean() < 0.2  # ink = 1 is the minority
    assert np.bincount(bg.labels).tolist() == [20] * 964
    assert sorted(np.unique(bg.drawers)) == list(range(1, 21))
    assert bg.char_ids.min() == 1 and bg.char_ids.max() == 964
    assert ev.char_ids.min() == 965 and ev.char_ids.max() == 1623


@pytest.mark.parametrize("name,counts", [("small1", (5, 136, 2720)), ("small2", (5, 156, 3120))])
def test_small_sets(data_dir, cache_dir, splits, name, counts):
    ds = load_split(name, data_dir, cache_dir)
    assert (len(ds.alphabets), len(ds.characters), len(ds)) == counts
    # every small-set image is the same character image in the full background set
    bg = splits["background"]
    index = {bg.image_name(i): i for i in range(len(bg))}
    for i in range(0, len(ds), 97):
        assert np.array_equal(ds.images[i], bg.images[index[ds.image_name(i)]])


def test_protocol_splits(splits):
    val, test = splits["validation"], splits["test"]
    assert set(test.alphabets) == LAKE_ALPHABETS
    assert len(val.alphabets) == 10 and not set(val.alphabets) & LAKE_ALPHABETS
    assert len(val) + len(test) == 13180


def test_train_split_is_background(data_dir, cache_dir):
    tr = load_split("train", data_dir, cache_dir)
    assert tr.counts()["alphabets"] == 30 and tr.name == "train"


def test_select_by_drawer(splits):
    ds = splits["test"].select(drawers=range(1, 13))
    assert len(ds) == 12 * len(splits["test"].characters)
    with pytest.raises(ValueError, match="no alphabet"):
        splits["test"].select(alphabets=["Klingon"])


def tiny_spec(path):
    """TINY with the digest of the archive at ``path`` (as the package pins real digests)."""
    try:
        og.decode_archive(path, TINY)
    except og.DataError as e:
        digest = str(e).split("content digest ")[1].split()[0]
    return og.ArchiveSpec(**{**TINY.__dict__, "digest": digest})


def test_synthetic_archive_decodes(tmp_path):
    path = make_zip(tmp_path / "t.zip", tiny_entries())
    ds = og.decode_archive(path, tiny_spec(path))
    assert ds.counts() == {"alphabets": 2, "characters": 4, "images": 80}


def test_missing_archive_says_where(tmp_path, monkeypatch):
    monkeypatch.delenv("ONESHOT_DATA", raising=False)
    with pytest.raises(og.DataError, match=r"images_background\.zip not found.*looked in"):
        og.find_archive("background", tmp_path, tmp_path / "cache", allow_download=False)
    (tmp_path / "images_background.zip").mkdir()  # unpacked by hand, under the zip's name
    monkeypatch.setenv("ONESHOT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(og.DataError, match=r"images_background\.zip \(data_dir: a folder, not "
                       r"the zip file\).*nowhere/images_background\.zip \(\$ONESHOT_DATA: "
                       r"absent\)"):
        og.find_archive("background", tmp_path, tmp_path / "cache", allow_download=False)
    # a --data-dir that is no folder is a typo: said, not passed over for $ONESHOT_DATA's
    monkeypatch.setenv("ONESHOT_DATA", str(tmp_path))
    with pytest.raises(og.DataError, match=r"data_dir \(--data-dir\) .*typo: no such folder"):
        og.find_archive("background", tmp_path / "typo", tmp_path / "cache")


def test_truncated_zip(tmp_path, data_dir):
    raw = (data_dir / "images_background_small1.zip").read_bytes()
    bad = tmp_path / "images_background_small1.zip"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(og.DataError, match="not a readable zip"):
        og.decode_archive(bad, "small1")


def test_corrupt_entry(tmp_path):
    entries = tiny_entries()
    path = make_zip(tmp_path / "t.zip", entries)
    raw = bytearray(path.read_bytes())
    name = sorted(entries)[5].encode()
    pos = raw.index(name) + len(name) + 10  # inside the first entry's data
    raw[pos: pos + 20] = b"\0" * 20
    path.write_bytes(bytes(raw))
    with pytest.raises(og.DataError, match="cannot read entry|not a readable image"):
        og.decode_archive(path, TINY)


def test_wrong_structure(tmp_path):
    entries = tiny_entries()
    entries["images_tiny/Alpha0/extra/deeper/0001_01.png"] = next(iter(entries.values()))
    with pytest.raises(og.DataError, match="unexpected entry"):
        og.decode_archive(make_zip(tmp_path / "t.zip", entries), TINY)


def test_wrong_counts(tmp_path):
    entries = tiny_entries()
    del entries[sorted(entries)[3]]
    with pytest.raises(og.DataError, match="has 19 images"):
        og.decode_archive(make_zip(tmp_path / "t.zip", entries),
                          og.ArchiveSpec(**{**TINY.__dict__, "images": 79}))
    with pytest.raises(og.DataError, match="79 images, expected 2 / 4 / 80"):
        og.decode_archive(make_zip(tmp_path / "t.zip", entries), TINY)


def test_non_image_file(tmp_path):
    entries = tiny_entries()
    entries[sorted(entries)[0]] = b"this is not a png"
    with pytest.raises(og.DataError, match=r"0001_01\.png: not a readable image"):
        og.decode_archive(make_zip(tmp_path / "t.zip", entries), TINY)


def test_wrong_image_size(tmp_path):
    entries = tiny_entries()
    entries[sorted(entries)[0]] = png_bytes(np.zeros((64, 64), np.uint8))
    with pytest.raises(og.DataError, match="image is 64x64, 105x105 expected"):
        og.decode_archive(make_zip(tmp_path / "t.zip", entries), TINY)


def test_non_binary_image(tmp_path):
    entries = tiny_entries()
    entries[sorted(entries)[0]] = png_bytes(np.full((105, 105), 0.5), mode="L")
    with pytest.raises(og.DataError, match="not binary"):
        og.decode_archive(make_zip(tmp_path / "t.zip", entries), TINY)


def test_wrong_content_digest(tmp_path):
    path = make_zip(tmp_path / "t.zip", tiny_entries())
    spec = og.ArchiveSpec(**{**TINY.__dict__, "digest": "0" * 64})
    with pytest.raises(og.DataError, match="differs from the pinned"):
        og.decode_archive(path, spec)


@pytest.mark.parametrize("damage", ["garbage-manifest", "old-format", "truncated-payload",
                                    "missing-payload"])
def test_broken_cache_is_rebuilt(tmp_path, data_dir, damage):
    cache = tmp_path / "cache"
    first = og.load_archive("small1", data_dir, cache)
    payload, manifest = cache / "small1.npz", cache / "small1.json"
    if damage == "garbage-manifest":
        manifest.write_text("{not json")
    elif damage == "old-format":
        meta = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**meta, "format": 0}))
    elif damage == "truncated-payload":
        payload.write_bytes(payload.read_bytes()[:1000])
    else:
        payload.unlink()
    with pytest.raises(og.DataError):
        og.read_cache("small1", cache)
    again = og.load_archive("small1", data_dir, cache)  # rebuilt, not trusted
    assert np.array_equal(again.images, first.images)
    assert og.read_cache("small1", cache).digest == first.digest


def test_cache_write_is_atomic(tmp_path, data_dir, monkeypatch):
    cache = tmp_path / "cache"

    def boom(*a, **k):
        raise KeyboardInterrupt  # an interrupted write

    monkeypatch.setattr(og.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        og.load_archive("small1", data_dir, cache)
    assert not (cache / "small1.npz").exists() and not (cache / "small1.json").exists()
    assert list(cache.iterdir()) == []  # no temporary file left behind


# ---- download against a local server ------------------------------------------------------

