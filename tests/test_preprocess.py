"""The preprocessing's cleaning steps on synthetic glyphs, its options, and its agreement with
the harness (``images_to_tensor``) on real Omniglot images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from oneshot.data.images import ImageError
from oneshot.errors import ConfigError
from oneshot.evaluation.perturbations import get_perturbation, perturbation_rng, to_user_image
from oneshot.imageops import stroke_width
from oneshot.preprocess import (
    DEFAULT,
    LEGACY,
    Preprocessing,
    clean_square,
    images_to_tensor,
    ink_squares,
    normalise_strokes,
    preprocess,
    to_ink,
)


def _char() -> np.ndarray:
    """A character with 6-px strokes (Omniglot-like), float32 (105, 105), ink = 1."""
    g = np.zeros((105, 105), np.float32)
    g[20:85, 30:36] = 1
    g[50:56, 30:80] = 1
    g[25:31, 60:80] = 1
    return g


def _user(name: str, x: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    x = _char() if x is None else x
    return to_user_image(get_perturbation(name)(x, perturbation_rng(seed, name, 0)))


def _clean(img) -> np.ndarray:
    return ink_squares(img)[0]


def test_options_are_checked():
    with pytest.raises(ConfigError, match="background="):
        Preprocessing(background="mean")
    with pytest.raises(ConfigError, match="threshold="):
        Preprocessing(threshold=1.5)
    with pytest.raises(ConfigError, match="need a threshold"):
        Preprocessing(threshold=None)
    assert not LEGACY.cleans and DEFAULT.cleans
    assert dataclasses.replace(DEFAULT, threshold=0.5).threshold == 0.5


@pytest.mark.parametrize("name", ["grey-background", "gradient-background", "invert",
                                  "gaussian-0.2", "salt-pepper-5%", "border-line", "jpeg-20"])
def test_cleaning_restores_the_character(name):
    """Paper, noise, frames and compression are undone: at most a few edge pixels differ."""
    out = _clean(_user(name))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert (out != _char()).sum() <= 0.03 * _char().sum(), name


def test_background_plane_versus_median():
    shaded, paper = _user("gradient-background"), _char() == 0
    assert to_ink(shaded)[paper].max() < 0.01
    assert to_ink(shaded, background="median")[paper].max() > 0.3  # one level leaves shading
    with pytest.raises(ConfigError):
        to_ink(shaded, background="none")


def test_stroke_width_is_normalised_outside_omniglot_range():
    x = _char()
    assert np.array_equal(normalise_strokes(x > 0.5, 5.5), x > 0.5)  # 6 px: left alone
    for name in ("dilate-1", "dilate-2", "erode-1", "erode-2"):
        w = stroke_width(_clean(_user(name)) > 0.5)
        assert 4.5 <= w <= 7.0, (name, w)
    keep = dataclasses.replace(DEFAULT, stroke_width=None)
    assert stroke_width(ink_squares(_user("dilate-2"), options=keep)[0] > 0.5) > 9


def test_thinning_keeps_the_thin_parts_of_a_bold_image():
    """A filled disk on a 3-px stem (a lollipop, an icon): the disk's width made the mean
    stroke width 17 px, and thinning to 5.5 px erased the stem entirely (review)."""
    yy, xx = np.mgrid[:105, :105]
    m = ((yy - 30) ** 2 + (xx - 52) ** 2 <= 20 ** 2) | ((abs(xx - 52) <= 1) & (yy < 95))
    assert stroke_width(m) > 7  # thinned
    out = normalise_strokes(m, 5.5) > 0.5
    stem = out[60:90, 45:60]
    assert stem.any(1).all() and stem.sum(1).max() <= 3  # all of it, at its own width
    assert out[30, 52] and out[30].sum() < m[30].sum()  # the disk thinned all the same
    for stem in (8, 9, 10, 11, 12, 16, 20):  # an H of bold stems and a 2-px bar: the bar stays
        h = np.zeros((105, 105), bool)
        h[5:100, 2:2 + stem] = h[5:100, 103 - stem:103] = h[50:52, 2 + stem:103 - stem] = True
        out = normalise_strokes(h, 5.5)
        assert out[50:52, 50].min() == 1 and (out[:, 50] > 0).sum() == 2, stem  # own width
    ring = np.zeros((105, 105), bool)
    ring[15:90, 15:90] = True
    ring[30:75, 30:75] = False  # a 15-px frame, and a scan's pinholes along its top bar
    ring[22, 25:80:8] = False
    out = normalise_strokes(ring, 5.5) > 0.5  # the holes neither open the bar up nor keep it
    assert 4 <= out[15:30, 50].sum() <= 8 and 4 <= out[15:30, 29].sum() <= 8  # thinned
    bold = np.zeros((105, 105), bool)
    bold[20:85, 30:44] = bold[45:59, 30:80] = True  # 14-px strokes, nothing thin
    out = normalise_strokes(bold, 5.5) > 0.5
    assert 4.5 <= stroke_width(out) <= 7.0 and not (out & ~bold).any()


def test_specks_go_but_small_parts_of_the_character_stay():
    x = _char()
    x[90:94, 90:94] = 1  # a 16-pixel dot: part of the character
    noisy = x.copy()
    noisy[5, 50] = noisy[100, 10] = noisy[70, 95:97] = 1  # specks of 1 and 2 pixels
    out = _clean(to_user_image(noisy))
    assert np.array_equal(out, x)
    keep = dataclasses.replace(DEFAULT, min_ink=0)
    assert np.array_equal(ink_squares(to_user_image(noisy), options=keep)[0], noisy)


def test_crop_uses_the_cleaned_ink():
    small = np.zeros((105, 105), np.float32)
    small[40:60, 45:48] = small[40:43, 45:60] = 1  # a small character, 3-px strokes
    noisy = to_user_image(np.clip(small + (np.random.default_rng(0).random((105, 105)) < 0.02),
                                  0, 1))
    a = clean_square(to_ink(to_user_image(small)), DEFAULT, crop=True)
    b = clean_square(to_ink(noisy), DEFAULT, crop=True)
    assert a.shape == (105, 105) and a.sum() > 4 * small.sum()  # enlarged

    def box(im):
        r, c = np.nonzero(im > 0.5)
        return np.array([r.min(), r.max(), c.min(), c.max()])

    # the specks are gone; the few touching a stroke move the box by a few pixels
    assert np.abs(box(a) - box(b)).max() <= 5
    legacy = dataclasses.replace(LEGACY, background="plane")
    assert len(ink_squares(noisy, True, options=legacy)[0]) > 130  # uncleaned: all kept


def test_other_sizes_are_cleaned_at_105():
    big = np.kron(_char(), np.ones((4, 4), np.float32))  # 420x420, 24-px strokes
    out = _clean(to_user_image(big))
    assert out.shape == (105, 105) and (out != _char()).sum() <= 0.05 * _char().sum()
    x = preprocess(to_user_image(_char()), 28)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32


def test_ruled_paper_goes_but_a_characters_own_bars_stay():
    """Lines of ruled paper through a character made the shipped model pick the right one of
    20 in 11 % of Lake's trials; a tightly cropped "T" or "E" keeps its bars (as thick as
    its stems), as does a character whose strokes are all lines."""
    off = dataclasses.replace(DEFAULT, clear_rules=False)
    for name in ("ruled-paper", "ruled-slanted", "squared-paper"):
        ruled = _user(name)
        assert (ink_squares(ruled, options=off)[0] != _char()).sum() > 0.5 * _char().sum()
        assert (_clean(ruled) != _char()).sum() <= 0.1 * _char().sum(), name  # stubs stay
    tee = np.zeros((60, 60), np.float32)
    tee[:6, :], tee[:, 27:33] = 1, 1  # the bar spans the image, as thick as the stem
    e = np.zeros((60, 60), np.float32)
    e[:6], e[27:33], e[-6:], e[:, :6] = 1, 1, 1, 1
    for x in (tee, e):  # as without clear_rules
        assert np.array_equal(_clean(to_user_image(x)),
                              ink_squares(to_user_image(x), options=off)[0])
    grid = np.zeros((105, 105), np.float32)
    grid[::15], grid[:, ::15] = 1, 1  # nothing but thin lines: kept as they are
    assert (_clean(to_user_image(grid)) > 0.5).sum() >= grid.sum()


def test_omniglot_images_are_unchanged(splits, lake_runs):
    """Clean Omniglot images (black on white, binary) give exactly the harness's input; the
    exceptions are the few drawings with strokes outside 4.5-7 px, thinned or thickened."""
    images = np.concatenate([lake_runs[0].train_images, lake_runs[0].test_images,
                             splits["test"].images[::40]])
    users = [to_user_image(x.astype(np.float32)) for x in images]
    want = images_to_tensor(images, 28)
    assert torch.equal(preprocess(users, 28, options=LEGACY), want)
    got = preprocess(users, 28)
    same = [torch.equal(g, w) for g, w in zip(got, want)]
    widths = np.array([stroke_width(x.astype(bool)) for x in images])
    inside = (widths >= 4.5) & (widths <= 7.0)
    assert np.array_equal(np.array(same), inside)
    assert inside.mean() > 0.99


def test_large_photos_are_reduced_first_and_stay_small_in_memory(tmp_path):
    """A 6000x3000 photo (grey paper, a character drawn large) is read at 2048 px at most: the
    result is that of the box-reduced image, and the peak allocation stays near the input's
    size (before: an (H*W, 3) float64 design for the background plane, over a gigabyte)."""
    import tracemalloc

    from PIL import Image

    from oneshot.preprocess import MAX_SIDE

    big = np.full((3000, 6000), 0.85, np.float32)
    big[600:2400, 2400:2600] = 0.1  # strokes 200 px wide
    big[1400:1600, 2400:3800] = 0.1
    tracemalloc.start()
    try:
        x = preprocess(big, 56)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * big.nbytes, f"peak {peak / 1e6:.0f} MB for a {big.nbytes / 1e6:.0f} MB image"
    small = np.asarray(Image.fromarray(big).reduce(3))  # 6000 / 3 = 2000 <= MAX_SIDE
    assert max(small.shape) <= MAX_SIDE
    torch.testing.assert_close(x, preprocess(small, 56))
    path = tmp_path / "photo.png"
    Image.fromarray((big * 255).astype(np.uint8)).save(path)
    assert (preprocess(str(path), 56) - x).abs().max() < 0.05  # 8-bit file against float array


def test_phone_photos_are_read_upright(tmp_path):
    """A JPEG stored turned, with EXIF orientation 6 (as phones write them), is what every
    viewer shows upright; it was read sideways (found by a review helper)."""
    from PIL import Image

    upright = Image.fromarray(((1 - _char()) * 255).astype(np.uint8))
    upright.save(tmp_path / "plain.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.jpg", exif=exif,
                                                      quality=95)
    a, b = preprocess([str(tmp_path / "plain.png"), str(tmp_path / "phone.jpg")], 56)
    assert (a - b).abs().mean() < 0.02, float((a - b).abs().mean())
    with Image.open(tmp_path / "phone.jpg") as im:  # an opened PIL image too
        assert (preprocess(im, 56)[0] - a).abs().mean() < 0.02


def _encoded(a: np.ndarray, fmt: str = "PNG") -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("make", [
    lambda a: _encoded(((1 - a) * 57000 + 3000).astype(np.uint16)),  # 16-bit scan (I;16)
    lambda a: _encoded(((1 - a) * 57000 + 3000).astype(np.uint16), "TIFF"),
    lambda a: _encoded((1 - a).astype(np.float32), "TIFF"),  # float TIFF (mode F)
    lambda a: (a * 200 + 5).astype(np.int16),  # signed array, dark background
    lambda a: ((1 - a) * 255).astype(np.float64),  # 0-255 floats
    lambda a: np.dstack([np.zeros((105, 105, 3), np.uint8), (a * 255).astype(np.uint8)]),
    lambda a: (1 - a)[..., None],  # (H, W, 1)
], ids=["png16", "tiff16", "tiff-float", "int16", "float255", "rgba-alpha-ink", "hw1"])
def test_any_range_and_layout_reads_as_the_same_character(make):
    """16-bit and float files were clipped to 0-255 (convert("L")), and arrays outside [0, 1]
    had their polarity misjudged: all came out "blank" (found by a review helper)."""
    a = _char()
    torch.testing.assert_close(preprocess(make(a), 56), preprocess(1 - a, 56))


def test_non_real_arrays_are_refused():
    with pytest.raises(ImageError, match="array of complex128; real numbers expected"):
        preprocess(np.zeros((20, 20), complex), 28)


def test_a_pipe_or_folder_given_as_an_image_is_refused_at_once(tmp_path):
    """`oneshot classify fifo.png` waited forever for the pipe's writer (review)."""
    import os

    os.mkfifo(tmp_path / "fifo.png")
    for path in (tmp_path / "fifo.png", tmp_path):
        with pytest.raises(ImageError, match="not a regular file"):
            preprocess(str(path), 28)


@pytest.mark.parametrize("paper, ink", [(0.39, 0.0), (0.63, 1.0), (0.5, 0.89), (1.0, 0.0),
                                        (0.0, 1.0), (0.55, 0.2)])
def test_polarity_follows_the_ink_not_the_paper_being_light(paper, ink):
    """Black ink on grey paper (level 0.39) was inverted the wrong way and refused as blank,
    as were white ink on light grey and yellow on mid grey (review)."""
    g = np.full((80, 80), paper, np.float32)
    g[20:60, 35:45] = ink
    out = to_ink(g)
    assert out[40, 40] == pytest.approx(1.0) and out[5, 5] == pytest.approx(0.0, abs=1e-3)


def test_a_48_megapixel_jpeg_is_read_at_reduced_size(tmp_path):
    """A phone's 8000x6000 JPEG was refused as over 40 megapixels, though JPEGs decode at a
    fraction of their size (review)."""
    from PIL import Image

    big = Image.new("L", (8000, 6000), 230)
    big.paste(40, (3000, 1000, 3600, 5000))  # a bar 600 px wide
    big.save(tmp_path / "phone.jpg", quality=90)
    big.resize((800, 600)).save(tmp_path / "small.jpg", quality=90)
    x = preprocess(str(tmp_path / "phone.jpg"), 28)
    assert (x - preprocess(str(tmp_path / "small.jpg"), 28)).abs().mean() < 0.02
    Image.new("L", (8000, 6000), 230).save(tmp_path / "phone.png")  # PNGs decode in full
    with pytest.raises(ImageError, match="over the limit of 40 megapixels"):
        preprocess(str(tmp_path / "phone.png"), 28)
