"""Multi-process training on CPUs (``torchrun ... --launcher pytorch`` without a GPU).

mmengine 0.10.7 assumes CUDA for ``--launcher pytorch``: its ``init_dist`` calls
``torch.cuda.set_device(LOCAL_RANK)`` and its default DDP wrapper passes
``device_ids=[LOCAL_RANK]``, both of which fail on a CPU-only machine, and the configs' backend
is NCCL. :func:`setup_cpu_distributed` prepares the run instead: it joins the process group
with the gloo backend from torchrun's environment (``MASTER_ADDR``, ``RANK``, ...), which
mmengine then finds initialised and keeps, and wraps the model in ``MMDistributedDataParallel``
without device ids. With CUDA, or without a launcher, it changes nothing. It is how the
multi-process path is tested on the CPU (tests/test_mmdet_distributed.py).
"""

from __future__ import annotations

import os

import torch

__all__ = ["setup_cpu_distributed"]


def setup_cpu_distributed(cfg) -> bool:
    """Initialise gloo and a CPU DDP wrapper for ``cfg.launcher == 'pytorch'`` without CUDA.

    Args:
        cfg: the resolved mmengine config (``launcher``, ``env_cfg``, ``model_wrapper_cfg``
            and ``find_unused_parameters`` are read or set).

    Returns:
        True when it set the run up for CPU processes, else False.

    Raises:
        RuntimeError: ``--launcher pytorch`` outside torchrun (no ``RANK``/``WORLD_SIZE``).
    """
    import torch.distributed as dist

    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return False
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher pytorch needs torchrun's environment ({', '.join(missing)} "
                           "unset): start with python -m torch.distributed.run")
    cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None,
                                 broadcast_buffers=False,
                                 find_unused_parameters=cfg.get("find_unused_parameters", False))
    return True
