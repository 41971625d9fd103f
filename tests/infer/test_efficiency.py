"""Efficiency figures: MACs counted by hand on two nets equal PyTorch's counter; attention is counted; the speed."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from srlab.infer import SRGenerator
from srlab.infer.efficiency import count_macs, efficiency
from srlab.nets.edsr import EDSR
from srlab.nets.srvgg import SRVGGNetCompact
from srlab.nets.swinir import SwinIR
from tests.infer.test_generator import tiny_net

N = 256 * 256  # LR pixels of the counted input


def conv_macs(c_in: int, c_out: int, pixels: int, k: int = 3) -> int:
    """A k x k conv, stride 1, 'same' padding: every output pixel is Cout * Cin * k * k multiply-adds."""
    return c_out * c_in * k * k * pixels


def test_srvgg_macs_by_hand():
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4).eval()
    # conv_first 3->8, two 8->8 body convs, the last conv 8->3*4*4; PReLU, PixelShuffle and the nearest
    # residual are elementwise or copies: no MACs
    by_hand = conv_macs(3, 8, N) + 2 * conv_macs(8, 8, N) + conv_macs(8, 48, N)
    assert by_hand == 316_145_664
    assert count_macs(net) == (by_hand, "meta")


def test_edsr_macs_by_hand():
    net = EDSR(num_feat=8, num_block=1, upscale=4).eval()
    by_hand = (conv_macs(3, 8, N)  # conv_first
               + 2 * conv_macs(8, 8, N)  # the residual block's two convs
               + conv_macs(8, 8, N)  # conv_after_body
               + conv_macs(8, 32, N) + conv_macs(8, 32, 4 * N)  # x2 twice: conv to 4F at h, then at 2h
               + conv_macs(8, 3, 16 * N))  # conv_last at 4h (the mean shift is elementwise)
    assert by_hand == 1_108_869_120
    assert count_macs(net) == (by_hand, "meta")


def test_attention_counts_on_meta_and_on_the_cpu_alike():
    """SDPA's CPU kernel is counted (PyTorch's counter alone skips it), and equals the meta count."""
    torch.manual_seed(0)
    net = SwinIR(embed_dim=8, depths=[2], num_heads=[2], window_size=4, img_size=8, upscale=4).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode(), FlopCounterMode(display=False) as plain:
        net(x)
    macs, where = count_macs(net, lr_size=16)
    # per layer: Q K^T and (attn V), each 16 tokens per window x 16 keys x 8 channels, for all 256 tokens
    attention = 2 * 2 * (16 * 16 * 8) * (256 // 16)
    assert where == "meta" and macs - plain.get_total_flops() // 2 == attention
    assert count_macs(net, lr_size=16, compute_fallback=True) == (macs, "meta")


def test_real_forward_is_the_last_resort(monkeypatch):
    net = tiny_net()
    meta_macs, _ = count_macs(net, lr_size=32)

    def no_meta(*args, **kwargs):
        raise RuntimeError("no meta")

    real_empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, device=None, **k: no_meta() if device == "meta" else
                        real_empty(*a, device=device, **k))
    assert count_macs(net, lr_size=32) == (meta_macs, "fake")
    from torch._subclasses import fake_tensor

    monkeypatch.setattr(fake_tensor, "FakeTensorMode", no_meta)
    assert count_macs(net, lr_size=32) == (meta_macs, "real")
    macs, why = count_macs(net, lr_size=32, compute_fallback=False)
    assert macs is None and why == "not counted (meta: RuntimeError, fake: RuntimeError)"


class SetsItselfInForward(torch.nn.Module):
    """As spandrel's DAT, HAT and others: ``self.mean = self.mean.type_as(x)`` in forward (a plain attribute)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, 1, 1)
        self.mean = torch.zeros(1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mean = self.mean.type_as(x)
        return self.conv(x - self.mean)


def test_counting_leaves_the_net_as_it_was():
    net = SetsItselfInForward()
    weight = net.conv.weight.detach().clone()
    assert count_macs(net, lr_size=8) == (3 * 3 * 9 * 64, "meta")
    assert net.mean.device.type == "cpu" and torch.equal(net.conv.weight, weight)
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_the_inference_form_is_counted_whatever_mode_the_net_is_in():
    from srlab.nets.span import SPAN

    net = SPAN(feature_channels=8, upscale=4)
    assert net.training and count_macs(net.eval(), 16) == count_macs(net.train(), 16)  # SPAN's fused convs
    assert net.training  # left in its mode
    bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 1, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.BatchNorm2d(4))
    assert count_macs(bn.train(), 8, compute_fallback=False) == (3 * 4 * 9 * 64, "meta")  # a batch of one


def test_efficiency_of_a_net_and_of_a_generator():
    net = tiny_net()
    fig = efficiency(net, 4, measure_speed=False)
    assert fig == {"params": sum(p.numel() for p in net.parameters()), "macs_256": count_macs(net)[0],
                   "macs_counted": "meta"}
    fast = efficiency(SRGenerator(net, 4, {}), 4, speed_lr=16, budget_s=0.05)
    assert fast["macs_256"] == fig["macs_256"] and fast["speed_lr"] == 16 and fast["threads"] >= 1
    assert fast["ms_per_mp"]["fp32"] > 0 and fast["cpu"] and fast["device"] == "cpu"
    assert set(fast["ms_per_mp"]) == ({"fp32", "bf16"} if "bf16" not in fast else {"fp32"})


def test_buffers_are_reported_apart_where_they_matter():
    swin = SwinIR(embed_dim=8, depths=[2], num_heads=[2], window_size=4, img_size=8, upscale=4,
                  upsampler="pixelshuffledirect")
    fig = efficiency(swin, 4, lr_size=16, measure_speed=False)
    assert fig["buffers"] == sum(b.numel() for b in swin.buffers())  # masks and indices: 1,539 values
    assert fig["note"] == "plus 1,539 buffer values (attn_mask, mean, relative_position_index): not trained, " \
        "not counted as parameters"
    assert "note" not in efficiency(EDSR(num_feat=8, num_block=1), 4, lr_size=16, measure_speed=False)


@pytest.mark.parametrize("lr_size", [16, 20])
def test_macs_grow_with_the_input(lr_size):
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    assert count_macs(net, lr_size)[0] == 316_145_664 * lr_size**2 // N
