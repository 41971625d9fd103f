"""What a generator costs, beside what it scores: parameters, MACs of one forward, CPU ms per output megapixel.

The figures the NTIRE Efficient-SR challenge reports, measured one way everywhere (model cards,
``upscale --list-models``, ``evaluate``'s table, ``python -m srlab.bench``):

- ``params``: every parameter (buffers, such as attention masks and position indices, are
  reported apart where they are a notable share);
- ``macs_256``: multiply-accumulates of one inference forward (eval mode) on a 1x3x256x256 LR input, counted by
  PyTorch's own ``FlopCounterMode`` (MACs = FLOPs / 2: convolutions, matmuls and attention; the
  elementwise work, PixelShuffle, interpolation and normalisation count nothing, as in the
  challenge's tables). Counted on the meta device (no arithmetic, no memory for activations),
  else with fake tensors, else by a real forward;
- ``ms_per_mp``: wall milliseconds per output megapixel of ``srlab.infer.upscale_array`` (what
  ``upscale`` runs) on a 128x128 LR input, median of a few forwards after one warm-up, fp32, and
  bf16 where the device computes it natively (:func:`srlab.device.bf16_native`); with the CPU's
  name and torch's thread count, since the number means nothing without them.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from srlab.device import bf16_native, cpu_name
from srlab.infer.generator import SRGenerator, to_device
from srlab.infer.tiling import upscale_array

LR_SIZE = 256  # the LR side MACs are counted on
SPEED_LR = 128  # the LR side ms/MP is timed on: an x4 net makes a 512x512 (0.26 MP) output
SPEED_BUDGET_S = 3.0  # timed forwards stop once one more would pass this (one at least)
SPEED_REPS = 5
BUFFER_SHARE = 0.01  # buffers are reported when they hold at least this share of the parameters' values


def _sdpa_cpu(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def flop_counter() -> FlopCounterMode:
    """``FlopCounterMode`` that also counts ``scaled_dot_product_attention``'s CPU kernel.

    PyTorch counts its CUDA attention kernels and the math path (two ``bmm``), but not
    ``_scaled_dot_product_flash_attention_for_cpu``, which CPU inference takes: without this,
    SwinIR-light's attention (12 of its 70 GMACs at 256x256) would count zero on a CPU.
    """
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu,
               aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def _bare(net: nn.Module) -> nn.Module:
    """The network inside an ``SRGenerator`` (its input normalisation is elementwise: no MACs)."""
    return net.net if isinstance(net, SRGenerator) else net


def _copy(net: nn.Module, meta: bool) -> nn.Module:
    """The modules of ``net`` copied in eval mode, their parameters and buffers shared (``meta``: meta tensors).

    Eval mode: the inference form is counted (SPAN's training form runs its unfused branches, 4x the
    MACs; BatchNorm in training mode refuses a batch of one), whatever mode the net is in. And a
    forward may change its module (spandrel's DAT sets ``self.mean = self.mean.type_as(x)``: on the
    meta device that would leave a meta tensor behind): the copy keeps both from the net.
    """
    memo = {id(t): torch.empty_like(t, device="meta") if meta else t for t in (*net.parameters(), *net.buffers())}
    return copy.deepcopy(net, memo).eval()


def count_macs(net: nn.Module, lr_size: int = LR_SIZE, compute_fallback: bool = True) -> tuple[int | None, str]:
    """MACs of one forward of ``net`` on a (1, 3, lr_size, lr_size) RGB input, and where they were counted.

    Tried in order, each on a copy of the net's modules (:func:`_copy`): the meta device (nothing
    computed, nothing allocated), fake tensors, then a real forward on the net's own device (only
    with ``compute_fallback``: seconds to minutes for a large net on a CPU).

    Returns:
        (MACs, ``meta``/``fake``/``real``), or (None, why) when no way worked.
    """
    net = _bare(net)
    shape = (1, 3, lr_size, lr_size)
    param = next(net.parameters(), torch.empty(0))
    errors = []

    def meta() -> None:
        _copy(net, meta=True)(torch.empty(shape, device="meta", dtype=param.dtype))

    def fake() -> None:
        from torch._subclasses.fake_tensor import FakeTensorMode

        quiet = logging.getLogger("torch._subclasses.fake_tensor")  # it logs a traceback before raising
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            copied = _copy(net, meta=False)
            with FakeTensorMode(allow_non_fake_inputs=True):
                copied(torch.empty(shape, device=param.device, dtype=param.dtype))
        finally:
            quiet.setLevel(level)

    def real() -> None:
        _copy(net, meta=False)(torch.zeros(shape, device=param.device, dtype=param.dtype))

    for where, forward in (("meta", meta), ("fake", fake), ("real", real))[: 3 if compute_fallback else 2]:
        counter = flop_counter()
        try:
            with torch.inference_mode(), counter:
                forward()
        except Exception as exc:  # noqa: BLE001 - a net that cannot run this way is tried the next way
            errors.append(f"{where}: {type(exc).__name__}")
            continue
        return int(counter.get_total_flops()) // 2, where
    return None, "not counted (" + ", ".join(errors) + ")"


def _speed_image(lr: int) -> np.ndarray:
    """A smooth uint8 (lr, lr, 3) image (content does not change a net's speed; no denormal-prone zeros)."""
    y, x = np.mgrid[0:lr, 0:lr].astype(np.float32)
    img = np.stack([np.sin(x / 7.0), np.cos(y / 5.0), np.sin((x + y) / 11.0)], axis=2)
    return ((img + 1) * 127.5).astype(np.uint8)


def ms_per_mp(gen: SRGenerator, lr: int = SPEED_LR, budget_s: float = SPEED_BUDGET_S, reps: int = SPEED_REPS) -> float:
    """Wall ms per output megapixel of ``upscale_array(gen, ...)`` on an ``lr`` x ``lr`` image, untiled.

    ``gen`` runs as it is (its device, precision and threads). One warm-up forward (oneDNN builds
    its kernels then), then the median of up to ``reps`` timed ones, as many as ``budget_s`` allows
    after the warm-up's time (one at least).
    """
    img = _speed_image(lr)
    start = time.perf_counter()
    upscale_array(gen, img, 0)  # the copy to the CPU at its end waits for a GPU
    warm = time.perf_counter() - start
    times = []
    for _ in range(max(1, min(reps, int(budget_s / max(warm, 1e-6))))):
        start = time.perf_counter()
        upscale_array(gen, img, 0)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 / ((lr * gen.scale) ** 2 / 1e6)


def _buffers(net: nn.Module, params: int) -> dict[str, Any]:
    """Buffer values, and a note naming them where they are a notable share (SwinIR-light: 3.5x its parameters)."""
    buffers = dict(net.named_buffers())
    values = sum(b.numel() for b in buffers.values())
    if not values:
        return {}
    out: dict[str, Any] = {"buffers": values}
    if values >= BUFFER_SHARE * max(params, 1):
        kinds = ", ".join(sorted({name.rsplit(".", 1)[-1] for name in buffers}))
        out["note"] = f"plus {values:,} buffer values ({kinds}): not trained, not counted as parameters"
    return out


def efficiency(net: nn.Module, scale: int, lr_size: int = LR_SIZE, device: str | torch.device = "cpu",
               measure_speed: bool = True, compute_fallback: bool = True, speed_lr: int = SPEED_LR,
               budget_s: float = SPEED_BUDGET_S, precisions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Parameters, MACs of one forward on a ``lr_size``-square LR input, and ms per output megapixel.

    Args:
        net: a generator (``lq`` (B, C, h, w) -> ``sr`` (B, C, h*scale, w*scale)) or an ``SRGenerator``;
            left as it is (speed is timed on copies where the device or precision differ).
        scale: its upscaling factor.
        lr_size: the LR side the MACs are counted on (``macs_<lr_size>`` in the result).
        device: where the speed is timed.
        measure_speed: time it (a few seconds); False gives params and MACs only (training's card).
        compute_fallback: for a net that runs neither on meta nor on fake tensors, count the MACs by
            a real forward (False: leave them out, with the reason).
        speed_lr: the LR side the speed is timed on.
        budget_s: time for the timed forwards of one precision, after the warm-up.
        precisions: those to time (``fp32``, ``bf16``, ``fp16``); default fp32, and bf16 where
            ``device`` computes it natively. An ``SRGenerator`` already in one of them is timed as it is.

    Returns:
        ``{"params", ["buffers", "note",] "macs_256", "macs_counted": "meta"|"fake"|"real"|why,
        ["ms_per_mp": {"fp32": ms[, "bf16": ms]}, "speed_lr", "device", "cpu", "threads"[, "bf16"]]}``.
    """
    bare = _bare(net)
    params = sum(p.numel() for p in bare.parameters())
    macs, where = count_macs(bare, lr_size, compute_fallback)
    out: dict[str, Any] = {"params": params, **_buffers(bare, params), f"macs_{lr_size}": macs, "macs_counted": where}
    if not measure_speed:
        return out
    dev = torch.device(device)
    gen = net if isinstance(net, SRGenerator) else SRGenerator(net, scale, {})
    native, why = bf16_native(dev)
    speeds = {}
    for precision in precisions or (("fp32", "bf16") if native else ("fp32",)):
        same = precision == gen.precision and next(gen.parameters()).device.type == dev.type and not gen.training
        run = gen if same else to_device(copy.deepcopy(gen).eval(), dev, precision)
        speeds[precision] = round(ms_per_mp(run, speed_lr, budget_s), 1)
    out.update({"ms_per_mp": speeds, "speed_lr": speed_lr, "device": str(dev), "cpu": cpu_name(),
                "threads": torch.get_num_threads()})
    if not native and not precisions:
        out["bf16"] = f"not timed: {why}"
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out
