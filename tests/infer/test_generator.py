"""Generator loading (checkpoint, exported, published layouts), precision/device checks, tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srlab.errors import SRLabError
from srlab.device import resolve_device
from srlab.infer import SRGenerator, load_generator, upscale_array
from srlab.nets.rrdbnet import RRDBNet

NET_CONFIG = {"_target_": "srlab.nets.rrdbnet.RRDBNet", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}


def tiny_net(seed: int = 0) -> RRDBNet:
    """A 1-block RRDBNet with weights large enough that its output is far from constant."""
    torch.manual_seed(seed)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.15)
        net.conv_last.bias.fill_(0.5)
    return net.eval()


def save_ckpt(path, ema: bool = True) -> tuple[RRDBNet, RRDBNet | None]:
    """A Lightning-style checkpoint as srlab.train writes it: prefixed state_dict + net_config."""
    net, ema_net = tiny_net(0), tiny_net(1) if ema else None
    sd = {f"generator.{k}": v for k, v in net.state_dict().items()}
    if ema_net is not None:
        sd.update({f"generator_ema.{k}": v for k, v in ema_net.state_dict().items()})
    sd["discriminator.conv.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd, "hyper_parameters": {"net_config": NET_CONFIG, "scale": 4}, "epoch": 3}, path)
    return net, ema_net


def rand_image(h: int, w: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    peak = 255 if dtype == np.uint8 else 65535
    return (np.random.default_rng(seed).random((h, w, 3)) * peak).round().astype(dtype)


class Evil:
    """Unpickling this would create a marker file: a stand-in for a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def save_evil(path, marker) -> None:
    torch.save({"state_dict": {"generator.x": Evil(marker)}, "params": Evil(marker)}, path)


def test_tiled_equals_untiled_odd_sizes():
    gen = SRGenerator(tiny_net(), 4, NET_CONFIG)
    img = rand_image(23, 19)
    full = upscale_array(gen, img, tile=0)
    assert full.shape == (92, 76, 3) and full.dtype == np.uint8
    assert full.std() > 20  # the net does something, so the comparison means something
    tiled = upscale_array(gen, img, tile=7, tile_pad=20)  # pad >= the 1-block net's receptive radius
    assert np.abs(full.astype(int) - tiled).max() <= 1


def test_tiled_uint16_stays_16_bit():
    gen = SRGenerator(tiny_net(), 4, NET_CONFIG)
    img = rand_image(9, 13, np.uint16)
    full = upscale_array(gen, img)
    tiled = upscale_array(gen, img, tile=5, tile_pad=20)
    assert full.dtype == np.uint16 and np.abs(full.astype(int) - tiled).max() <= 257
    assert np.any(full % 257 != 0)  # not 8-bit values stretched to 16 bits


def test_load_ckpt_prefers_ema(tmp_path):
    path = tmp_path / "last.ckpt"
    _, ema_net = save_ckpt(path)
    gen = load_generator(path)
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        assert torch.equal(gen(x), ema_net(x))
    assert gen.scale == 4 and gen.net_config == NET_CONFIG


def test_load_published_layout_with_model_name(tmp_path):
    net = RRDBNet(num_feat=32, num_block=2, num_grow_ch=16)  # conf/model/quickstart.yaml's generator
    torch.save({"params_ema": net.state_dict()}, tmp_path / "pub.pth")
    gen = load_generator(tmp_path / "pub.pth", model="quickstart")
    assert gen.net.conv_first.weight.shape[0] == 32 and gen.scale == 4
    with pytest.raises(SRLabError, match="do not fit RRDBNet"):
        load_generator(tmp_path / "pub.pth", model="esrgan")
    with pytest.raises(SRLabError, match="no conf/model/nope.yaml"):
        load_generator(tmp_path / "pub.pth", model="nope")


def test_published_weights_need_no_model_name(tmp_path):
    from srlab.nets import SRVGGNetCompact

    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=8, num_conv=3, upscale=2).eval()
    torch.save({"params": net.state_dict()}, tmp_path / "compact.pth")  # as Real-ESRGAN releases it
    gen = load_generator(tmp_path / "compact.pth")
    assert type(gen.net).__name__ == "SRVGGNetCompact" and gen.scale == 2
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        assert torch.equal(gen(x), net(x))
    # a named model that does not fit: one line that says what the file holds
    with pytest.raises(SRLabError) as info:
        load_generator(tmp_path / "compact.pth", model="quickstart")
    msg = str(info.value)
    assert "\n" not in msg and "compact.pth" in msg and "fit RRDBNet" in msg and "the file holds SRVGGNetCompact" in msg
    assert "num_conv=3 upscale=2" in msg


def test_unknown_layout_without_model_is_one_line(tmp_path):
    torch.save({"params": {"stem.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "odd.pth")
    with pytest.raises(SRLabError, match=r"odd.pth: unknown generator layout \(first keys: stem.weight\).*model=NAME"):
        load_generator(tmp_path / "odd.pth")


def test_normalized_input_checkpoint(tmp_path):
    from srlab.data.transforms import denormalize, normalize

    net = tiny_net()
    sd = {f"generator.{k}": v for k, v in net.state_dict().items()}
    hp = {"net_config": NET_CONFIG, "normalized_input": True}
    torch.save({"state_dict": sd, "hyper_parameters": hp}, tmp_path / "norm.ckpt")
    gen = load_generator(tmp_path / "norm.ckpt")
    x = torch.rand(1, 3, 6, 6)
    with torch.inference_mode():
        assert torch.allclose(gen(x), denormalize(net(normalize(x))))


def test_bad_weights_files(tmp_path):
    with pytest.raises(SRLabError, match="no such file"):
        load_generator(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SRLabError, match="junk.pth"):
        load_generator(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(SRLabError, match="safetensors"):
        load_generator(tmp_path / "junk.safetensors")


def test_unsafe_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    save_evil(tmp_path / "evil.ckpt", marker)
    with pytest.raises(SRLabError, match="refused"):
        load_generator(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_precision_and_device(tmp_path):
    save_ckpt(tmp_path / "a.ckpt", ema=False)
    gen = load_generator(tmp_path / "a.ckpt", precision="bf16")
    out = upscale_array(gen, rand_image(6, 5))
    assert out.shape == (24, 20, 3)
    with pytest.raises(SRLabError, match="precision"):
        load_generator(tmp_path / "a.ckpt", precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(SRLabError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"
