"""Training cost of a run: wall time per iteration and peak memory (paper Table 9).

Framework-free: a trainer calls :meth:`TrainingCost.start` before its first iteration,
:meth:`TrainingCost.iteration_done` after each one and :meth:`TrainingCost.write` at the end.
The detectron2 and mmdetection plug-ins wrap it in their own hook types.

The paper reports "computation and GPU memory cost (counted by PyTorch's API)": on a CUDA
device the peak is ``torch.cuda.max_memory_allocated`` (tensors only, as PyTorch counts it);
on the CPU it is the process's peak resident set size (``getrusage`` ``ru_maxrss``), which
includes the interpreter and libraries. ``memory_kind`` says which, so the two are never
compared by mistake.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from typing import Optional

import torch

from .io import write_json_atomic

__all__ = ["TrainingCost", "MEMORY_KINDS"]

MEMORY_KINDS = ("cuda_max_allocated", "cpu_peak_rss")


class TrainingCost:
    """Times the iterations of one training session and reads its peak memory.

    Time per iteration is the wall time between the ends of consecutive iterations (data
    loading included, as a user waiting for a run sees it). The first ``warmup`` intervals are
    left out of the median and mean: they include lazy initialisation and allocator growth.
    On CUDA no synchronisation is forced per iteration (it would slow the run being measured);
    over many iterations the asynchronous queue averages out, and :meth:`summary` synchronises
    once before reading the clock of the last iteration.

    Args:
        device: the training device (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``).
        warmup: intervals excluded from the statistics (default 5, >= 0).

    Raises:
        ValueError: ``warmup`` < 0, or a CUDA device requested where CUDA is unavailable.
    """

    def __init__(self, device="cpu", warmup: int = 5):
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device} requested but CUDA is not available")
        self.warmup = warmup
        self._t0: Optional[float] = None
        self._last: Optional[float] = None
        self._intervals: list[float] = []

    @property
    def memory_kind(self) -> str:
        return "cuda_max_allocated" if self.device.type == "cuda" else "cpu_peak_rss"

    def start(self) -> None:
        """Mark the start of training (resets PyTorch's CUDA peak counter on a CUDA device)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._t0 = self._last = time.perf_counter()
        self._intervals = []

    @property
    def iterations_timed(self) -> int:
        return len(self._intervals)

    def iteration_done(self) -> None:
        """Record the end of one iteration. Raises RuntimeError before :meth:`start`."""
        if self._last is None:
            raise RuntimeError("TrainingCost.iteration_done() called before start()")
        now = time.perf_counter()
        self._intervals.append(now - self._last)
        self._last = now

    def peak_memory_mib(self) -> float:
        """Peak memory so far in MiB (see the module docstring for what is counted)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        # Linux reports ru_maxrss in KiB, macOS in bytes.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if platform.system() == "Darwin" else rss / 2**10

    def summary(self, **extra) -> dict:
        """The session's cost as a JSON-ready dict; ``extra`` items are added as they are.

        Keys: ``iterations`` (timed this session), ``seconds_per_iter`` (median after warm-up,
        ``None`` if no interval is left), ``seconds_per_iter_mean``, ``total_seconds`` (start to
        last iteration), ``peak_memory_mib``, ``memory_kind``, ``device`` (e.g. "cpu",
        "NVIDIA H100 80GB HBM3"), ``threads`` (torch intra-op threads), ``torch`` (version).
        """
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            device_name = torch.cuda.get_device_name(self.device)
        else:
            device_name = f"cpu ({os.cpu_count()} cores)"
        kept = self._intervals[self.warmup:]
        total = (self._last - self._t0) if self._t0 is not None else 0.0
        return {
            "iterations": len(self._intervals),
            "seconds_per_iter": statistics.median(kept) if kept else None,
            "seconds_per_iter_mean": statistics.fmean(kept) if kept else None,
            "total_seconds": total,
            "peak_memory_mib": self.peak_memory_mib(),
            "memory_kind": self.memory_kind,
            "device": device_name,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            **extra,
        }

    def write(self, path, **extra) -> dict:
        """Write :meth:`summary` to ``path`` as JSON, atomically; returns the dict."""
        summary = self.summary(**extra)
        write_json_atomic(path, summary, indent=2)
        return summary
