"""load_generator_weights: published layouts load identically, mismatches and unsafe files are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from srlab.errors import SRLabError
from srlab.nets import RRDBNet, VGGStyleDiscriminator
from srlab.weights import extract_generator_state_dict, load_generator_weights

TINY = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}


def _net(seed: int) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(**TINY)


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def _old_esrgan_layout(sd: dict[str, torch.Tensor], num_block: int) -> dict[str, torch.Tensor]:
    """Rename BasicSR names to the original ESRGAN repo's (xinntao/ESRGAN RRDBNet_arch, x4)."""
    top = {"conv_first": 0, "conv_up1": 3, "conv_up2": 6, "conv_hr": 8, "conv_last": 10}
    out = {}
    for k, v in sd.items():
        module, kind = k.rsplit(".", 1)
        if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", module):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{kind}"] = v
        elif module == "conv_body":
            out[f"model.1.sub.{num_block}.{kind}"] = v
        else:
            out[f"model.{top[module]}.{kind}"] = v
    return out


def _layouts(src: RRDBNet, other: RRDBNet) -> dict[str, object]:
    sd = src.state_dict()
    junk = other.state_dict()  # stands for the non-EMA weights, which must not win
    return {
        "plain": sd,
        "basicsr_params": {"params": sd},
        "params_ema_module_prefix": {"params": junk, "params_ema": {f"module.{k}": v for k, v in sd.items()}},
        "old_esrgan": _old_esrgan_layout(sd, TINY["num_block"]),
        "realesrgan_x4plus": {"params_ema": sd},
        "srlab_ckpt": {
            "epoch": 3,
            "global_step": 10,
            "state_dict": {
                **{f"generator.{k}": v for k, v in junk.items()},
                **{f"generator_ema.{k}": v for k, v in sd.items()},
                **{f"discriminator.{k}": v for k, v in VGGStyleDiscriminator(num_feat=4).state_dict().items()},
            },
            "hyper_parameters": {"net_config": {"_target_": "srlab.nets.rrdbnet.RRDBNet", **TINY}},
        },
        "srlab_ckpt_no_ema": {"state_dict": {f"generator.{k}": v for k, v in sd.items()}},
        # srlab.export's .pth: BasicSR keys plus a metadata dict
        "srlab_export": {"params": junk, "params_ema": sd, "srlab": {"net_config_json": "{}", "normalized_input": False}},
    }


@pytest.mark.parametrize("layout", list(_layouts(_net(0), _net(1))))
def test_layouts_load_identically(tmp_path: Path, layout: str) -> None:
    src, other = _net(0), _net(1)
    path = tmp_path / ("w.ckpt" if layout.startswith("srlab") else "w.pth")
    torch.save(_layouts(src, other)[layout], path)
    dst = _net(2)
    assert not _same_outputs(src, dst)
    result = load_generator_weights(dst, path)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert _same_outputs(src, dst)


def test_in_memory_state_dict_and_extract_helper() -> None:
    src, dst = _net(0), _net(2)
    obj = {"params_ema": src.state_dict()}
    assert set(extract_generator_state_dict(obj)) == set(src.state_dict())
    load_generator_weights(dst, obj)
    assert _same_outputs(src, dst)


def test_old_layout_conversion_scale8_names() -> None:
    from srlab.weights import convert_old_esrgan

    w = torch.zeros(1)
    old = {f"model.{i}.weight": w for i in (0, 3, 6, 9, 11, 13)} | {"model.1.sub.5.weight": w}
    assert set(convert_old_esrgan(old)) == {
        "conv_first.weight", "conv_up1.weight", "conv_up2.weight", "conv_up3.weight",
        "conv_hr.weight", "conv_last.weight", "conv_body.weight",
    }  # fmt: skip


def test_safetensors_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    src, dst = _net(0), _net(2)
    path = tmp_path / "w.safetensors"
    save_file(src.state_dict(), str(path))
    load_generator_weights(dst, path)
    assert _same_outputs(src, dst)


def test_mismatch_names_keys_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "big.pth"
    torch.save({"params_ema": RRDBNet(num_feat=16, num_block=3, num_grow_ch=8).state_dict()}, path)
    with pytest.raises(SRLabError) as info:
        load_generator_weights(_net(0), path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert "conv_first.weight: file (16, 3, 3, 3) vs net (8, 3, 3, 3)" in msg
    assert "unexpected keys: body.2." in msg
    assert "num_feat=16 num_block=3 num_grow_ch=8" in msg  # the hint reads the file's sizes


def test_missing_keys_strict_and_non_strict() -> None:
    sd = _net(0).state_dict()
    del sd["conv_hr.weight"]
    with pytest.raises(SRLabError, match="1 missing keys: conv_hr.weight"):
        load_generator_weights(_net(2), sd)
    result = load_generator_weights(_net(2), sd, strict=False)
    assert result.missing_keys == ["conv_hr.weight"]


def test_discriminator_or_random_dict_is_not_a_generator(tmp_path: Path) -> None:
    disc = VGGStyleDiscriminator(num_feat=4).state_dict()
    with pytest.raises(SRLabError, match="discriminator"):
        load_generator_weights(_net(0), {"state_dict": {f"discriminator.{k}": v for k, v in disc.items()}})
    with pytest.raises(SRLabError, match="none of its .* tensors fit RRDBNet.*discriminator"):
        load_generator_weights(_net(0), disc)
    with pytest.raises(SRLabError, match="no tensors"):
        load_generator_weights(_net(0), {"epoch": 1, "note": "hello"})


class _Exploit:
    marker: str = ""

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (Path(self.marker),))


def test_code_running_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = _Exploit()
    payload.marker = str(marker)
    path = tmp_path / "evil.pth"
    torch.save({"params": _net(0).state_dict(), "extra": payload}, path)
    assert not marker.exists()
    with pytest.raises(SRLabError, match="refuse"):
        load_generator_weights(_net(0), path)
    assert not marker.exists()


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(SRLabError, match="no such"):
        load_generator_weights(_net(0), tmp_path / "nope.pth")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(SRLabError, match="safetensors"):
        load_generator_weights(_net(0), bad)
