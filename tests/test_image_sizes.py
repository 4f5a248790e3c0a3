"""Image and input sizes the preprocessing refuses, named as the user knows them."""

from __future__ import annotations

import numpy as np
import pytest

from oneshot.cli import main


def test_a_strip_too_thin_once_reduced_is_named_by_its_own_size(tiny_model_file, tmp_path,
                                                                  capsys):
    """A 5000x3 PNG was refused as "image of size (1, 1667) is too small": the size after
    reduction, rows first (review)."""
    from PIL import Image

    from oneshot.data.images import ImageError
    from oneshot.preprocess import preprocess

    Image.new("L", (5000, 3), 255).save(tmp_path / "strip.png")
    assert main(["verify", "--model", str(tiny_model_file), str(tmp_path / "strip.png"),
                 str(tmp_path / "strip.png")]) == 2
    err = capsys.readouterr().err
    assert "strip.png: image of 5000x3 pixels is too small or thin (reduced to at most 2048 " \
           "px: 1667x1)" in err and "Traceback" not in err, err
    with pytest.raises(ImageError, match="image of 3x5000 pixels is too small or thin"):
        preprocess([np.ones((5000, 3), np.float32)], 28)
    with pytest.raises(ImageError, match="image of 1x5 pixels is too small"):
        preprocess([np.ones((5, 1), np.float32)], 28)


@pytest.mark.parametrize("size", [0, -5, 2.5, "28", True, 100_000])
def test_preprocess_names_a_bad_size(size):
    """size 0 returned an empty tensor, -5 a torch error, 100000 tried to allocate 40 GB
    (review)."""
    from oneshot.errors import ConfigError
    from oneshot.preprocess import preprocess

    with pytest.raises(ConfigError, match=r"size=.*; a whole number of pixels from 1 to 2048"):
        preprocess([np.ones((10, 10), np.float32)], size)
