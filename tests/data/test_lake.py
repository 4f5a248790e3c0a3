"""The data layer on the real archives, and every error path on synthetic files."""

from __future__ import annotations

import hashlib
import zipfile

from oneshot.data import omniglot as og


def test_lake_answer_keys(data_dir, lake_runs, splits):
    assert len(lake_runs) == 20
    with zipfile.ZipFile(data_dir / "all_runs.zip") as z:
        for r in lake_runs:
            pairs = dict(line.split() for line in
                         z.read(f"{r.name}/class_labels.txt").decode().splitlines() if line)
            assert list(r.test_files) == sorted(pairs)
            for i, t in enumerate(r.test_files):
                assert r.train_files[r.answers[i]] == pairs[t]
    assert lake_runs[0].answers[:5].tolist() == [7, 8, 1, 18, 9]  # run01: item01 -> class08 ...
    # every run image is an image of the test alphabets, and each answer is the same character
    test = splits["test"]
    where = {hashlib.sha1(img.tobytes()).hexdigest(): i for i, img in enumerate(test.images)}
    for r in lake_runs:
        tr = [where[hashlib.sha1(x.tobytes()).hexdigest()] for x in r.train_images]
        te = [where[hashlib.sha1(x.tobytes()).hexdigest()] for x in r.test_images]
        for i, j in enumerate(r.answers):
            assert test.labels[te[i]] == test.labels[tr[j]]
            assert test.drawers[te[i]] != test.drawers[tr[j]]


# ---- error paths -------------------------------------------------------------------------

TINY = og.ArchiveSpec("tiny", "images_tiny.zip", 2, 4, 80, "", "")


