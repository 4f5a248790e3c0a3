"""Class-disjoint splits: by group or class, seeded, saved and checked, minimums refused."""

from __future__ import annotations

import json

import pytest
from support import class_folder

from oneshot.data.dataset import DataError
from oneshot.data.partition import PARTS, ClassSplit, split_classes
from oneshot.datasets import folder_split, load_data, load_folder_part


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    root = tmp_path_factory.mktemp("grouped") / "letters"
    names = [f"g{g}/c{c}" for g in range(5) for c in range(4)]
    class_folder(root, names, per_class=[2 + (i % 3) for i in range(len(names))])
    return load_data(root, cache=root.parent / "cache")


def test_split_by_groups_is_disjoint_and_seeded(grouped):
    s = split_classes(grouped, seed=1)
    assert s.by == "groups" and {p: len(s.parts[p]) for p in PARTS} == {
        "train": 3, "validation": 1, "test": 1}
    parts = [set(s.characters(grouped, p)) for p in PARTS]
    assert sum(map(len, parts)) == len(grouped.characters) and not parts[0] & parts[2]
    assert s.parts == split_classes(grouped, seed=1).parts
    assert any(split_classes(grouped, seed=k).parts != s.parts for k in range(2, 6))
    test = s.select(grouped, "test")
    assert test.name == "letters-test" and len(test.alphabets) == 1


def test_split_by_classes_and_saved(grouped, tmp_path):
    s = split_classes(grouped, seed=0, by="classes")
    assert {p: len(s.parts[p]) for p in PARTS} == {"train": 12, "validation": 4, "test": 4}
    s.save(tmp_path / "split.json")
    again = ClassSplit.load(tmp_path / "split.json", grouped)
    assert again.parts == s.parts and again.by == "classes"
    assert folder_split(grouped, tmp_path / "split.json").parts == s.parts


def test_saved_split_must_fit_the_data(grouped, tmp_path):
    d = split_classes(grouped).to_dict()
    d["test"] = d["test"] + ["nope"]
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(DataError, match=r"bad.json: groups \['nope'\] are not in dataset"):
        ClassSplit.load(tmp_path / "bad.json", grouped)
    d = split_classes(grouped).to_dict()
    d["test"] = d["test"] + d["train"][:1]
    (tmp_path / "twice.json").write_text(json.dumps(d))
    with pytest.raises(DataError, match="in more than one part"):
        ClassSplit.load(tmp_path / "twice.json", grouped)
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a class split"):
        ClassSplit.load(tmp_path / "junk.json")


def test_too_small_is_refused_with_counts(tmp_path):
    small = load_data(class_folder(tmp_path / "few", ["a", "b", "c", "d", "e"], per_class=2),
                      cache=tmp_path / "c")
    with pytest.raises(DataError, match=r"\(5 classes\) is too small to split by "
                       r"classes: train / validation / test get 3 / 1 / 1 classes, at least "
                       r"2 / 2 / 2 needed; add classes \(at least 8 for a split by classes\)"):
        split_classes(small)  # (another seed cannot help a split by classes)
    one = load_data(class_folder(tmp_path / "one", [f"c{i}" for i in range(10)],
                                 per_class=[2] * 9 + [1]), cache=tmp_path / "c")
    with pytest.raises(DataError, match=r"'one/c9' \(1\)"):
        split_classes(one)


def test_load_folder_part(grouped, tmp_path):
    root = tmp_path / "letters"
    names = [f"g{g}/c{c}" for g in range(5) for c in range(4)]
    class_folder(root, names, per_class=[2 + (i % 3) for i in range(len(names))])
    test = load_folder_part(root, "test", cache=tmp_path / "c")
    assert test.characters == split_classes(grouped).select(grouped, "test").characters
    assert len(load_folder_part(root, "all", cache=tmp_path / "c")) == len(grouped)
    with pytest.raises(DataError, match="part 'everything'"):
        load_folder_part(root, "everything", cache=tmp_path / "c")
    with pytest.raises(DataError, match="neither an Omniglot split"):
        load_data(tmp_path / "missing")


def test_saved_split_of_a_flat_folder_applies_to_it_renamed(tmp_path):
    names = [f"c{i}" for i in range(10)]
    first = load_data(class_folder(tmp_path / "scans", names, per_class=2), cache=tmp_path / "c")
    split = split_classes(first, seed=3)
    split.save(tmp_path / "split.json")
    (tmp_path / "scans").rename(tmp_path / "scans-2026")
    test = load_folder_part(tmp_path / "scans-2026", "test", tmp_path / "split.json",
                            cache=tmp_path / "c")
    assert [c.split("/")[1] for c in test.characters] == \
        [c.split("/")[1] for c in split.characters(first, "test")]
    assert test.characters[0].startswith("scans-2026/")
    class_folder(tmp_path / "other", [f"d{i}" for i in range(10)], per_class=2)
    with pytest.raises(DataError, match=r"classes \['scans/c"):
        load_folder_part(tmp_path / "other", "test", tmp_path / "split.json", cache=tmp_path / "c")


def test_the_same_picture_in_two_parts_is_found(tmp_path):
    """A class copied under another name can land in train and test: the test part was then
    not new to the model, and nothing said so (review)."""
    import shutil

    from oneshot.data.partition import shared_pictures

    root = class_folder(tmp_path / "f", [f"c{i}" for i in range(10)], per_class=2)
    split = split_classes(load_data(root, cache=tmp_path / "c"), seed=0)
    train, test = sorted(split.parts["train"]), sorted(split.parts["test"])
    shutil.rmtree(root / test[0].split("/")[1])
    shutil.copytree(root / train[0].split("/")[1], root / test[0].split("/")[1])
    ds = load_data(root, cache=tmp_path / "c")
    assert shared_pictures(split, ds) == [f"{train[0]} (train) = {test[0]} (test)"]
    assert shared_pictures(split_classes(load_data(class_folder(
        tmp_path / "g", [f"c{i}" for i in range(10)], per_class=2), cache=tmp_path / "c")),
        load_data(tmp_path / "g", cache=tmp_path / "c")) == []
