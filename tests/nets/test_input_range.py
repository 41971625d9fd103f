"""Every family published in both input ranges: ``input_range=255`` is the net fed [0, 255] and scaled back."""

from __future__ import annotations

import pytest
import torch

from srlab.nets.bsrn import BSRN
from srlab.nets.carn import CARNM
from srlab.nets.efdn import EFDN
from srlab.nets.imdn import IMDN
from srlab.nets.pan import PAN
from srlab.nets.rfdn import RFDN
from srlab.nets.rlfn import RLFN
from srlab.nets.safmn import SAFMN
from srlab.nets.span import SPAN

TINY = [
    (BSRN, {"num_feat": 8, "num_block": 1, "upscale": 2}),
    (CARNM, {"num_feat": 8, "group": 2, "upscale": 2}),
    (EFDN, {"n_feats": 8, "upscale": 2}),
    (IMDN, {"nf": 16, "num_modules": 1, "upscale": 3}),
    (PAN, {"nf": 8, "unf": 4, "nb": 1, "upscale": 2}),
    (RFDN, {"nf": 8, "num_modules": 1, "upscale": 3}),
    (RLFN, {"feature_channels": 8, "num_blocks": 1, "esa_channels": 4, "upscale": 2}),
    (SAFMN, {"dim": 8, "n_blocks": 1, "upscaling_factor": 2}),
    (SPAN, {"feature_channels": 8, "upscale": 2}),
]


@pytest.mark.parametrize(("cls", "kwargs"), TINY, ids=[c.__name__ for c, _ in TINY])
def test_input_range_255_feeds_the_net_0_to_255_and_scales_its_output_back(cls, kwargs) -> None:
    torch.manual_seed(0)
    net = cls(**kwargs).eval()
    for p in net.parameters():  # away from init, so a range mistake cannot hide in zero-initialised convs
        p.data.add_(0.05 * torch.randn_like(p))
    net255 = cls(**kwargs, input_range=255).eval()
    net255.load_state_dict(net.state_dict(), strict=True)  # the range is not in the state dict
    lq = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net255(lq), net(lq * 255) / 255, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(net255(lq), net(lq), atol=1e-3)  # the range matters: the test can fail
