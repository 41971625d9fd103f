"""srlab.data.benchmarks: the one place benchmark LR is made, shared by evaluate and val_sets validation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from srlab.data.benchmarks import check_lq_protocol, find_benchmark, load_pair, make_lq
from srlab.errors import ConfigError, SRLabError
from srlab.data.resize import imresize
from tests.data.hostile import rgb_array


def test_make_lq_is_the_training_degradation():
    hr = rgb_array(3, (32, 24))
    pil = np.asarray(Image.fromarray(hr).resize((8, 6), Image.BICUBIC))
    assert np.array_equal(make_lq(hr, 4), pil)
    assert np.array_equal(make_lq(hr, 4, resize="matlab"), imresize(hr, size=(6, 8)))
    blurred = np.asarray(Image.fromarray(pil).filter(ImageFilter.GaussianBlur(radius=1.5)))
    assert np.array_equal(make_lq(hr, 4, "blur"), blurred)
    assert not np.array_equal(make_lq(hr, 4, "blur", "matlab"), blurred)  # the blur follows the chosen resize


@pytest.mark.parametrize("args, key", [(("sharp", "pil", 1.5), "x.degradation=sharp"),
                                       (("bicubic", "cv2", 1.5), "x.resize=cv2"),
                                       (("blur", "pil", -1), "x.blur_radius=-1")])
def test_bad_protocol_names_the_key(args, key):
    with pytest.raises(ConfigError, match=key):
        check_lq_protocol(*args, key="x.")


def test_load_pair_modcrops_hr_and_checks_given_lq(tmp_path):
    (tmp_path / "S" / "HR").mkdir(parents=True)
    (tmp_path / "S" / "LR").mkdir()
    Image.fromarray(rgb_array(0, (34, 30))).save(tmp_path / "S" / "HR" / "a.png")
    Image.fromarray(rgb_array(1, (8, 7))).save(tmp_path / "S" / "LR" / "ax4.png")
    bench = find_benchmark(tmp_path / "S", 4)
    hr, lq = load_pair(bench, bench.hr[0], 4)
    assert bench.name == "S" and hr.shape == (28, 32, 3) and np.array_equal(lq, rgb_array(1, (8, 7)))
    Image.fromarray(rgb_array(1, (9, 7))).save(tmp_path / "S" / "LR" / "ax4.png")
    with pytest.raises(SRLabError, match="is not 1/4 of HR"):
        load_pair(bench, bench.hr[0], 4)
    with pytest.raises(SRLabError, match="^data.val_sets\\[0\\].dir: .* does not exist"):
        find_benchmark(tmp_path / "nope", 4, key="data.val_sets[0].dir")


def test_realesrgan_lr_is_fixed_by_seed_and_file_name(tmp_path):
    """The fixed synthetic real-world set: the training degradation, drawn from (seed, file name)."""
    hr = rgb_array(4, (96, 80))
    a = make_lq(hr, 4, "realesrgan", seed=0, name="baboon.png")
    assert a.shape == (20, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, make_lq(hr, 4, "realesrgan", seed=0, name="baboon.png"))
    assert not np.array_equal(a, make_lq(hr, 4, "realesrgan", seed=1, name="baboon.png"))
    assert not np.array_equal(a, make_lq(hr, 4, "realesrgan", seed=0, name="comic.png"))
    (tmp_path / "S").mkdir()
    Image.fromarray(hr).save(tmp_path / "S" / "baboon.png")
    bench = find_benchmark(tmp_path / "S", 4)
    assert np.array_equal(load_pair(bench, bench.hr[0], 4, "realesrgan", seed=0)[1], a)
    with pytest.raises(SRLabError, match="tiny.png: 40x40 is smaller than the 76 px degradation=realesrgan needs"):
        make_lq(rgb_array(0, (40, 40)), 4, "realesrgan", name="tiny.png")
