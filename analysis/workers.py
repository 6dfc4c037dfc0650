"""How many worker processes the analysis CLIs may start: at most one per usable CPU.

``--jobs 1000`` used to fork one worker per image (issue 15); more workers than CPUs only add
memory and start-up time, since the per-image work is CPU-bound.
"""

from __future__ import annotations

import os

__all__ = ["usable_cpus", "cap_jobs"]


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (Linux, also
    under ``taskset`` or a container's cpuset), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cap_jobs(jobs: int) -> int:
    """``jobs`` capped at :func:`usable_cpus` (callers check ``jobs >= 1`` themselves)."""
    return min(int(jobs), usable_cpus())
