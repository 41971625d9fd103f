"""Measuring tools of ``python -m srlab.bench``: machine description, interleaved timing, FLOPs, peak memory.

Timing rule for every section: candidates that are compared run *interleaved* (A, B, A, B, ...,
with the order rotated every round) and are summarised by their median, so that load from other
processes on a shared machine hits all of them alike and ratios stay meaningful.
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import os
import platform
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import torch

from srlab.device import cpu_bf16_units, cpu_name
from srlab.infer.efficiency import flop_counter

REPO_ROOT = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    """The CPU's marketing name (:func:`srlab.device.cpu_name`: model cards say it too)."""
    return cpu_name()


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_commit() -> tuple[str, bool]:
    """The checkout's short commit hash ("" outside a git checkout) and whether tracked files have changes."""
    return _git("rev-parse", "--short", "HEAD"), bool(_git("status", "--porcelain", "--untracked-files=no"))


def commit_label() -> str:
    """The commit as a study's report names it: the short hash, flagged when tracked files have changes."""
    sha, dirty = git_commit()
    return (sha or "unknown") + (" (with local changes)" if dirty else "")


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, GPU, library versions, threads, load, commit."""
    import lightning

    commit, dirty = git_commit()
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_bf16_units(),  # native bf16 instructions (amx_bf16, avx512_bf16, arm bf16) or None
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "device": str(device),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "commit": commit,
        "dirty": dirty,
    }
    if device.type == "cuda":
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
        # PyTorch's defaults: "fp32" convolutions run in TF32 on tensor cores, fp32 matmuls do not
        info["tf32"] = {"cudnn_conv": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    return info


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds one call of ``fn`` takes on ``clock`` (wall clock by default), GPU work included."""
    sync(device)
    start = clock()
    fn()
    sync(device)
    return clock() - start


def interleave(fns: dict[str, Callable[[], Any]], reps: int, device: torch.device,
               warmup: int = 1, clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Time every candidate ``reps`` times, alternating them and rotating the order each round.

    Args:
        fns: name -> zero-argument callable (one unit of work, e.g. one training step).
        reps: measured calls per candidate.
        device: for synchronisation.
        warmup: unmeasured calls per candidate first (lazy init, allocator, oneDNN primitive cache).
        clock: wall clock by default; ``time.thread_time`` counts only this thread's CPU time, which
            other processes' load cannot stretch (for one-thread CPU work).
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(timed(fns[name], device, clock))
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def paired_speedup(base: list[float], other: list[float]) -> float:
    """Median over rounds of base[r] / other[r]: each pair ran back to back, so slow load drifts cancel."""
    return median([b / o for b, o in zip(base, other)])


def spread(xs: list[float]) -> str:
    """``min-max`` of a list of seconds, for the tables (shows how noisy a median is)."""
    return f"{min(xs):.3g}-{max(xs):.3g}" if xs else ""


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs (multiply-add = 2) of the matmuls, convolutions and attention ``fn`` runs, forward and backward.

    Counted by :func:`srlab.infer.efficiency.flop_counter`: PyTorch's counter plus the CPU kernel of
    ``scaled_dot_product_attention``, which PyTorch's own registry leaves out.
    """
    with flop_counter() as counter:
        fn()
    return int(counter.get_total_flops())


def _malloc_trim() -> None:
    """Return glibc's free heap memory to the OS (no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of a block: GPU allocator peak on CUDA, else the process's peak RSS (Linux VmHWM).

    On the CPU the kernel's high-water mark is reset on entry (``/proc/self/clear_refs``), so
    ``peak`` is the highest resident size reached inside the block and ``growth`` the part above
    the resident size at entry (what the block itself needed). Sizes are in bytes; ``exact`` is
    False where the mark cannot be reset (then ``peak`` is the process's lifetime peak).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = self.peak = 0
        self.exact = True

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        gc.collect()
        _malloc_trim()  # hand freed heap back first, or reused cached blocks would hide the growth
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.exact = False
        self.base = (_status_kib("VmRSS") or 0) * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            hwm = _status_kib("VmHWM")
            if hwm is None:
                import resource

                self.exact, hwm = False, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak = hwm * 1024

    @property
    def growth(self) -> int:
        return max(self.peak - self.base, 0)


def gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 3)
