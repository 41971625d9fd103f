"""Sampled Real-ESRGAN degradation parameters follow the configured distributions (fixed seeds), and
bad settings stop with one line naming the key."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from srlab.data.degradations import build_degradation, preset
from srlab.data.realesrgan import RealESRGANDegradation
from srlab.errors import ConfigError

N = 4000


def _degradation(**overrides) -> RealESRGANDegradation:
    return build_degradation({**preset("realesrgan"), **overrides}, 4)


@pytest.fixture(scope="module")
def draws():
    deg = _degradation()
    rng = np.random.default_rng(0)
    return deg.cfg, [deg.draw(rng, 128, 96, train=True) for _ in range(N)]


def _close(count: int, n: int, p: float) -> None:
    """A binomial count within 4.5 standard deviations of n * p."""
    sd = math.sqrt(n * p * (1 - p)) or 1e-9
    assert abs(count - n * p) <= 4.5 * sd, (count, n, p)


def _frequencies(values: list, labels: tuple, probs: tuple) -> None:
    counts = Counter(values)
    assert set(counts) <= set(labels)
    expected = np.asarray(probs) * len(values)
    observed = np.array([counts[k] for k in labels])
    keep = expected > 0
    assert stats.chisquare(observed[keep], expected[keep]).pvalue > 1e-4, dict(zip(labels, observed))


def _uniform(values: list, lo: float, hi: float) -> None:
    v = np.asarray(values)
    assert v.min() >= lo and v.max() <= hi, (v.min(), v.max(), lo, hi)
    assert stats.kstest(v, "uniform", args=(lo, hi - lo)).pvalue > 1e-4


@pytest.mark.parametrize("stage", [1, 2])
def test_kernel_families_sizes_and_shapes(draws, stage):
    cfg, ds = draws
    blur = cfg.blur1 if stage == 1 else cfg.blur2
    kernels = [getattr(d, f"kernel{stage}") for d in ds]
    _close(sum(k.type == "sinc" for k in kernels), N, blur.sinc_prob)
    blurs = [k for k in kernels if k.type != "sinc"]
    _frequencies([k.type for k in blurs], blur.kernel_list, blur.kernel_prob)
    _frequencies([k.size for k in kernels], cfg.kernel_sizes, [1 / len(cfg.kernel_sizes)] * len(cfg.kernel_sizes))
    _uniform([k.sigma_x for k in blurs], *blur.blur_sigma)
    aniso = [k for k in blurs if k.type.endswith("aniso")]
    _uniform([k.sigma_y for k in aniso], *blur.blur_sigma)
    _uniform([k.theta for k in aniso], -math.pi, math.pi)
    assert all(k.sigma_y == k.sigma_x and k.theta == 0 for k in blurs if not k.type.endswith("aniso"))
    for family, (lo, hi) in (("generalized", blur.betag_range), ("plateau", blur.betap_range)):
        # drawn from [lo, 1] or [1, hi] with equal odds, as BasicSR (so a range starting at 1 gives 1 half the time)
        betas = np.array([k.beta for k in blurs if k.type.startswith(family)])
        below = betas < 1 if lo < 1 else betas == 1
        _close(int(below.sum()), len(betas), 0.5)
        if lo < 1:
            _uniform(list(betas[below]), lo, 1)
        _uniform(list(betas[~below]), 1, hi)
    for k in kernels:
        if k.type == "sinc":
            lo, hi = cfg.sinc_cutoff_small if k.size < 13 else cfg.sinc_cutoff_large
            assert lo * math.pi <= k.omega_c <= hi * math.pi


@pytest.mark.parametrize("stage", [1, 2])
def test_resize_noise_and_jpeg(draws, stage):
    cfg, ds = draws
    s = cfg.stage1 if stage == 1 else cfg.stage2
    d = [getattr(x, f"stage{stage}") for x in ds]
    _frequencies([x.resize for x in d], ("up", "down", "keep"), s.resize_prob)
    _uniform([x.resize_scale for x in d if x.resize == "up"], 1, s.resize_range[1])
    _uniform([x.resize_scale for x in d if x.resize == "down"], s.resize_range[0], 1)
    assert all(x.resize_scale == 1 for x in d if x.resize == "keep")
    _frequencies([x.resize_mode for x in d], cfg.resize_modes, [1 / 3] * 3)
    _close(sum(x.gaussian for x in d), N, s.gaussian_noise_prob)
    _close(sum(x.gray for x in d), N, s.gray_noise_prob)
    _uniform([x.sigma for x in d], *s.noise_range)
    _uniform([x.poisson_scale for x in d], *s.poisson_scale_range)
    _uniform([x.jpeg_quality for x in d], *s.jpeg_range)


def test_final_step_blur_choice_and_cut(draws):
    cfg, ds = draws
    _close(sum(d.second_blur for d in ds), N, cfg.second_blur_prob)
    _close(sum(d.sinc is not None for d in ds), N, cfg.final_sinc_prob)
    _close(sum(d.final_resize_first for d in ds), N, cfg.final_resize_first_prob)
    _uniform([d.sinc.omega_c / math.pi for d in ds if d.sinc], *cfg.final_sinc_cutoff)
    _frequencies([d.final_mode for d in ds], cfg.resize_modes, [1 / 3] * 3)
    # 128 px crop, 96 px patch at x4: LQ offsets 0..8, uniform
    _frequencies([d.cut[0] for d in ds], tuple(range(9)), [1 / 9] * 9)
    assert {d.cut[2] for d in ds} == {24}
    assert len({d.seed for d in ds}) == N


def test_overrides_change_the_draws():
    deg = _degradation(noise_range=[5, 6], resize_prob=[0, 0, 1], kernel_list=["iso"], kernel_prob=[1.0],
                       sinc_prob=0, resize_modes=["area"])
    rng = np.random.default_rng(1)
    ds = [deg.draw(rng, 96, 96, train=False) for _ in range(200)]
    assert all(5 <= d.stage1.sigma <= 6 and d.stage1.resize == "keep" and d.kernel1.type == "iso" for d in ds)
    assert {d.stage1.resize_mode for d in ds} == {"area"}
    assert {d.cut for d in ds} == {(0, 0, 24)}  # validation: the centre of a crop that is the patch


def test_same_seed_same_draw():
    deg = _degradation()
    a, b = (deg.draw(np.random.default_rng(7), 128, 96, True) for _ in range(2))
    assert a == b
    assert deg.draw(np.random.default_rng(8), 128, 96, True) != a


@pytest.mark.parametrize(("overrides", "message"), [
    ({"kernel_prob": [0.5, 0.25, 0.12, 0.03, 0.12, 0.03]}, "data.degradation.kernel_prob=[0.5, 0.25, 0.12, 0.03, 0.12, 0.03] sums to 1.05, not 1"),
    ({"resize_prob2": [0.3, 0.4]}, "data.degradation.resize_prob2=[0.3, 0.4] must be 3 non-negative probabilities"),
    ({"noise_range": [30, 1]}, "data.degradation.noise_range=[30.0, 1.0]: min > max"),
    ({"blur_sigma2": [3, 0.2]}, "data.degradation.blur_sigma2=[3.0, 0.2]: min > max"),
    ({"kernel_list": ["iso", "box"], "kernel_prob": [0.5, 0.5]}, "data.degradation.kernel_list: unknown kernel type 'box'"),
    ({"jpeg_range": [0, 95]}, "data.degradation.jpeg_range=[0.0, 95.0] must lie within [1, 100]"),
    ({"jpeg_range2": [30, 101]}, "data.degradation.jpeg_range2=[30.0, 101.0] must lie within [1, 100]"),
    ({"kernel_size_range": [7, 20]}, "data.degradation.kernel_size_range=[7.0, 20.0]: kernel sizes must be odd"),
    ({"second_blur_prob": 1.5}, "data.degradation.second_blur_prob=1.5 must be a probability in [0, 1]"),
    ({"resize_modes": ["nearest"]}, "data.degradation.resize_modes=['nearest']: use some of area, bilinear, bicubic"),
    ({"betag_range": [1.5, 4]}, "data.degradation.betag_range=[1.5, 4.0] must satisfy 0 < min <= 1 <= max"),
    ({"queue_size": -1}, "data.degradation.queue_size=-1 must be an integer >= 0"),
    ({"queue_batches": 15}, "data.degradation.queue_batches is now data.degradation.queue_size, counted in samples"),
    ({"crop_ratio": 0.5}, "data.degradation.crop_ratio=0.5 must be a number >= 1"),
    ({"crop_size": 0}, "data.degradation.crop_size=0 must be a positive integer or null"),
    ({"no_such_key": 1}, "data.degradation.no_such_key: unknown key for kind realesrgan"),
])
def test_bad_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        _degradation(**overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_patch_too_small_for_the_kernels_gets_a_larger_crop_or_one_line():
    deg = _degradation(crop_ratio=1)  # the patch itself, unless the kernels need more
    # 21 px kernels after a 0.15 resize need 11 px: a 76 px crop; a 32 px patch is cut from it
    assert deg.min_size == 76 and deg.crop_for(32) == 76 and deg.crop_for(128) == 128
    assert _degradation(resize_range=[0.5, 1.5], crop_ratio=1).crop_for(32) == 44  # LQ side 11 for the final sinc
    with pytest.raises(ConfigError, match=r"data.degradation.crop_size=64 must be a multiple of data.scale=4 and at least 76"):
        _degradation(crop_size=64).crop_for(32)
    assert deg.crop_for(24) == 76
    small = _degradation(kernel_size_range=[3, 5], resize_range=[1, 1.5], resize_range2=[1, 1.2], crop_ratio=1)
    assert small.crop_for(8) == 28  # the USM blur (51 px) of the crop needs 26 px
    assert _degradation(kernel_size_range=[3, 5], resize_range=[1, 1.5], resize_range2=[1, 1.2], gt_usm=False,
                        crop_ratio=1).crop_for(8) == 12


def test_training_crop_is_larger_than_the_patch_by_default():
    deg = _degradation()
    # Real-ESRGAN's 400 px crop for its 256 px patch; srlab's 96 px patch: 150 rounded up to a multiple of 4
    assert deg.crop_for(256) == 400 and deg.crop_for(96) == 152 and deg.crop_for(32) == 76
    assert deg.crop_for(256, "data.val_patch_size", train=False) == 256  # validation degrades its patch
    assert _degradation(crop_size=160).crop_for(96) == 160
    with pytest.raises(ConfigError) as info:
        _degradation(crop_size=90).crop_for(96)
    assert str(info.value) == ("data.degradation.crop_size=90 must be a multiple of data.scale=4 and at least 96 "
                               "(data.patch_size=96, kernels up to 21 px, resize down to 0.15)")


def test_unknown_preset_and_kind():
    with pytest.raises(ConfigError, match="data.degradation='realesrgn': no such preset; use one of"):
        build_degradation("realesrgn", 4)
    with pytest.raises(ConfigError, match="data.degradation.kind='jpeg'"):
        build_degradation({"kind": "jpeg"}, 4)
