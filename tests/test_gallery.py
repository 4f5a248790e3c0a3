"""Galleries keep what users enrolled: concurrent writers (real processes) lose nothing, damaged
or crafted files are refused with a clear error, NaN never enters, ``--crop`` never silently
mismatches a gallery."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from support import class_folder, glyph

from oneshot.cli import main
from oneshot.data.dataset import DataError
from oneshot.data.folder import list_folder, scan_folder
from oneshot.data.images import ImageError
from oneshot.errors import UsageError
from oneshot.gallery import GALLERY_FORMAT, GalleryError, read_gallery
from oneshot.inference import OneShotClassifier


def _enrol_cmd(model, gallery, folder) -> list[str]:
    return [sys.executable, "-m", "oneshot", "enrol", "--model", str(model), "--gallery",
            str(gallery), str(folder), "--json"]


def test_concurrent_enrol_loses_no_class(tiny_model_file, tmp_path):
    gallery = tmp_path / "g.npz"
    base = class_folder(tmp_path / "base", [f"base{i}" for i in range(5)])
    assert main(["enrol", "--model", str(tiny_model_file), "--gallery", str(gallery),
                 str(base)]) == 0
    folders = [class_folder(tmp_path / f"w{w}", [f"w{w}c{i}" for i in range(3)], seed=w)
               for w in range(4)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(_enrol_cmd(tiny_model_file, gallery, f), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in folders]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    g = read_gallery(gallery)
    assert len(set(g.labels)) == 5 + 4 * 3, sorted(set(g.labels))
    assert len(g.labels) == 17  # and nothing twice


def test_damaged_and_crafted_galleries_are_refused(tiny_model_file, tmp_path, capsys):
    clf = OneShotClassifier.load(tiny_model_file)
    clf.enrol([glyph("bar"), glyph("cross")], ["bar", "cross"])
    good = tmp_path / "good.npz"
    clf.save(good)
    raw = good.read_bytes()
    bad = {"empty": b"", "truncated": raw[: len(raw) // 2], "text": b"not a gallery"}
    with np.load(good) as z:
        emb, meta = z["embeddings"], json.loads(str(z["meta"]))
    crafted = {"labels-int": {**meta, "labels": [1, 2]},
               "no-preprocessing": {k: v for k, v in meta.items() if k != "preprocessing"},
               "meta-list": [1, 2]}
    for name, m in crafted.items():
        buf = io.BytesIO()
        np.savez(buf, embeddings=emb, meta=np.array(json.dumps(m)))
        bad[name] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, embeddings=np.full_like(emb, np.nan), meta=np.array(json.dumps(meta)))
    bad["nan"] = buf.getvalue()
    for name, data in bad.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        with pytest.raises(GalleryError, match=str(path)):
            clf.load_gallery(path)
        rc = main(["classify", "--model", str(tiny_model_file), "--gallery", str(path),
                   str(good)])  # the image argument is never reached
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and "Traceback" not in err, (name, err)
    assert meta["format"] == GALLERY_FORMAT


def test_nan_never_enters_a_gallery(tiny_model_file):
    import torch

    clf = OneShotClassifier.load(tiny_model_file)
    with pytest.raises(ImageError, match="NaN"):
        clf.enrol([np.full((105, 105), np.nan)], ["poison"])
    with pytest.raises(UsageError, match="NaN"):
        clf.enrol_embeddings(torch.full((1, clf.embedder.embedding_dim), float("nan")), ["p"])
    assert len(clf) == 0
    clf.enrol([glyph("bar")], ["bar"])
    assert clf.predict([glyph("bar")])[0].label == "bar"


def test_crop_that_cannot_apply_is_an_error(tiny_model_file, tmp_path, capsys):
    support = class_folder(tmp_path / "s", ["a", "b"])
    gallery = tmp_path / "g.npz"
    m = ["--model", str(tiny_model_file)]
    assert main(["enrol", *m, "--gallery", str(gallery), str(support)]) == 0
    q = str(support / "a" / "0.png")
    assert main(["classify", *m, "--crop", "--gallery", str(gallery), q]) == 2
    assert "enrolled with crop=False" in capsys.readouterr().err
    before = gallery.read_bytes()
    assert main(["enrol", *m, "--crop", "--gallery", str(gallery), str(support)]) == 2
    assert "crop=False" in capsys.readouterr().err and gallery.read_bytes() == before
    # without the option, the gallery's own setting applies
    assert main(["classify", *m, "--gallery", str(gallery), q]) == 0


def test_enrol_never_replaces_what_is_not_a_gallery(tiny_model_file, tmp_path, capsys):
    """--replace starts a new gallery over an old gallery, never over an image or a text file
    (the refusal's old hint led there)."""
    folder = class_folder(tmp_path / "sup", ["bar", "cross"])
    photo = tmp_path / "photo.png"
    photo.write_bytes((folder / "bar" / "0.png").read_bytes())
    before = photo.read_bytes()
    base = ["enrol", "--model", str(tiny_model_file), "--gallery"]
    for extra in ([], ["--replace"]):
        assert main(base + [str(photo), str(folder), *extra]) == 2
        assert "is not a oneshot gallery" in capsys.readouterr().err
    assert photo.read_bytes() == before
    gallery = tmp_path / "g.npz"
    assert main(base + [str(gallery), str(folder)]) == 0
    assert main(base + [str(gallery), str(folder), "--replace"]) == 0  # a gallery: replaced
    assert read_gallery(gallery).labels == ["bar", "cross"]



def test_a_class_named_unknown_is_refused(tiny_model_file, tmp_path, capsys):
    """A class folder named "unknown" made a rejection look like a correct match (found by a
    review helper): enrol and classify --support refuse it; nothing is written."""
    folder = class_folder(tmp_path / "sup", ["unknown", "cross"])
    gallery = tmp_path / "g.npz"
    assert main(["enrol", "--model", str(tiny_model_file), "--gallery", str(gallery),
                 str(folder)]) == 2
    err = capsys.readouterr().err
    assert "class label 'unknown': " in err and "not 'unknown'" in err and not gallery.exists()
    assert main(["classify", "--model", str(tiny_model_file), "--support", str(folder),
                 str(folder / "cross" / "0.png")]) == 2
    assert "not 'unknown'" in capsys.readouterr().err


def test_a_gallery_of_an_earlier_preprocessing_is_warned_of(tmp_path, tiny_model_file, caplog):
    """Galleries record the preprocessing version: photos enrolled before EXIF orientation and
    the 2048 px reduction would otherwise be compared, silently, with queries read the new way
    (found in review). Appending keeps the oldest version."""
    import json

    import numpy as np

    from oneshot.inference import OneShotClassifier
    from oneshot.preprocess import VERSION

    clf = OneShotClassifier.load(tiny_model_file)
    bar = np.zeros((40, 40), np.float32)
    bar[10:30, 18:22] = 1
    clf.enrol([bar], ["bar"])
    clf.save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as z:
        meta = json.loads(str(z["meta"]))
    assert meta["preprocessing"]["version"] == VERSION
    del meta["preprocessing"]["version"]  # as galleries made before the version was recorded
    np.savez(tmp_path / "old.npz", embeddings=clf._emb.numpy(), meta=np.array(json.dumps(meta)))
    other = OneShotClassifier.load(tiny_model_file)
    with caplog.at_level("WARNING", logger="oneshot.inference"):
        other.load_gallery(tmp_path / "old.npz")
    assert "enrolled with an earlier preprocessing (version 1" in caplog.text
    assert "16-bit images; images on ruled or squared paper" in caplog.text
    other.enrol([bar.T], ["eq"])
    other.save(tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as z:
        assert json.loads(str(z["meta"]))["preprocessing"]["version"] == 1
    meta["preprocessing"]["version"] = VERSION + 1  # a newer oneshot's (review: silent)
    np.savez(tmp_path / "new.npz", embeddings=clf._emb.numpy(), meta=np.array(json.dumps(meta)))
    caplog.clear()
    with caplog.at_level("WARNING", logger="oneshot.inference"):
        OneShotClassifier.load(tiny_model_file).load_gallery(tmp_path / "new.npz")
    assert f"enrolled by a newer oneshot (preprocessing version {VERSION + 1}" in caplog.text


def test_enrol_embeds_before_taking_the_gallery_lock(tiny_model_file, tmp_path, monkeypatch):
    """Embedding 13,000 images under the lock made a second writer time out (review); with
    --existing skip only the classes the gallery lacks are embedded."""
    import contextlib

    import oneshot.gallery as gallery

    held, embedded = [], []
    real_lock = gallery.gallery_lock

    @contextlib.contextmanager
    def lock(path):
        with real_lock(path):
            held.append(True)
            yield
            held.pop()

    folder = class_folder(tmp_path / "s", ["a", "b", "c"], per_class=2)
    clf = OneShotClassifier.load(tiny_model_file)
    real_embed = clf.embed
    monkeypatch.setattr(clf, "embed", lambda xs: embedded.append((bool(held), len(xs)))
                        or real_embed(xs))
    monkeypatch.setattr(gallery, "gallery_lock", lock)
    gallery.enrol_into_gallery(clf, tmp_path / "g.npz", folder, existing="skip")
    class_folder(folder, ["d"], per_class=2, seed=3)
    gallery.enrol_into_gallery(OneShotClassifier.load(tiny_model_file), tmp_path / "g.npz",
                               folder, existing="skip")
    assert embedded == [(False, 6)]  # the second enrolment's classifier is not wrapped
    clf2 = OneShotClassifier.load(tiny_model_file)
    real2 = clf2.embed
    monkeypatch.setattr(clf2, "embed", lambda xs: embedded.append((bool(held), len(xs)))
                        or real2(xs))
    class_folder(folder, ["e"], per_class=2, seed=4)
    gallery.enrol_into_gallery(clf2, tmp_path / "g.npz", folder, existing="skip")
    assert embedded[1:] == [(False, 2)] and read_gallery(tmp_path / "g.npz").labels.count("e") == 2


def test_a_grouped_folder_enrols_as_group_and_class(tiny_model_file, tmp_path, capsys,
                                                    caplog):
    """`enrol` on DIR/<group>/<class>/<image> (the layout evaluate and train read) said that
    class 'group' had no images (review); its classes are now "group/class", and classify's
    accuracy finds them."""
    root = class_folder(tmp_path / "s", ["latin/a", "latin/b", "greek/a"], per_class=2)
    gallery = tmp_path / "g.npz"
    m = ["--model", str(tiny_model_file), "--gallery", str(gallery)]
    assert main(["enrol", *m, str(root)]) == 0
    assert sorted(set(read_gallery(gallery).labels)) == ["greek/a", "latin/a", "latin/b"]
    capsys.readouterr()
    assert main(["classify", *m, str(root), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert sorted(r["truth"] for r in rows) == ["greek/a"] * 2 + ["latin/a"] * 2 + ["latin/b"] * 2
    os.chdir(root / "latin")  # a path typed inside a group folder has the same truth
    try:
        assert main(["classify", *m, "a", "--json"]) == 0
    finally:
        os.chdir(tmp_path)
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [r["truth"] for r in rows] == ["latin/a", "latin/a"]
    # the same images enrolled flat, then grouped: every class would be there twice (review)
    g2 = ["--model", str(tiny_model_file), "--gallery", str(tmp_path / "g2.npz")]
    assert main(["enrol", *g2, str(root / "latin")]) == 0
    with caplog.at_level(logging.WARNING, logger="oneshot.gallery"):
        assert main(["enrol", *g2, str(root), "--existing", "skip"]) == 0
    assert "2 of these classes hold images the gallery has under another class name " \
           "('latin/a' = 'a', 'latin/b' = 'b')" in caplog.text
    # class folders holding a sub-folder (thumbnails, say) are still classes: the review's
    # a/thumbs and b/thumbs were enrolled as the classes, the real images left out
    flat = class_folder(tmp_path / "f", ["a", "b"], per_class=3)
    class_folder(flat, ["a/thumbs", "b/thumbs"], per_class=1, seed=5)
    assert sorted({c for _, c in list_folder(flat)}) == ["a", "b"]
    assert len(list_folder(flat)) == 6
    with pytest.raises(DataError, match=r"class 'f/a' holds folders \('thumbs'\)"):
        scan_folder(flat)  # training and evaluation refuse it, naming it
    # one group with a stray image beside its class folders is still a group (it was taken
    # for a class, its class folders left out); the image is left out, named
    one = class_folder(tmp_path / "one", ["g/c1", "g/c2"], per_class=2)
    shutil.copy(next((one / "g" / "c1").iterdir()), one / "g" / "stray.png")
    with caplog.at_level(logging.WARNING, logger="oneshot.data"):
        assert sorted({c for _, c in list_folder(one)}) == ["g/c1", "g/c2"]
    assert "left out 1 image(s) that are in no class folder" in caplog.text
    (root / "cyrillic" / "x" / "y").mkdir(parents=True)  # one level too deep: named
    with pytest.raises(ImageError, match=r"class 'cyrillic/x' has no images \(it holds "
                                         r"folders: 'y'"):
        list_folder(root)
