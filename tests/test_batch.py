"""Classifying many files: folders, failures that do not stop the batch, accuracy by class;
enrolling K per class and what happens to classes already enrolled."""

from __future__ import annotations

import numpy as np
import pytest
from support import class_folder

from oneshot.batch import accuracy_by_class, classify_paths, expand_paths
from oneshot.errors import UsageError
from oneshot.gallery import GalleryError
from oneshot.inference import OneShotClassifier, enrol_into_gallery


@pytest.fixture
def folder(tmp_path):
    return class_folder(tmp_path / "support", ["a", "b", "c"], per_class=3)


def test_classify_folders_and_go_on_after_failures(tiny_model_file, folder, tmp_path):
    clf = OneShotClassifier.load(tiny_model_file)
    clf.enrol_folder(folder)
    (folder / "a" / ".hidden.png").write_bytes(b"ignored")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    files = expand_paths([folder, tmp_path / "broken.png", tmp_path / "gone.png"])
    assert len(files) == 11 and files[0].endswith("a/0.png")
    out = list(classify_paths(clf, [folder, tmp_path / "broken.png", tmp_path / "gone.png"]))
    assert [o.path for o in out] == files
    assert [o.error is not None for o in out] == [False] * 9 + [True, True]
    assert "not a readable image" in out[9].error and "no such file" in out[10].error
    assert out[9].to_json() == {"image": files[9], "error": out[9].error}
    assert all(o.truth == o.path.split("/")[-2] for o in out[:9])
    assert out[0].to_json()["correct"] is True  # an enrolled image matches itself
    assert out[0].enrolled and out[0].to_json()["enrolled"] is True
    assert accuracy_by_class(out) == {}  # ...and is no one-shot success: it is left out
    part = OneShotClassifier.load(tiny_model_file)
    part.enrol([f"{folder}/{c}/0.png" for c in "abc"], list("abc"))
    again = list(classify_paths(part, [folder]))
    assert [o.enrolled for o in again] == [True, False, False] * 3
    assert {c: n for c, (_, n) in accuracy_by_class(again).items()} == {"a": 2, "b": 2, "c": 2}
    # an image whose folder is not a class has no truth
    other = class_folder(tmp_path / "q", ["zzz"], per_class=1)
    (o,) = classify_paths(clf, [other])
    assert o.truth is None and "truth" not in o.to_json() and accuracy_by_class([o]) == {}


def test_enrol_per_class_and_existing_classes(tiny_model_file, folder, tmp_path):
    g = tmp_path / "g.npz"

    def enrol(**kw):
        clf = OneShotClassifier.load(tiny_model_file)
        return enrol_into_gallery(clf, g, folder, **kw), clf

    done, clf = enrol(per_class=1)
    assert done == {"added": ["a", "b", "c"]} and len(clf) == 3
    before = g.read_bytes()
    with pytest.raises(GalleryError, match="3 of these classes are already enrolled"):
        enrol()
    assert g.read_bytes() == before  # nothing changed
    done, clf = enrol(existing="skip")
    assert done == {"added": [], "skipped": ["a", "b", "c"]} and len(clf) == 3
    done, clf = enrol(existing="append")
    assert done["appended"] == ["a", "b", "c"] and len(clf) == 9  # 0.png not twice
    done, clf = enrol(existing="append")
    assert len(clf) == 9
    now = g.read_bytes()
    with pytest.raises(UsageError, match="needs per_class"):  # was ignored: all enrolled
        enrol(existing="replace", pick="random", seed=1)
    assert g.read_bytes() == now
    done, clf = enrol(existing="replace", per_class=2, pick="random", seed=1)
    assert done["replaced"] == ["a", "b", "c"] and len(clf) == 6
    class_folder(folder, ["d"], per_class=2, seed=5)
    done, clf = enrol(existing="skip")
    assert done == {"added": ["d"], "skipped": ["a", "b", "c"]} and len(clf) == 8
    assert np.isfinite(clf._emb.numpy()).all()


def test_pairs_files_as_editors_write_them(tmp_path):
    """A byte-order mark (Notepad) made the first path '\\ufeffa.png'; Latin-1 text was a
    UnicodeDecodeError traceback; one bad line hid the others; an empty file said nothing."""
    from oneshot.batch import read_pairs

    f = tmp_path / "pairs.txt"
    f.write_bytes("\ufeffa.png\tb.png\r\n# note\r\n\r\nc d\r\n".encode())
    assert read_pairs(str(f)) == [("a.png", "b.png"), ("c", "d")]
    f.write_bytes("café.png b.png\n".encode("latin-1"))
    with pytest.raises(UsageError, match="not a readable UTF-8 text file of pairs"):
        read_pairs(str(f))
    f.write_text("a b c\nok.png ok2.png\nsolo\n")
    with pytest.raises(UsageError, match=r"pairs.txt:1: 3 fields; .*pairs.txt:3: 1 fields"):
        read_pairs(str(f))
    f.write_text("# nothing\n")
    with pytest.raises(UsageError, match="pairs.txt: no pairs"):
        read_pairs(str(f))
