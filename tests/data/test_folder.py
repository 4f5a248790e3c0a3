"""Folders of the user's classes: layouts, the content-keyed cache, and the stored images."""

from __future__ import annotations

import logging
import zipfile

import numpy as np
import pytest
from PIL import Image
from support import class_folder

from oneshot.data.dataset import DataError
from oneshot.data.folder import choose_per_class, list_folder, scan_folder
from oneshot.data.images import ImageError
from oneshot.datasets import load_data, load_folder_dataset
from oneshot.preprocess import STORED_SIZE


def test_flat_and_grouped_layouts(tmp_path):
    flat = scan_folder(class_folder(tmp_path / "flat", ["b", "a"], per_class=[2, 3]))
    assert not flat.grouped and flat.classes == ("flat/a", "flat/b") and flat.images == 5
    assert [len(f) for f in flat.files] == [3, 2]  # a, then b
    grouped = scan_folder(class_folder(tmp_path / "g", ["x/c1", "x/c2", "y/c1"]))
    assert grouped.grouped and grouped.groups == ["x", "y"]
    assert grouped.classes == ("x/c1", "x/c2", "y/c1")


@pytest.mark.parametrize("make, message", [
    (lambda r: (r / "a").mkdir(parents=True), "class 'r/a' has no images"),
    (lambda r: class_folder(r, ["a", "g/b"]), "mixes classes and groups"),
    (lambda r: r.mkdir(), "no class folders"),
])
def test_bad_layouts_are_named(tmp_path, make, message):
    make(tmp_path / "r")
    with pytest.raises(DataError, match=message):
        scan_folder(tmp_path / "r")


def test_cached_once_and_keyed_by_content(tmp_path, caplog):
    root = class_folder(tmp_path / "mine", ["g/a", "g/b", "h/c"], per_class=[2, 3, 2])
    cache = tmp_path / "cache"
    ds = load_folder_dataset(root, cache)
    assert ds.images.shape == (7, STORED_SIZE, STORED_SIZE) and ds.images.dtype == np.uint8
    assert set(np.unique(ds.images)) <= {0, 1} and ds.images.sum() > 0
    assert ds.alphabets == ("g", "h") and ds.drawers.tolist() == [1, 2, 1, 2, 3, 1, 2]
    assert len(list(cache.glob("folder-*.npz"))) == 1
    again = load_folder_dataset(root, cache)  # from the cache, digest recomputed
    assert again.digest_verified and again.digest == ds.digest
    assert np.array_equal(again.images, ds.images)
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(root / "g" / "a" / "new.png")
    img = np.array(Image.open(root / "g" / "a" / "new.png"))
    img[5:20, 10:12] = 0
    Image.fromarray(img).save(root / "g" / "a" / "new.png")
    added = load_folder_dataset(root, cache)
    assert len(added) == 8 and added.digest != ds.digest
    Image.fromarray(img[::-1]).save(root / "g" / "a" / "new.png")  # same name, new content
    assert load_folder_dataset(root, cache).digest != added.digest
    assert len(list(cache.glob("folder-*.npz"))) == 3
    # a damaged cache is noticed and rebuilt
    payload = sorted(cache.glob("folder-*.npz"), key=lambda p: p.stat().st_mtime)[-1]
    payload.write_bytes(b"junk")
    with caplog.at_level(logging.WARNING):
        rebuilt = load_folder_dataset(root, cache)
    assert "rebuilding" in caplog.text and zipfile.is_zipfile(payload)
    assert rebuilt.digest == load_folder_dataset(root, cache).digest


def test_any_image_goes_through_the_one_preprocessing(tmp_path):
    """Colour, white-on-black, any size: the same ink as black-on-white of another size."""
    ink = np.zeros((40, 60), np.float32)
    ink[10:30, 20:25] = 1
    (tmp_path / "d" / "g" / "bar").mkdir(parents=True)
    Image.fromarray(((1 - ink) * 255).astype(np.uint8)).save(tmp_path / "d/g/bar/a.png")
    rgb = np.stack([ink * 255, ink * 0, ink * 255], -1).astype(np.uint8)  # magenta on black
    Image.fromarray(rgb).resize((120, 80), Image.NEAREST).save(tmp_path / "d/g/bar/b.jpg")
    ds = load_data(tmp_path / "d", cache=tmp_path / "c")
    a, b = ds.images.astype(int)
    assert abs(a - b).sum() < 0.02 * a.sum()


def test_omniglot_pngs_give_the_archives_images(splits, tmp_path):
    """An Omniglot character written out as files is decoded to exactly its cached pixels."""
    ds = splits["test"]
    for c in range(2):
        folder = tmp_path / "omni" / ds.characters[c]
        folder.mkdir(parents=True)
        for i in np.flatnonzero(ds.labels == c):
            Image.fromarray(((1 - ds.images[i]) * 255).astype(np.uint8)).convert("1").save(
                folder / f"{int(ds.char_ids[c]):04d}_{int(ds.drawers[i]):02d}.png")
    mine = load_data(tmp_path / "omni", cache=tmp_path / "c")
    want = ds.select(characters=ds.characters[:2])
    assert mine.characters == want.characters
    assert np.array_equal(mine.images, want.images)


def test_unreadable_file_is_named(tmp_path):
    root = class_folder(tmp_path / "r", ["a", "b"], per_class=2)
    (root / "a" / "notes.png").write_text("not an image")
    with pytest.raises(ImageError, match="notes.png: not a readable image"):
        load_folder_dataset(root, tmp_path / "c")


def test_non_images_are_left_out_and_every_bad_image_is_named_at_once(tmp_path, caplog):
    """A README.txt made every command on the folder fail, and a folder with several bad
    files took one run per file to clean (found by a review helper)."""
    root = class_folder(tmp_path / "r", ["a", "b"], per_class=2)
    (root / "a" / "README.txt").write_text("notes")
    (root / "b" / "scan.PDF").write_bytes(b"%PDF-1.4")
    with caplog.at_level(logging.WARNING, logger="oneshot.data"):
        ds = load_folder_dataset(root, tmp_path / "c")
    assert len(ds.images) == 4 and "README.txt" in caplog.text and "scan.PDF" in caplog.text
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "fake.jpg").write_text("no")
    with pytest.raises(ImageError, match="2 of 6 images cannot be used") as e:
        load_folder_dataset(root, tmp_path / "c")
    assert "empty.png" in str(e.value) and "fake.jpg" in str(e.value)


def test_a_copied_folder_gets_its_own_class_names(tmp_path):
    """The cache key covered relative file names only, so a copy of a flat folder came back
    with the original's class names ("big/k02" for bigr/k02), and its runs could not resume."""
    import shutil

    a = load_folder_dataset(class_folder(tmp_path / "big", ["k1", "k2"]), tmp_path / "c")
    shutil.copytree(tmp_path / "big", tmp_path / "bigr")
    b = load_folder_dataset(tmp_path / "bigr", tmp_path / "c")
    assert a.characters == ("big/k1", "big/k2") and b.characters == ("bigr/k1", "bigr/k2")
    assert b.name == "bigr" and np.array_equal(a.images, b.images)


def test_choose_per_class(tmp_path):
    items = list_folder(class_folder(tmp_path / "r", ["a", "b"], per_class=[4, 1]))
    first = choose_per_class(items, 2)
    assert [(p.name, c) for p, c in first] == [("0.png", "a"), ("1.png", "a"), ("0.png", "b")]
    rand = choose_per_class(items, 2, "random", seed=3)
    assert rand == choose_per_class(items, 2, "random", seed=3) and len(rand) == 3
    with pytest.raises(ImageError, match="per class 0"):
        choose_per_class(items, 0)


def test_a_folder_named_like_a_split_is_not_taken_for_the_split(tmp_path, monkeypatch):
    """`--data test` with a folder ./test trained on Omniglot's test alphabets, silently
    (found by a review helper): --data always means a folder; a name alone means a split."""
    from oneshot.datasets import load_folder_part
    from oneshot.training import apply_overrides, preset
    from oneshot.training.data import load_training_data

    class_folder(tmp_path / "test", [f"c{k}" for k in range(8)], per_class=2)
    monkeypatch.chdir(tmp_path)
    assert load_folder_part("test", cache=tmp_path / "c").characters[0] == "test/c0"
    cfg = apply_overrides(preset("small"), {"data": "test"})
    train, _, split = load_training_data(cfg, cache=tmp_path / "c")
    assert split is not None and all(c.startswith("test/c") for c in train.characters)


def test_a_split_name_that_is_also_a_folder_here_says_which_it_took(
        tmp_path, monkeypatch, caplog, data_dir, cache_dir, capsys):
    """`oneshot data --split test` with a folder ./test took Omniglot's split without a word;
    the warning is for names the user typed, not for defaults (training's train_split)."""
    from oneshot.cli import main

    class_folder(tmp_path / "test", [f"c{k}" for k in range(2)], per_class=2)
    class_folder(tmp_path / "train", [f"c{k}" for k in range(2)], per_class=2)
    monkeypatch.chdir(tmp_path)
    common = ["--data-dir", str(data_dir), "--cache", str(cache_dir)]
    with caplog.at_level(logging.WARNING, logger="oneshot"):
        assert main(["data", "--split", "test", *common]) == 0
        assert "'test' means Omniglot's test split; a folder of that name is here too: " \
               "write ./test for the folder" in caplog.text
        assert " 10 alphabets " in capsys.readouterr().out  # Omniglot's test alphabets
        caplog.clear()
        assert main(["data", "--split", "./test", *common]) == 0
        assert load_data("./test", cache=cache_dir).characters == ("test/c0", "test/c1")
        assert main(["data", *common]) == 0  # the defaults: background, evaluation
        load_data("train", data_dir, cache_dir)  # the library, as training calls it
        assert "means Omniglot" not in caplog.text


def test_a_folder_stores_what_the_classifier_makes_of_its_files(tmp_path):
    """Folders were stored without the classifier's cleaning: a folder of filled shapes scored
    100 % in `evaluate --data` and 8 % in `classify` (review). A blank image is named."""
    from oneshot.preprocess import ink_squares

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / "f" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            a = np.full((200, 200), 230, np.uint8)
            a[40:160, 60 + 20 * c: 100 + 20 * c] = 20  # a bold bar (40 px), thinned when read
            a[rng.random(a.shape) < 0.01] = 0  # specks
            Image.fromarray(a).save(tmp_path / "f" / f"c{c}" / f"{i}.png")
    ds = load_data(tmp_path / "f", cache=tmp_path / "cache")
    for k in range(len(ds)):
        path = tmp_path / "f" / f"c{ds.labels[k]}" / f"{k % 2}.png"
        assert np.array_equal(ds.images[k], ink_squares(str(path))[0] >= 0.5)
    Image.fromarray(np.full((50, 50), 200, np.uint8)).save(tmp_path / "f" / "c0" / "grey.png")
    with pytest.raises(ImageError, match=r"grey.png: image is blank"):
        load_data(tmp_path / "f", cache=tmp_path / "cache")


def test_what_a_folder_leaves_out_is_said(tmp_path, caplog):
    """A link to nothing and an image beside the class folders were dropped without a word;
    macOS's __MACOSX folder was taken for a group (review)."""
    root = class_folder(tmp_path / "f", ["a", "b"], per_class=2)
    (root / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "stray.png").write_bytes((root / "a" / "0.png").read_bytes())
    (root / "__MACOSX" / "a").mkdir(parents=True)
    (root / "__MACOSX" / "a" / "._0.png").write_bytes(b"resource fork")
    with caplog.at_level(logging.WARNING):
        index = scan_folder(root)
    assert index.classes == ("f/a", "f/b") and index.images == 4
    assert "left out 1 link(s) to nothing: gone.png" in caplog.text
    assert "left out 1 image(s) that are in no class folder" in caplog.text
    assert "stray.png" in caplog.text


def test_a_file_changed_while_decoding_is_not_cached(tmp_path, monkeypatch, caplog):
    """An image edited between the cache key and the decoding was cached under the old
    content's key: put back, the folder loaded the edited pixels from then on (review)."""
    import oneshot.data.folder as folder

    root = class_folder(tmp_path / "f", ["a", "b"], per_class=2)
    original = (root / "a" / "0.png").read_bytes()
    real = folder.decode_folder

    def edit_then_decode(index, *a, **k):
        (root / "a" / "0.png").write_bytes((root / "b" / "1.png").read_bytes())
        return real(index, *a, **k)

    monkeypatch.setattr(folder, "decode_folder", edit_then_decode)
    with caplog.at_level(logging.WARNING):
        load_folder_dataset(root, tmp_path / "cache")
    assert "files changed while being read" in caplog.text
    monkeypatch.setattr(folder, "decode_folder", real)
    (root / "a" / "0.png").write_bytes(original)
    again = load_folder_dataset(root, tmp_path / "cache")
    fresh = load_folder_dataset(root, tmp_path / "other-cache")
    assert np.array_equal(again.images, fresh.images)
