"""Precision that fits the machine: ``auto`` means bf16 where the CPU or GPU computes it natively, fp32 elsewhere.

One rule for training (``trainer.precision``) and inference (``--precision``, ``precision=``):

- a CUDA GPU with native bf16 (Ampere and newer) -> bf16;
- a CPU with bf16 matrix instructions (x86 ``amx_bf16`` or ``avx512_bf16``, Arm's bf16 extension) -> bf16;
- anything else (an AVX2 or plain AVX-512 CPU, an older GPU, MPS) -> fp32.

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
from typing import TYPE_CHECKING, Any

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


def bf16_native(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and why (one phrase, for logs and reports)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, f"{torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} native bf16"
    if device.type == "cpu":
        unit = cpu_bf16_units()
        return (True, f"CPU with native bf16 ({unit})") if unit else (False, f"CPU without native bf16 "
                                                                           f"({cpu_capability()}, no amx_bf16/avx512_bf16)")
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


def resolve_train_precision(requested: object, device: torch.device) -> tuple[str, str]:
    """(Lightning precision, why) for ``trainer.precision=requested``; an explicit value wins.

    Raises:
        ConfigError: a value neither ``auto`` nor one Lightning accepts (the message lists them).
    """
    text = str(requested)
    if text not in train_precisions():
        raise ConfigError(f"trainer.precision={text!r}: use one of {', '.join(train_precisions())}")
    if text != AUTO:
        return text, "set explicitly"
    native, why = bf16_native(device)
    return ("bf16-mixed" if native else "32-true"), why


def resolve_infer_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """(``fp32``/``bf16``/``fp16``, why) for inference; ``auto`` picks bf16 where it is native."""
    if requested not in (AUTO, *INFER_DTYPES):
        raise ConfigError(f"precision {requested!r}: use one of {', '.join((AUTO, *INFER_DTYPES))}")
    if requested != AUTO:
        return requested, "set explicitly"
    native, why = bf16_native(device)
    return ("bf16" if native else "fp32"), why


def trainer(precision: object = AUTO, **kwargs: Any) -> L.Trainer:
    """``lightning.pytorch.Trainer`` with ``precision=auto`` resolved for its ``accelerator`` (conf/trainer's target).

    So that a ``trainer`` config node instantiates as it is, wherever it is composed; ``srlab.train``
    resolves the value earlier (:func:`settle_trainer_precision`), and this passes it on unchanged.
    """
    device = trainer_device(OmegaConf.create({"accelerator": str(kwargs.get("accelerator", "auto"))}))
    precision = resolve_train_precision(precision, device)[0]
    warn_if_emulated(precision, device, "trainer.precision")
    import lightning  # here: srlab.upscale and srlab.evaluate import this module without needing Lightning

    return lightning.pytorch.Trainer(precision=precision, **kwargs)


def settle_trainer_precision(cfg: DictConfig) -> str:
    """Replace ``trainer.precision=auto`` in ``cfg`` by what it resolves to here; log it; returns the value.

    The run's ``.hydra/config.yaml`` (written by Hydra before the run starts) is rewritten with the
    resolved value, so a run folder says which precision it trained in.
    """
    requested = cfg.trainer.get("precision", AUTO)
    device = trainer_device(cfg.trainer)
    precision, why = resolve_train_precision(requested, device)
    log.info("trainer.precision=%s -> %s (%s)", requested, precision, why)
    warn_if_emulated(precision, device, "trainer.precision")
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
    if "bf16" not in str(precision) or device.type != "cpu" or cpu_bf16_units() or "bf16" in _warned:
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
