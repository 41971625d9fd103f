"""The one door (srlab.infer.stored): wrappers, detection through srlab's specs and spandrel, the input-range probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import SRLabError
from srlab.export import export_generator
from srlab.infer import load_generator, read_stored
from srlab.infer.stored import StoredWeights, _probe_input_range
from srlab.nets.rfdn import RFDN
from srlab.nets.rrdbnet import RRDBNet
from srlab.nets.srvgg import SRVGGNetCompact
from srlab.weights.files import StoredNet


class RangeNet(nn.Module):
    """A x2 net whose thresholds sit in the units of the range it was made for, as trained nets' biases do.

    Fed [0, ``made_for``] it is bicubic upsampling (but for the darkest 2%); fed a range far above,
    its highlight branch blows the output up; far below, its shadow branch drives it negative.
    """

    def __init__(self, made_for: float = 255.0, input_range: float = 1.0) -> None:
        super().__init__()
        self.made_for, self.input_range, self.scale = made_for, input_range, 2
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        r, big = self.input_range, self.made_for
        up = F.interpolate(lq * r, scale_factor=2, mode="bicubic", align_corners=False)  # in the net's units
        out = up + 10 * F.relu(up - 2 * big) - 10 * F.relu(0.02 * big - up)
        return self.gain * out / r


@pytest.mark.parametrize("made_for", [1.0, 255.0])
def test_the_probe_keeps_the_range_a_net_was_made_for(made_for: float, tmp_path) -> None:
    config = {"_target_": f"{__name__}.RangeNet", "made_for": made_for}
    weights = StoredWeights(tmp_path / "w.pth", "w.pth", {}, RangeNet().state_dict(), StoredNet(None))
    chosen, net, why = _probe_input_range(config, weights)
    assert chosen["input_range"] == made_for and net.input_range == made_for
    assert why.startswith(f"input range [0, {made_for:g}] by probe")


def test_a_detected_family_says_what_it_is_and_which_range_it_chose(tmp_path) -> None:
    torch.save(RFDN(nf=8, num_modules=1, upscale=2).state_dict(), tmp_path / "rfdn.pth")
    gen = load_generator(tmp_path / "rfdn.pth")
    assert gen.notes[0] == "detected RFDN" and gen.notes[1].startswith("input range [0, ")
    told = load_generator(tmp_path / "rfdn.pth", input_range=255)
    assert told.net.input_range == 255 and told.notes == ["detected RFDN", "input range [0, 255] (as told)"]
    assert told.net_config["input_range"] == 255.0  # so an export of it keeps the range
    # the probe's nets are built outside inference mode: the chosen one still moves to another precision
    assert load_generator(tmp_path / "rfdn.pth", precision="bf16").precision == "bf16"


def test_an_input_range_for_a_net_that_has_none_is_refused(tmp_path) -> None:
    torch.save(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).state_dict(), tmp_path / "rrdb.pth")
    with pytest.raises(SRLabError, match="takes \\[0, 1\\] inputs only"):
        load_generator(tmp_path / "rrdb.pth", input_range=255)
    with pytest.raises(SRLabError, match="input range 7"):
        load_generator(tmp_path / "rrdb.pth", input_range=7)


def test_a_checkpoint_wrapped_with_its_optimizer_and_epoch_is_unwrapped(tmp_path) -> None:
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2)
    torch.save({"net": net.state_dict(), "optimizer": {"lr": 1e-3}, "epoch": 3}, tmp_path / "ckpt.pth")
    assert set(read_stored(tmp_path / "ckpt.pth").state_dict) == set(net.state_dict())
    assert load_generator(tmp_path / "ckpt.pth").scale == 2


def test_model_1_sub_keys_of_other_nets_are_an_unknown_layout_not_a_broken_esrgan(tmp_path) -> None:
    sd = {"model.0.weight": torch.zeros(8, 3, 3, 3), "model.1.sub.0.c1.weight": torch.zeros(8, 8, 3, 3)}
    torch.save(sd, tmp_path / "seq.pth")
    with pytest.raises(SRLabError, match="unknown generator layout .*IMDN.*through spandrel: .*OmniSR") as err:
        load_generator(tmp_path / "seq.pth")
    assert "ESRGAN-layout" not in str(err.value)


def test_a_family_only_spandrel_knows_loads_exports_and_reloads_the_same(tmp_path) -> None:
    from spandrel.architectures.OmniSR import OmniSR

    torch.manual_seed(0)
    net = OmniSR(num_feat=16, res_num=1, window_size=4, up_scale=2).eval()
    torch.save(net.state_dict(), tmp_path / "omnisr.pth")
    gen = load_generator(tmp_path / "omnisr.pth")
    assert gen.notes == ["detected OmniSR"] and gen.net_config["_target_"] == "spandrel.architectures.OmniSR.OmniSR"
    lq = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        expected = net(lq)
        torch.testing.assert_close(gen(lq), expected)
        exported = export_generator(tmp_path / "omnisr.pth", tmp_path / "export")["safetensors"]
        torch.testing.assert_close(load_generator(exported)(lq), expected)
