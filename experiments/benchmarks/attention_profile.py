"""Where an attention SR net's CPU forward goes, and whether PyTorch's fused attention applies (issue 26).

    nice -n 10 python experiments/benchmarks/attention_profile.py [--lr 64] [--reps 3] [--threads 1]

One torch thread by default: on a shared 2-core machine under load, two OpenMP threads wait on
each other at every operator, and a net of many small operators runs 4-10x slower than on one
(DAT-light at 64x64: 2.2 s on 1 thread, 8-26 s on 2, load average 8); the profile would then
show barrier waits, not the net.

1. ``torch.profiler`` on the CPU forward (inference mode, fp32, random weights, 1x3xLRxLR) of
   ``dat_light`` (spandrel's DAT: explicit ``q @ k^T``, softmax, ``attn @ v``) and ``swinir_light``
   (srlab's SwinIR: ``F.scaled_dot_product_attention``); every operator's *self* time is put in one
   group: attention (bmm, softmax, SDPA), linear, conv, LayerNorm, copies and layout (copy_, clone,
   cat, roll, pad, index), elementwise, other.
2. DAT's window attention rewritten with ``F.scaled_dot_product_attention`` (the position bias and the
   shift mask as its float ``attn_mask``; spandrel's code is patched in this process only): the
   largest output difference and the forward time of both, interleaved.

Writes ``results/attention_profile-<host>-<date>.md`` and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import socket
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from srlab.config import model_net_config
from srlab.device import cpu_name
from srlab.infer import build_net
from srlab.infer.efficiency import count_macs

GROUPS = {
    "attention (QK^T, AV, softmax, SDPA)": ("aten::bmm", "aten::baddbmm", "aten::_softmax", "aten::_safe_softmax",
                                           "aten::_scaled_dot_product_flash_attention_for_cpu"),
    "linear (qkv, proj, MLP)": ("aten::addmm", "aten::mm"),
    "conv": ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution", "aten::_slow_conv2d_forward",
             "aten::_nnpack_spatial_convolution", "aten::thnn_conv2d"),
    "LayerNorm": ("aten::native_layer_norm",),
    "copies and layout (copy_, clone, cat, roll, pad, index)": (
        "aten::copy_", "aten::clone", "aten::cat", "aten::roll", "aten::constant_pad_nd", "aten::index",
        "aten::contiguous", "aten::_unsafe_view", "aten::view", "aten::reshape", "aten::permute", "aten::transpose",
        "aten::as_strided", "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::expand", "aten::slice",
        "aten::select", "aten::unsqueeze", "aten::t", "aten::resize_", "aten::repeat", "aten::unfold",
        "aten::pixel_shuffle", "aten::zeros", "aten::fill_", "aten::zero_"),
    "elementwise (add, mul, GELU, sigmoid, ...)": (
        "aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::div", "aten::sub", "aten::gelu", "aten::sigmoid",
        "aten::leaky_relu", "aten::relu", "aten::relu_", "aten::tanh", "aten::sqrt", "aten::pow", "aten::mean",
        "aten::sum", "aten::norm", "aten::linalg_vector_norm", "aten::clamp_min", "aten::expand_as", "aten::neg",
        "aten::exp", "aten::rsub", "aten::div_", "aten::masked_fill"),
}
OP_GROUP = {op: group for group, ops in GROUPS.items() for op in ops}


def net_of(model: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_net(model_net_config(model, scale=4), "profile").eval().requires_grad_(False)


def profile_forward(net: torch.nn.Module, x: torch.Tensor, reps: int) -> tuple[dict[str, float], float, list]:
    """({group: self ms per forward}, wall ms per forward, top operators) over ``reps`` profiled forwards."""
    with torch.inference_mode():
        net(x)  # warm-up: oneDNN kernels, cached masks
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(reps):
                net(x)
            wall = (time.perf_counter() - start) / reps * 1e3
    groups: dict[str, float] = defaultdict(float)
    ops = prof.key_averages()
    for ev in ops:
        groups[OP_GROUP.get(ev.key, "other")] += ev.self_cpu_time_total / 1e3 / reps
    top = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    return dict(groups), wall, [(e.key, e.self_cpu_time_total / 1e3 / reps, e.count // reps) for e in top]


def sdpa_window_attention(self, qkv, H, W, mask=None):
    """spandrel's DAT ``Spatial_Attention.forward`` with ``F.scaled_dot_product_attention`` (same maths)."""
    from spandrel.architectures.DAT.__arch.DAT import windows2img

    q, k, v = qkv[0], qkv[1], qkv[2]
    B, L, C = q.shape
    q, k, v = self.im2win(q, H, W), self.im2win(k, H, W), self.im2win(v, H, W)  # (B*nW, heads, N, C/heads)
    n = self.H_sp * self.W_sp
    bias = None
    if self.position_bias:
        pos = self.pos(self.rpe_biases)
        bias = pos[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1).unsqueeze(0)  # (1, h, N, N)
    if mask is not None:  # (nW, N, N) -> (B*nW, 1, N, N), windows of one image after another as im2win orders them
        shift = mask.unsqueeze(1).repeat(B, 1, 1, 1)
        bias = shift if bias is None else bias + shift
    x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    x = x.transpose(1, 2).reshape(-1, n, C)
    return windows2img(x, self.H_sp, self.W_sp, H, W)


def sdpa_trial(lr: int, reps: int) -> dict:
    """DAT-light with its own attention vs the SDPA rewrite: max |difference| and interleaved forward times."""
    from spandrel.architectures.DAT.__arch import DAT as dat_module

    net = net_of("dat_light")
    x = torch.rand(1, 3, lr, lr, generator=torch.Generator().manual_seed(0))
    own = dat_module.Spatial_Attention.forward
    times: dict[str, list[float]] = {"explicit": [], "sdpa": []}
    outs = {}
    with torch.inference_mode():
        for r in range(reps + 1):
            for name, fwd in (("explicit", own), ("sdpa", sdpa_window_attention))[:: 1 if r % 2 else -1]:
                dat_module.Spatial_Attention.forward = fwd
                start = time.perf_counter()
                outs[name] = net(x)
                if r:  # the first round warms both up
                    times[name].append(time.perf_counter() - start)
    dat_module.Spatial_Attention.forward = own
    return {"max_abs_diff": (outs["explicit"] - outs["sdpa"]).abs().max().item(),
            "explicit_ms": statistics.median(times["explicit"]) * 1e3, "sdpa_ms": statistics.median(times["sdpa"]) * 1e3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=int, default=64, help="LR side of the profiled input (DAT-light's masks are cached at 64)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (see the module's docstring)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as srlab.train and srlab.bench run
    x = torch.rand(1, 3, args.lr, args.lr, generator=torch.Generator().manual_seed(0))
    lines = ["# Where an attention net's CPU forward goes", "",
             f"`python experiments/benchmarks/attention_profile.py --lr {args.lr} --reps {args.reps}`", "",
             f"- CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
             f"host {socket.gethostname()}, {datetime.datetime.now().isoformat(timespec='seconds')}, "
             f"load average {', '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}",
             f"- input 1x3x{args.lr}x{args.lr}, fp32, inference mode, random weights, denormals flushed; self CPU "
             "time per forward "
             f"(mean of {args.reps} profiled forwards after one warm-up)", ""]
    for model in ("dat_light", "swinir_light"):
        net = net_of(model)
        macs, _ = count_macs(net, args.lr)
        groups, wall, top = profile_forward(net, x, args.reps)
        total = sum(groups.values())
        lines += [f"## {model} ({type(net).__name__}, {sum(q.numel() for q in net.parameters()) / 1e6:.2f}M params, "
                  f"{macs / 1e9:.2f} GMACs at {args.lr}x{args.lr})", "",
                  f"Wall {wall:.0f} ms per forward ({2 * macs / wall / 1e6:.1f} GFLOP/s of counted work).", "",
                  "| group | ms | share |", "|---|---:|---:|"]
        lines += [f"| {g} | {ms:.1f} | {ms / total:.0%} |" for g, ms in sorted(groups.items(), key=lambda kv: -kv[1])]
        lines += ["", "Top operators by self time: " + ", ".join(f"`{k}` {ms:.1f} ms ({n}x)" for k, ms, n in top), ""]
    trial = sdpa_trial(args.lr, args.reps)
    lines += ["## DAT-light's window attention through `F.scaled_dot_product_attention`", "",
              f"Same output (max |difference| {trial['max_abs_diff']:.1e}); forward {trial['explicit_ms']:.0f} ms "
              f"with spandrel's explicit attention, {trial['sdpa_ms']:.0f} ms with SDPA "
              f"({trial['explicit_ms'] / trial['sdpa_ms']:.2f}x), medians of {args.reps} interleaved forwards.", ""]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).resolve().parent / "results"
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    (out / f"attention_profile-{socket.gethostname()}-{stamp}.md").write_text(text)


if __name__ == "__main__":
    main()
