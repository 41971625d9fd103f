"""precision=auto: the capability probe set both ways (native_bf16), with and without CUDA; per-architecture rules;
explicit values; warnings; no fp32 round trips."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from srlab import device as P
from srlab.bench.ceilings import bf16_skip_reason
from srlab.bench import train as bench_train
from srlab.errors import ConfigError, SRLabError
from srlab.infer import SRGenerator, load_generator, to_device, upscale_array
from srlab.nets import Autoencoder, RRDBNet, SRResNet, SRVGGNetCompact, VanillaGenerator, VGGStyleDiscriminator
from srlab.train import build, run
from tests.infer.test_generator import rand_image, save_ckpt

CPU = torch.device("cpu")
PROBE = P.bf16_unit  # the real probe, for the tests of the probe itself (the fixtures replace it)
CEILING = {"conv_ceiling_gflops": 150.0, "conv_ceiling_bf16_gflops": 14.0}


@pytest.mark.parametrize(("flags", "machine", "expected"), [
    ({"avx2", "amx_tile", "amx_bf16", "avx512_bf16"}, "x86_64", "amx_bf16"),
    ({"avx2", "avx512f", "avx512_bf16"}, "x86_64", "avx512_bf16"),  # e.g. Zen 4, Cooper Lake
    ({"avx2", "avx512f", "avx512bw", "avx512vl"}, "x86_64", None),  # AVX-512 without bf16: oneDNN emulates it
    ({"avx2", "fma"}, "x86_64", None),  # this AMD EPYC
])
def test_cpu_bf16_units_from_flags(monkeypatch, flags, machine, expected):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(P.platform, "machine", lambda: machine)
    assert P.cpu_bf16_units() == expected


def test_cpu_flags_come_from_torch_else_from_proc_cpuinfo(monkeypatch):
    caps = {"amx_bf16": True, "avx2": True, "avx512_bf16": False, "l1d_cache_size": 32768, "cpu_name": "X"}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps, raising=False)
    P.cpu_flags.cache_clear()
    try:
        assert P.cpu_flags() == {"amx_bf16", "avx2"}
        monkeypatch.delattr(torch.cpu, "get_capabilities")
        P.cpu_flags.cache_clear()
        cpuinfo = Path("/proc/cpuinfo")
        lines = [x for x in cpuinfo.read_text().splitlines() if x.startswith(("flags", "Features"))] \
            if cpuinfo.is_file() else []
        assert P.cpu_flags() == (set(lines[0].split(":", 1)[1].split()) if lines else set())
    finally:
        P.cpu_flags.cache_clear()


def test_probe_on_a_cpu_is_its_bf16_instructions(monkeypatch):
    monkeypatch.setattr(P, "bf16_unit", PROBE)
    monkeypatch.setattr(P, "cpu_bf16_units", lambda: "avx512_bf16")
    assert P.bf16_native(CPU) == (True, "CPU with native bf16 (avx512_bf16)")
    monkeypatch.setattr(P, "cpu_bf16_units", lambda: None)
    assert not P.bf16_native(CPU)[0] and "without native bf16" in P.bf16_native(CPU)[1]
    assert P.bf16_native(torch.device("mps")) == (False, "mps: fp32 unless asked otherwise")


def test_auto_resolves_per_cpu_and_explicit_values_win(native_bf16):
    assert P.resolve_train_precision("auto", CPU)[0] == ("bf16-mixed" if native_bf16 else "32-true")
    assert P.resolve_infer_precision("auto", CPU)[0] == ("bf16" if native_bf16 else "fp32")
    assert ("amx_bf16" if native_bf16 else "without native bf16") in P.resolve_train_precision("auto", CPU)[1]
    assert P.resolve_train_precision("32-true", CPU) == ("32-true", "set explicitly")
    assert P.resolve_train_precision("bf16-mixed", CPU)[0] == "bf16-mixed"
    assert P.resolve_infer_precision("fp32", CPU) == ("fp32", "set explicitly")


@pytest.mark.parametrize("supported", [True, False])
def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch, supported):
    monkeypatch.setattr(P, "bf16_unit", PROBE)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    cuda = torch.device("cuda")
    assert P.resolve_train_precision("auto", cuda)[0] == ("bf16-mixed" if supported else "32-true")
    assert P.resolve_infer_precision("auto", cuda)[0] == ("bf16" if supported else "fp32")


@pytest.mark.parametrize("cuda", [True, False], ids=["cuda", "no-cuda"])
def test_auto_on_every_machine_from_the_accelerator_to_the_precision(native_bf16, cuda, monkeypatch):
    """accelerator=auto -> device -> precision, for the four machines (bf16 native or not, CUDA or not)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    device = P.trainer_device(OmegaConf.create({"accelerator": "auto"}))
    assert device.type == "cuda" if cuda else device.type in ("cpu", "mps")
    if device.type == "mps":
        return  # an Apple machine: fp32 whatever the probe says (tested in test_probe_on_a_cpu_...)
    rules = (("RRDBNet", "bf16-mixed", "bf16"), ("SwinIR", "32-true", "bf16"), ("SRVGGNetCompact", "bf16-mixed", "fp32"),
             (None, "bf16-mixed", "bf16"))
    for arch, train, infer in rules:
        expected = (train, infer) if native_bf16 else ("32-true", "fp32")
        got = P.resolve_train_precision("auto", device, arch)[0], P.resolve_infer_precision("auto", device, arch)[0]
        assert got == expected, (arch, device)


def test_per_architecture_rule_says_why_in_one_line(native_bf16):
    precision, why = P.auto_precision_for("SwinIR", CPU, "train")
    assert precision == "fp32" and "\n" not in why
    if native_bf16:  # the probe's phrase, then the architecture's measured reason
        assert why.startswith("CPU with native bf16 (amx_bf16), but SwinIR trains no faster in bf16-mixed (")
        assert "0.48 s/step vs 0.49 s" in why
    else:
        assert "without native bf16" in why and "SwinIR" not in why
    assert P.auto_precision_for("RRDBNet", CPU, "train")[0] == P.auto_precision_for("SwinIR", CPU, "infer")[0] \
        == ("bf16" if native_bf16 else "fp32")
    with pytest.raises(ValueError, match="purpose 'eval': use one of train, infer"):
        P.auto_precision_for("RRDBNet", CPU, "eval")
    # loading resolves for the net's class: SRVGGNetCompact infers in fp32 (bf16 moved a row by 0.024 dB)
    gen = to_device(SRGenerator(SRVGGNetCompact(num_feat=8, num_conv=2), 4, {}), CPU, "auto")
    assert gen.precision == "fp32" and ("but SRVGGNetCompact loses up to 0.024 dB" in gen.precision_why) == native_bf16


def test_rules_are_keyed_by_class_names_and_auto_never_picks_fp16(native_bf16):
    from srlab.nets.swinir import SwinIR

    assert P.arch_name("srlab.nets.swinir.SwinIR") == P.arch_name({"_target_": "srlab.nets.swinir.SwinIR"}) == "SwinIR"
    assert P.arch_name(SwinIR(img_size=8, window_size=4, embed_dim=8, depths=[2], num_heads=[2])) == "SwinIR"
    assert P.arch_name(None) is None
    for arch, rule in P.ARCH_RULES.items():
        assert arch.isidentifier() and any(rule), arch
        for reason in filter(None, rule):
            assert "\n" not in reason and not reason.endswith(".")  # it goes inside a log line
        for device in (CPU, torch.device("mps")):
            for purpose in P.PURPOSES:
                assert P.auto_precision_for(arch, device, purpose)[0] in ("bf16", "fp32")


def test_settle_resolves_for_the_generator_and_says_why(native_bf16, smoke_cfg, caplog):
    cfg = smoke_cfg("swinir_light")
    with caplog.at_level(logging.INFO, logger="srlab.device"):
        assert P.settle_trainer_precision(cfg) == "32-true"
    line = next(r.getMessage() for r in caplog.records if "trainer.precision=auto" in r.getMessage())
    assert ("but SwinIR trains no faster in bf16-mixed" in line) == native_bf16


def test_fp16_for_a_transformer_warns_in_one_line(smoke_cfg, caplog):
    from srlab.nets.swinir import SwinIR

    net = SwinIR(img_size=8, window_size=4, embed_dim=8, depths=[2], num_heads=[2], upscale=2)
    with caplog.at_level(logging.WARNING, logger="srlab.device"):
        gen = to_device(SRGenerator(net, 2, {}), CPU, "fp16")
        to_device(SRGenerator(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), 4, {}), CPU, "fp16")
        cfg = smoke_cfg("swinir_light", extra=["trainer.precision=16-mixed"])
        assert P.settle_trainer_precision(cfg) == "16-mixed"
    warned = [r.getMessage() for r in caplog.records]
    assert gen.precision == "fp16" and len(warned) == 2, warned  # SwinIR only, not RRDBNet
    assert warned[0].startswith("precision=fp16: SwinIR overflows in fp16 (NaN or black images")
    assert warned[1].startswith("trainer.precision=16-mixed: SwinIR overflows in fp16")
    assert all("\n" not in w for w in warned)


def test_trainer_device_follows_the_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert P.trainer_device(OmegaConf.create({"accelerator": "auto"})).type == "cuda"
    assert P.trainer_device(OmegaConf.create({"accelerator": "cpu"})).type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert P.trainer_device(OmegaConf.create({"accelerator": "auto"})).type in ("cpu", "mps")


@pytest.mark.parametrize(("resolve", "value"), [(P.resolve_train_precision, "bf17-mixed"),
                                               (P.resolve_infer_precision, "int8")])
def test_unknown_precision_is_one_line_listing_the_accepted(resolve, value):
    with pytest.raises(ConfigError) as err:
        resolve(value, CPU)
    text = str(err.value)
    assert "\n" not in text and value in text and "auto" in text
    assert all(p in text for p in (("32-true", "bf16-mixed", "16-mixed") if "bf17" in value else ("fp32", "bf16")))


def test_train_stops_on_an_unknown_precision_before_any_work(smoke_cfg):
    with pytest.raises(ConfigError, match=r"^trainer.precision='fp8': use one of auto, transformer-engine, .*32-true"):
        run(smoke_cfg(extra=["trainer.precision=fp8"]))


def test_settle_writes_the_resolved_value_into_the_runs_config(native_bf16, smoke_cfg, caplog):
    cfg = smoke_cfg()
    saved = Path(cfg.paths.output_dir) / ".hydra" / "config.yaml"  # Hydra writes it before the run starts
    saved.parent.mkdir(parents=True)
    saved.write_text("trainer:\n  precision: auto\n")
    with caplog.at_level(logging.INFO, logger="srlab.device"):
        got = P.settle_trainer_precision(cfg)
    expected = "bf16-mixed" if native_bf16 else "32-true"
    assert got == cfg.trainer.precision == expected
    assert OmegaConf.load(saved).trainer.precision == expected
    assert f"trainer.precision=auto -> {expected}" in caplog.text


def test_forced_bf16_without_native_support_warns_once_with_the_measured_factor(native_bf16, caplog):
    with caplog.at_level(logging.WARNING, logger="srlab.device"):
        first = P.warn_if_emulated("bf16-mixed", CPU, "trainer.precision")
        second = P.warn_if_emulated("bf16-mixed", CPU, "trainer.precision")
    assert second is None and P.warn_if_emulated("32-true", CPU, "trainer.precision") is None
    if native_bf16:
        assert first is None and not caplog.records
        return
    assert "\n" not in first and "trainer.precision=bf16-mixed" in first and "x the time of fp32" in first
    factor = float(first.split("takes ")[1].split("x the time")[0])
    assert factor > 0
    assert [r.getMessage() for r in caplog.records] == [first]


def test_inference_auto_picks_bf16_channels_last_only_where_native(native_bf16, tmp_path):
    save_ckpt(tmp_path / "a.ckpt", ema=False)
    gen = load_generator(tmp_path / "a.ckpt", precision="auto")
    weight = gen.net.conv_first.weight
    if native_bf16:
        assert gen.precision == "bf16" and weight.dtype == torch.bfloat16
        assert weight.is_contiguous(memory_format=torch.channels_last)
    else:
        assert gen.precision == "fp32" and weight.dtype == torch.float32
    assert "amx_bf16" in gen.precision_why if native_bf16 else "without native bf16" in gen.precision_why
    assert upscale_array(gen, rand_image(6, 5)).shape == (24, 20, 3)
    with pytest.raises(SRLabError, match="use one of auto, fp32, bf16, fp16"):
        load_generator(tmp_path / "a.ckpt", precision="int8")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_inference_keeps_the_input_and_a_bicubic_base_in_fp32(precision):
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, bicubic_residual=True).eval()
    reference = SRGenerator(copy.deepcopy(net), 4, {})
    gen = to_device(SRGenerator(net, 4, {}), CPU, precision)
    lq = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        sr, ref = gen(lq), reference(lq)
        all_half = reference.to(P.INFER_DTYPES[precision])(lq.to(P.INFER_DTYPES[precision])).float()
    assert net.conv_first.weight.dtype == P.INFER_DTYPES[precision] and sr.dtype == torch.float32
    # only the small residual is computed in half precision, not the bicubic base it is added to: several
    # times closer to fp32 than the same net with everything cast (measured 14x for both dtypes)
    assert (sr - ref).abs().max() < 0.25 * (all_half - ref).abs().max()


def test_bench_runs_bf16_only_where_native_and_says_why_not(native_bf16):
    runs, skipped = bench_train.precisions(CPU, CEILING, [])
    if native_bf16:
        assert runs == ["32-true", "bf16-mixed"] and not skipped
        assert bf16_skip_reason(CPU, CEILING) is None
    else:
        assert runs == ["32-true"] and "not run: CPU without native bf16" in skipped["bf16-mixed"]
        assert "14.0 GFLOP/s vs 150.0 in fp32" in skipped["bf16-mixed"]
        table = bench_train.table({"patch": 128, "rows": [], "skipped": skipped})
        assert f"\nbf16-mixed: {skipped['bf16-mixed']}." in table
    assert bench_train.precisions(CPU, CEILING, ["trainer.precision=bf16-mixed"]) == (["bf16-mixed"], {})
    # auto: resolved per model, as srlab.train resolves it (SwinIR trains in 32-true everywhere)
    assert bench_train.precisions(CPU, CEILING, ["trainer.precision=auto"]) == (["auto"], {})
    with pytest.raises(ConfigError, match="trainer.precision='bf17'"):
        bench_train.precisions(CPU, CEILING, ["trainer.precision=bf17"])
    for model, expected in (("quickstart", "bf16-mixed" if native_bf16 else "32-true"), ("swinir_light", "32-true")):
        assert bench_train.compose_config(model, CPU, ["trainer.precision=auto"]).trainer.precision == expected
    auto = {"swinir_light": P.resolve_train_precision("auto", CPU, "SwinIR")}
    table = bench_train.table({"patch": 128, "rows": [], "skipped": skipped, "auto": auto})
    assert f"`trainer.precision=auto` here: swinir_light -> 32-true ({auto['swinir_light'][1]})." in table


def _leaf_inputs(net: torch.nn.Module, x: torch.Tensor) -> list[tuple[str, torch.dtype, bool]]:
    """(module name, input dtype, input channels_last) of every leaf module in a bf16 autocast forward."""
    seen = []

    def hook(name):
        def record(module, args, out):
            for a in args:
                if torch.is_tensor(a) and a.is_floating_point() and a.dim() == 4:
                    seen.append((name, a.dtype, a.is_contiguous(memory_format=torch.channels_last)))
        return record

    for name, module in net.named_modules():
        if not list(module.children()):
            module.register_forward_hook(hook(name))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(x)
    return seen


@pytest.mark.parametrize(("net", "size"), [
    (RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, bicubic_residual=True), 12),
    (SRResNet(num_feat=8, num_block=2), 12),
    (SRVGGNetCompact(num_feat=8, num_conv=2), 12),
    (VanillaGenerator(num_feat=8), 12),
    (Autoencoder(num_feat=8), 160),
    (VGGStyleDiscriminator(num_feat=8), 128),
], ids=lambda v: type(v).__name__ if isinstance(v, torch.nn.Module) else str(v))
def test_bf16_channels_last_nets_have_no_fp32_or_layout_round_trips(net, size):
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    seen = _leaf_inputs(net.to(memory_format=torch.channels_last), x)
    fp32 = [name for name, dtype, _ in seen if dtype == torch.float32]
    assert fp32 == [seen[0][0]]  # only the first layer reads the fp32 batch; every later one gets bf16
    assert all(cl for _, _, cl in seen)  # every activation stays NHWC


def test_training_auto_runs_bf16_mixed_in_channels_last_only_where_native(native_bf16, smoke_cfg):
    cfg = smoke_cfg()
    P.settle_trainer_precision(cfg)
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.precision == ("bf16-mixed" if native_bf16 else "32-true")
    assert model.generator.conv_first.weight.is_contiguous(memory_format=torch.channels_last) == native_bf16


def test_validation_metrics_are_fp32_under_bf16_autocast(smoke_cfg, monkeypatch):
    _, model, _ = build(smoke_cfg())
    monkeypatch.setattr(model, "_measuring_bicubic", lambda: False)  # no trainer attached
    # smooth, photo-like values (variance small against the mean): where bf16's cancellation shows
    coarse = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gt = (0.6 + 0.1 * torch.nn.functional.interpolate(coarse, size=(48, 48), mode="bicubic")).clamp(0, 1)
    batch = {"lq": torch.nn.functional.avg_pool2d(gt, 4), "gt": gt}
    ssim = {}
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            model.validation_step(batch, 0)
        ssim[precision] = float(model.val_ssim.compute())
        model.val_ssim.reset()
    # the net's bf16 rounding moves SSIM a little; SSIM computed in bf16 moves it by ~0.3
    assert abs(ssim["bf16"] - ssim["fp32"]) < 0.01, ssim
