"""Paired crops and augmentation keep alignment; normalization round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srlab.data import transforms as T
from srlab.errors import ConfigError


def _aligned_pair(h=12, w=10, s=4, seed=0):
    lq = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    gt = lq.repeat(s, axis=0).repeat(s, axis=1)  # each LQ pixel is an s x s HQ block
    return gt, lq


def _is_aligned(gt, lq, s=4):
    return np.array_equal(gt, lq.repeat(s, axis=0).repeat(s, axis=1))


def test_paired_random_and_center_crop_stay_aligned():
    gt, lq = _aligned_pair()
    rng = np.random.default_rng(0)
    for _ in range(20):
        g, l = T.paired_random_crop(gt, lq, 16, 4, rng)
        assert g.shape == (16, 16, 3) and l.shape == (4, 4, 3) and _is_aligned(g, l)
    g, l = T.paired_center_crop(gt, lq, 32, 4)
    assert g.shape == (32, 32, 3) and _is_aligned(g, l)


def test_flips_and_turns_keep_pairs_aligned():
    gt, lq = _aligned_pair(12, 8)
    cfg = T.augment_config({"hflip": 1, "vflip": 1, "rot90": 1, "affine": 1})
    rng = np.random.default_rng(1)
    for _ in range(10):
        params = T.draw_augment(cfg, rng, allow_affine=False)
        assert params.affine is None and params.rot90 in (1, 2, 3)
        g, l = T.apply_flips(gt, params), T.apply_flips(lq, params)
        assert _is_aligned(g, l)


def test_affine_warp_keeps_shape_and_is_identity_when_not_drawn():
    gt, _ = _aligned_pair()
    cfg = T.augment_config({"affine": 1.0})
    params = T.draw_augment(cfg, np.random.default_rng(2))
    assert params.affine is not None
    out = T.augment_hq(gt, params)
    assert out.shape == gt.shape and out.dtype == np.uint8
    assert np.array_equal(T.apply_affine(gt, T.AugmentParams()), gt)


def test_draws_are_reproducible_from_the_seed():
    cfg = T.augment_config(T.REPORT_AUGMENT)
    a = [T.draw_augment(cfg, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]


@pytest.mark.parametrize("bad, key", [({"hflip": 1.5}, "data.augment.hflip"), ({"zoom": 1.0}, "data.augment.zoom"),
                                      ({"blur": 1}, "unknown keys"), ({"rotate": -5}, "data.augment.rotate")])
def test_augment_config_errors_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key):
        T.augment_config(bad)


def test_normalize_round_trip_chw_and_bchw():
    x = torch.rand(2, 3, 5, 5)
    assert torch.allclose(T.denormalize(T.normalize(x)), x, atol=1e-6)
    assert torch.allclose(T.denormalize(T.normalize(x[0])), x[0], atol=1e-6)
    assert torch.allclose(T.normalize(torch.ones(3, 1, 1)).flatten(),
                          (1 - torch.tensor(T.IMAGENET_MEAN)) / torch.tensor(T.IMAGENET_STD))


def test_normalization_constants_made_in_inference_serve_training():
    """The mean/std are cached per device (a CUDA upload per step would wait for the GPU); the first
    call can come from validation under inference_mode, and training then backpropagates through them."""
    T._stats_on.cache_clear()
    with torch.inference_mode():
        T.normalize(torch.rand(1, 3, 2, 2))
    x = torch.rand(1, 3, 2, 2, requires_grad=True)
    T.denormalize(x).sum().backward()
    assert torch.allclose(x.grad[0, :, 0, 0], torch.tensor(T.IMAGENET_STD))
    assert T._stats(x)[0] is T._stats(x.detach())[0]  # made once


def test_to_tensor_range_and_layout():
    a = np.zeros((4, 6, 3), np.uint8)
    a[0, 1] = (255, 0, 51)
    t = T.to_tensor(a)
    assert t.shape == (3, 4, 6) and t.dtype == torch.float32
    assert t[:, 0, 1].tolist() == pytest.approx([1.0, 0.0, 0.2])
