"""Section ``ceilings``: what this machine's matmul and 3x3 convolution reach, measured the same way every time.

GEMM: ``A @ B`` with square fp32 matrices (n = 2048 on a CPU, 8192 on a GPU), 2 n^3 FLOPs.
Conv: ``Conv2d(64, 64, 3, padding=1)`` forward under ``inference_mode`` on (B, 64, 128, 128),
B = 4 on a CPU (the training batch), 16 on a GPU; 2 * 64 * 64 * 9 * B * 128^2 FLOPs. NCHW and
channels_last are interleaved; the faster fp32 layout is *the conv ceiling* that the other
sections divide by. bf16 (channels_last) is measured too, for the bf16 rows, and stated as native
or not (:func:`srlab.device.bf16_native`, the rule ``precision=auto`` follows): the ``train``
and ``infer`` sections add bf16 runs only where it is native. A ceiling is what
the machine *can* reach, so it is the best call of N (load from other processes only lowers
it); the median call is shown beside it.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from srlab.bench.utils import interleave, median
from srlab.device import bf16_native

CONV_CHANNELS, CONV_SIZE = 64, 128


def _gemm(device: torch.device, quick: bool) -> dict:
    n = (4096 if quick else 8192) if device.type == "cuda" else (1024 if quick else 2048)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
    times = interleave({"gemm": lambda: a @ b}, reps=5 if quick else 15, device=device)["gemm"]
    return {"name": f"GEMM fp32 {n}x{n}", "gflops": 2 * n**3 / min(times) / 1e9,
            "gflops_median": 2 * n**3 / median(times) / 1e9, "seconds": min(times)}


def conv_cases(device: torch.device, batch: int, size: int = CONV_SIZE) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The timed 3x3 convs: fp32 NCHW, fp32 channels_last, bf16 channels_last (seeded weights and input)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, CONV_CHANNELS, size, size, generator=gen).to(device)
    cl = torch.channels_last

    def conv(**to) -> nn.Module:  # a fresh module per case: Module.to() converts in place
        return nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, 3, 1, 1).to(device, **to).requires_grad_(False)

    return {
        "fp32 NCHW": (conv(), x),
        "fp32 channels_last": (conv(memory_format=cl), x.contiguous(memory_format=cl)),
        "bf16 channels_last": (conv(dtype=torch.bfloat16, memory_format=cl),
                               x.to(torch.bfloat16).contiguous(memory_format=cl)),
    }


def conv_times(device: torch.device, batch: int, size: int, reps: int, names: tuple[str, ...] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per forward of the :func:`conv_cases` cases (all, or ``names``) under ``inference_mode``, interleaved."""

    def forward(conv: nn.Module, x: torch.Tensor):
        def call() -> None:
            with torch.inference_mode():
                conv(x)

        return call

    cases = conv_cases(device, batch, size)
    return interleave({k: forward(*v) for k, v in cases.items() if names is None or k in names}, reps=reps,
                      device=device, clock=clock)


def run(device: torch.device, quick: bool = False) -> dict:
    """Measure the GEMM and conv ceilings; returns rows and ``conv_ceiling_gflops`` (best fp32 layout)."""
    rows = [_gemm(device, quick)]
    batch = 16 if device.type == "cuda" else 4
    flops = 2 * CONV_CHANNELS * CONV_CHANNELS * 9 * batch * CONV_SIZE**2
    times = conv_times(device, batch, CONV_SIZE, reps=5 if quick else 15)
    for name, ts in times.items():
        rows.append({"name": f"conv3x3 {CONV_CHANNELS}ch {name} (B={batch}, {CONV_SIZE}px)",
                     "gflops": flops / min(ts) / 1e9, "gflops_median": flops / median(ts) / 1e9, "seconds": min(ts)})
    fp32 = [r["gflops"] for r in rows[1:] if "fp32" in r["name"]]
    bf16 = [r["gflops"] for r in rows[1:] if "bf16" in r["name"]]
    native, why = bf16_native(device)
    return {"rows": rows, "conv_ceiling_gflops": max(fp32), "conv_ceiling_bf16_gflops": max(bf16),
            "bf16_native": native, "bf16_why": why}


def bf16_skip_reason(device: torch.device, ceiling: dict | None) -> str | None:
    """Why the ``train``/``infer`` sections run no bf16 here (None where bf16 is native), with the measured ceilings."""
    native, why = bf16_native(device)
    if native:
        return None
    if ceiling:
        why += (f"; bf16 conv {ceiling['conv_ceiling_bf16_gflops']:.1f} GFLOP/s vs "
                f"{ceiling['conv_ceiling_gflops']:.1f} in fp32")
    return f"not run: {why}"


def table(result: dict) -> list[str]:
    lines = ["| kernel | GFLOP/s (best call) | GFLOP/s (median call) | s per call (best) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['gflops']:.1f} | {r['gflops_median']:.1f} | {r['seconds']:.4f} |"
              for r in result["rows"]]
    lines.append(f"\nConv ceiling (best fp32 layout): **{result['conv_ceiling_gflops']:.1f} GFLOP/s**.")
    if "bf16_native" in result:
        native = result["bf16_native"]
        lines.append(f"bf16 is {'' if native else 'not '}native here ({result['bf16_why']}): the train and infer "
                     f"sections {'add' if native else 'skip'} bf16 runs.")
    return lines
