"""Section ``ceilings``: what this machine's matmul and 3x3 convolution reach, measured the same way every time.

GEMM: ``A @ B`` with square fp32 matrices (n = 2048 on a CPU, 8192 on a GPU), 2 n^3 FLOPs.
Conv: ``Conv2d(64, 64, 3, padding=1)`` forward under ``inference_mode`` on (B, 64, 128, 128),
B = 4 on a CPU (the training batch), 16 on a GPU; 2 * 64 * 64 * 9 * B * 128^2 FLOPs. NCHW and
channels_last are interleaved; the faster fp32 layout is *the conv ceiling* that the other
sections divide by. bf16 (channels_last) is measured too, for the bf16 rows. A ceiling is what
the machine *can* reach, so it is the best call of N (load from other processes only lowers
it); the median call is shown beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from srlab.bench.utils import interleave, median

CONV_CHANNELS, CONV_SIZE = 64, 128


def _gemm(device: torch.device, quick: bool) -> dict:
    n = (4096 if quick else 8192) if device.type == "cuda" else (1024 if quick else 2048)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
    times = interleave({"gemm": lambda: a @ b}, reps=5 if quick else 15, device=device)["gemm"]
    return {"name": f"GEMM fp32 {n}x{n}", "gflops": 2 * n**3 / min(times) / 1e9,
            "gflops_median": 2 * n**3 / median(times) / 1e9, "seconds": min(times)}


def _conv_cases(device: torch.device) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    batch = 16 if device.type == "cuda" else 4
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, CONV_CHANNELS, CONV_SIZE, CONV_SIZE, generator=gen).to(device)
    cl = torch.channels_last

    def conv(**to) -> nn.Module:  # a fresh module per case: Module.to() converts in place
        return nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, 3, 1, 1).to(device, **to).requires_grad_(False)

    cases = {
        "fp32 NCHW": (conv(), x),
        "fp32 channels_last": (conv(memory_format=cl), x.contiguous(memory_format=cl)),
        "bf16 channels_last": (conv(dtype=torch.bfloat16, memory_format=cl),
                               x.to(torch.bfloat16).contiguous(memory_format=cl)),
    }
    return cases


def run(device: torch.device, quick: bool = False) -> dict:
    """Measure the GEMM and conv ceilings; returns rows and ``conv_ceiling_gflops`` (best fp32 layout)."""
    rows = [_gemm(device, quick)]
    cases = _conv_cases(device)
    batch = next(iter(cases.values()))[1].shape[0]
    flops = 2 * CONV_CHANNELS * CONV_CHANNELS * 9 * batch * CONV_SIZE**2

    def forward(conv: nn.Module, x: torch.Tensor):
        def call() -> None:
            with torch.inference_mode():
                conv(x)

        return call

    times = interleave({k: forward(*v) for k, v in cases.items()}, reps=5 if quick else 15, device=device)
    for name, ts in times.items():
        rows.append({"name": f"conv3x3 {CONV_CHANNELS}ch {name} (B={batch}, {CONV_SIZE}px)",
                     "gflops": flops / min(ts) / 1e9, "gflops_median": flops / median(ts) / 1e9, "seconds": min(ts)})
    fp32 = [r["gflops"] for r in rows[1:] if "fp32" in r["name"]]
    bf16 = [r["gflops"] for r in rows[1:] if "bf16" in r["name"]]
    return {"rows": rows, "conv_ceiling_gflops": max(fp32), "conv_ceiling_bf16_gflops": max(bf16)}


def table(result: dict) -> list[str]:
    lines = ["| kernel | GFLOP/s (best call) | GFLOP/s (median call) | s per call (best) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['gflops']:.1f} | {r['gflops_median']:.1f} | {r['seconds']:.4f} |"
              for r in result["rows"]]
    lines.append(f"\nConv ceiling (best fp32 layout): **{result['conv_ceiling_gflops']:.1f} GFLOP/s**.")
    return lines
