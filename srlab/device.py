"""Precision that fits the machine: ``auto`` means bf16 where the CPU or GPU computes it natively, fp32 elsewhere.

One rule for training (``trainer.precision``) and inference (``--precision``, ``precision=``):

- a CUDA GPU with native bf16 (Ampere and newer) -> bf16;
- a CPU with bf16 matrix instructions (x86 ``amx_bf16`` or ``avx512_bf16``, Arm's bf16 extension) -> bf16;
- anything else (an AVX2 or plain AVX-512 CPU, an older GPU, MPS) -> fp32;
- except for an architecture that :data:`ARCH_RULES` keeps in fp32 (bf16 measured too costly or no
  faster for it); ``auto`` never picks fp16.

The machine is asked in one place, :func:`bf16_unit`; every decision goes through :func:`bf16_native`.
Tests set that probe both ways (the ``native_bf16`` fixture, ``pytest --bf16-probe``), so an AVX2
machine runs the paths an AMX one takes.

An x86 CPU without those instructions still *runs* bf16 (oneDNN converts to fp32 and back), but
slower than fp32; forcing bf16 there warns once with the slowdown measured on this machine.
"""

from __future__ import annotations

import functools
import logging
import platform
import time
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from omegaconf import DictConfig, OmegaConf

from srlab.errors import ConfigError, SRLabError

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)

AUTO = "auto"
# inference precisions: the dtype every weight and activation is cast to (no autocast)
INFER_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_X86_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # matrix / dot-product instructions on bf16 pairs
_warned: set[str] = set()


class ArchRule(NamedTuple):
    """Why ``auto`` keeps one architecture off a precision; None where nothing is known against it.

    Each reason says what it rests on, worded to follow the class name in a log line ("SwinIR <reason>").
    """

    bf16_train: str | None = None  # training stays 32-true where bf16 is native
    bf16_infer: str | None = None  # inference stays fp32 where bf16 is native
    fp16: str | None = None  # overflows in fp16: auto never picks fp16, and an explicit fp16 warns


# a known problem of the tools that run transformer upscalers: spandrel 0.4 marks each of these supports_half=False
_FP16_OVERFLOWS = "overflows in fp16 (NaN or black images; spandrel marks it supports_half=False)"
# keyed by the generator's class name. An architecture goes in when bf16 moves a benchmark row by
# more than 0.02 dB or is no faster than fp32 for it (experiments/benchmarks/README.md#bf16-per-architecture),
# or when it is known to overflow in fp16 (also names srlab does not have yet: a new net finds its line here)
ARCH_RULES: dict[str, ArchRule] = {
    "SwinIR": ArchRule(
        bf16_train="trains no faster in bf16-mixed (SwinIR-light on an AMX Xeon: 0.48 s/step vs 0.49 s in 32-true, "
                   "3% of the bf16 conv ceiling)",
        fp16=_FP16_OVERFLOWS,
    ),
    "SRVGGNetCompact": ArchRule(
        bf16_infer="loses up to 0.024 dB of a benchmark row in bf16 (realesr-animevideov3, Set5 x4: 28.232 -> 28.207 "
                   "PSNR-Y), over the 0.02 dB bound",
    ),
    "SPAN": ArchRule(
        bf16_infer="loses 0.037 dB of a benchmark row in bf16 (the NTIRE 2024 team38 file, Set5 x4: 31.738 -> 31.702 "
                   "PSNR-Y), over the 0.02 dB bound",
    ),
    **{name: ArchRule(fp16=_FP16_OVERFLOWS)
       for name in ("HAT", "DAT", "ATD", "Swin2SR", "SRFormer", "DRCT", "GRL", "RGT", "SAFMN")},
}
PURPOSES = ("train", "infer")


def _lightning_precisions() -> tuple[str, ...]:
    """The precision strings Lightning's Trainer accepts, aliases last ("32", "bf16", ...)."""
    from lightning.fabric.plugins.precision import precision as lp

    return (*typing.get_args(lp._PRECISION_INPUT_STR), *typing.get_args(lp._PRECISION_INPUT_STR_ALIAS))


def train_precisions() -> tuple[str, ...]:
    """Every value ``trainer.precision`` accepts: ``auto`` and Lightning's own."""
    return (AUTO, *_lightning_precisions())


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags: torch's own probe (``torch.cpu.get_capabilities``) or /proc/cpuinfo."""
    get = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.8
    if get is not None:
        try:
            return frozenset(k for k, v in get().items() if v is True)
        except Exception:  # noqa: BLE001 - a probe failure only means "no flags known"
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_units() -> str | None:
    """Name of this CPU's native bf16 instructions (``amx_bf16``, ``avx512_bf16``, ``arm bf16``), None without.

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is not the test on x86: it is true on any
    AVX-512 CPU, where oneDNN emulates bf16; on Arm it reports the bf16 extension itself.
    """
    flags = cpu_flags()
    for flag in _X86_BF16_FLAGS:
        if flag in flags:
            return flag
    if platform.machine().lower() in ("aarch64", "arm64"):
        try:
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return "arm bf16"
        except (AttributeError, RuntimeError):
            pass
    return None


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows (for reports and cards)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    """torch's CPU kernel level (``AVX2``, ``AVX512``, ...), for messages."""
    return torch.backends.cpu.get_cpu_capability()


def bf16_unit(device: torch.device) -> str | None:
    """The capability probe: what computes bf16 natively on ``device`` (CPU instructions, a GPU's name), or None.

    ``amx_bf16``, ``avx512_bf16`` or ``arm bf16`` on a CPU (:func:`cpu_bf16_units`); the GPU's name
    on a CUDA GPU with native bf16 (Ampere and newer); None elsewhere (an AVX2 CPU, an older GPU,
    MPS). The one place the machine is asked: tests replace it to run both answers anywhere.
    """
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.cuda.get_device_name(device) if native else None
    if device.type == "cpu":
        return cpu_bf16_units()
    return None


def bf16_native(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and why (one phrase, for logs and reports), from :func:`bf16_unit`."""
    unit = bf16_unit(device)
    if device.type == "cuda":
        if unit:
            return True, f"{unit} has native bf16"
        return False, f"{torch.cuda.get_device_name(device)} lacks native bf16"
    if device.type == "cpu":
        if unit:
            return True, f"CPU with native bf16 ({unit})"
        return False, f"CPU without native bf16 ({cpu_capability()}, no amx_bf16/avx512_bf16)"
    return False, f"{device.type}: fp32 unless asked otherwise"


def trainer_device(trainer: DictConfig) -> torch.device:
    """The device type a ``trainer`` config trains on, as Lightning's ``accelerator`` resolves it."""
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if accelerator == "mps" or (accelerator == "auto" and mps):
        return torch.device("mps")
    return torch.device("cpu")


def arch_name(net: object) -> str | None:
    """The class name :data:`ARCH_RULES` is keyed by: of a module, of a ``_target_`` path or config node; else None."""
    if isinstance(net, torch.nn.Module):
        return type(net).__name__
    target = net.get("_target_") if isinstance(net, (dict, DictConfig)) else net
    return str(target).rsplit(".", 1)[-1] if target else None


def auto_precision_for(arch: str | None, device: torch.device, purpose: str = "infer") -> tuple[str, str]:
    """``bf16`` or ``fp32``, and why, for ``auto`` with generator class ``arch`` (None: unknown) on ``device``.

    bf16 where the device computes it natively (:func:`bf16_native`) and :data:`ARCH_RULES` has no
    reason against it for ``purpose`` (``train`` or ``infer``); fp32 otherwise. Never fp16.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r}: use one of {', '.join(PURPOSES)}")
    native, why = bf16_native(device)
    if not native:
        return "fp32", why
    reason = getattr(ARCH_RULES.get(arch or "", ArchRule()), f"bf16_{purpose}")
    return ("fp32", f"{why}, but {arch} {reason}") if reason else ("bf16", why)


def resolve_train_precision(requested: object, device: torch.device, arch: str | None = None) -> tuple[str, str]:
    """(Lightning precision, why) for ``trainer.precision=requested`` of generator class ``arch``; explicit values win.

    Raises:
        ConfigError: a value neither ``auto`` nor one Lightning accepts (the message lists them).
    """
    text = str(requested)
    if text not in train_precisions():
        raise ConfigError(f"trainer.precision={text!r}: use one of {', '.join(train_precisions())}")
    if text != AUTO:
        return text, "set explicitly"
    choice, why = auto_precision_for(arch, device, "train")
    return ("bf16-mixed" if choice == "bf16" else "32-true"), why


def resolve_infer_precision(requested: str, device: torch.device, arch: str | None = None) -> tuple[str, str]:
    """(``fp32``/``bf16``/``fp16``, why) to infer with class ``arch``; ``auto``: :func:`auto_precision_for`."""
    if requested not in (AUTO, *INFER_DTYPES):
        raise ConfigError(f"precision {requested!r}: use one of {', '.join((AUTO, *INFER_DTYPES))}")
    if requested != AUTO:
        return requested, "set explicitly"
    return auto_precision_for(arch, device, "infer")


def warn_if_unsafe(precision: str, arch: str | None, setting: str) -> str | None:
    """Warn, in one line, when fp16 is asked for an architecture :data:`ARCH_RULES` knows to overflow in it.

    Args:
        precision: the precision asked for (``fp16``, ``16-mixed``, ...; others never warn).
        arch: the generator's class name.
        setting: how the user asked for it, to start the line (``precision=fp16``, ``--fp16``).
    """
    reason = ARCH_RULES.get(arch or "", ArchRule()).fp16
    if not reason or not str(precision).startswith(("16", "fp16")):
        return None
    message = f"{setting}: {arch} {reason}; fp32 (or bf16) runs it safely"
    log.warning(message)
    return message


def trainer(precision: object = AUTO, **kwargs: Any) -> L.Trainer:
    """``lightning.pytorch.Trainer`` with ``precision=auto`` resolved for its ``accelerator`` (conf/trainer's target).

    So that a ``trainer`` config node instantiates as it is, wherever it is composed; ``srlab.train``
    resolves the value earlier, for the generator it trains (:func:`settle_trainer_precision`), and
    this passes it on unchanged. Here ``auto`` knows the device only, not the architecture.
    """
    device = trainer_device(OmegaConf.create({"accelerator": str(kwargs.get("accelerator", "auto"))}))
    precision = resolve_train_precision(precision, device)[0]
    warn_if_emulated(precision, device, "trainer.precision")
    import lightning  # here: srlab.upscale and srlab.evaluate import this module without needing Lightning

    return lightning.pytorch.Trainer(precision=precision, **kwargs)


def settle_trainer_precision(cfg: DictConfig) -> str:
    """Replace ``trainer.precision=auto`` in ``cfg`` by what it resolves to here, for its generator; log it; returns it.

    The run's ``.hydra/config.yaml`` (written by Hydra before the run starts) is rewritten with the
    resolved value, so a run folder says which precision it trained in.
    """
    requested = cfg.trainer.get("precision", AUTO)
    device = trainer_device(cfg.trainer)
    arch = arch_name(OmegaConf.select(cfg, "model.generator._target_"))
    precision, why = resolve_train_precision(requested, device, arch)
    log.info("trainer.precision=%s -> %s (%s)", requested, precision, why)
    warn_if_emulated(precision, device, "trainer.precision")
    warn_if_unsafe(precision, arch, f"trainer.precision={precision}")
    if str(requested) != precision:
        cfg.trainer.precision = precision
        _rewrite_hydra_config(cfg)
    return precision


def _rewrite_hydra_config(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or HydraConfig.get().output_subdir is None:
        return
    path = Path(HydraConfig.get().runtime.output_dir) / HydraConfig.get().output_subdir / "config.yaml"
    if path.is_file():  # Hydra writes it unresolved (OmegaConf.to_yaml): so do we, with the one value changed
        path.write_text(OmegaConf.to_yaml(cfg))


def bf16_slowdown(device: torch.device, size: int = 32, reps: int = 5) -> float:
    """How many times longer a 64-channel 3x3 conv takes in bf16 than in fp32, both channels_last (best of ``reps``).

    One image of ``size`` px on one CPU thread timed by its own CPU time (milliseconds), so that
    other processes on a busy machine cannot skew the ratio (wall-clock ratios here ranged from 0.8x
    to 60x within an hour under a load of 20 on 2 cores). The probe behind :func:`warn_if_emulated`.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 64, size, size, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
    conv = nn.Conv2d(64, 64, 3, 1, 1).to(device, memory_format=torch.channels_last).requires_grad_(False)
    clock = time.thread_time if device.type == "cpu" else time.perf_counter
    best = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for dtype in (torch.float32, torch.bfloat16, torch.float32, torch.bfloat16) * ((reps + 1) // 2):
            net, inp = conv.to(dtype), x.to(dtype)
            with torch.inference_mode():
                net(inp)  # oneDNN builds its primitive on the first call
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = clock()
                net(inp)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                best[dtype] = min(best.get(dtype, float("inf")), clock() - start)
    finally:
        torch.set_num_threads(threads)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


def warn_if_emulated(precision: str, device: torch.device, key: str) -> str | None:
    """Warn once per process, in one line, when bf16 is asked for on a CPU without native bf16.

    The line carries the slowdown of a tiny bf16 convolution against fp32, measured now by the
    conv probe :func:`bf16_slowdown`. Returns the message (or None).
    """
    if "bf16" not in str(precision) or device.type != "cpu" or bf16_native(device)[0] or "bf16" in _warned:
        return None
    _warned.add("bf16")
    message = (f"{key}={precision} on a CPU without native bf16 ({cpu_capability()}): a bf16 convolution takes "
               f"{bf16_slowdown(device):.1f}x the time of fp32 here (measured just now); {AUTO} would pick fp32")
    log.warning(message)
    return message


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SRLabError(f"--device {name}: not a torch device (use auto, cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SRLabError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SRLabError(f"--device {name}: MPS is not available on this machine (use auto or cpu)")
    return dev
