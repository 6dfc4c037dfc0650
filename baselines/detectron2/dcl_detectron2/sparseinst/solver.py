"""The optimizer SparseInst trains with (AdamW; Cheng et al., CVPR 2022, Sec. 4)."""

from __future__ import annotations

from typing import Any, Dict, List

import torch
from torch import nn

from detectron2.solver.build import maybe_add_gradient_clipping

__all__ = ["OPTIMIZERS", "optimizer_param_groups", "build_optimizer"]

OPTIMIZERS = ("SGD", "ADAMW")

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
               nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)


def optimizer_param_groups(cfg, model: nn.Module) -> List[Dict[str, Any]]:
    """One group per trainable parameter, with its learning rate and weight decay.

    lr: ``SOLVER.BASE_LR``, times ``SOLVER.BACKBONE_MULTIPLIER`` under ``backbone.``.
    Weight decay: ``SOLVER.WEIGHT_DECAY_NORM`` in normalisation layers,
    ``SOLVER.WEIGHT_DECAY_BIAS`` for biases, else ``SOLVER.WEIGHT_DECAY`` (detectron2's rules).
    """
    groups, seen = [], set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            lr = cfg.SOLVER.BASE_LR
            if module_name == "backbone" or module_name.startswith("backbone."):
                lr *= cfg.SOLVER.BACKBONE_MULTIPLIER
            if isinstance(module, _NORM_TYPES):
                decay = cfg.SOLVER.WEIGHT_DECAY_NORM
            elif name == "bias":
                decay = cfg.SOLVER.WEIGHT_DECAY_BIAS
            else:
                decay = cfg.SOLVER.WEIGHT_DECAY
            groups.append({"params": [param], "lr": lr, "weight_decay": decay})
    return groups


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER``: "SGD" (momentum ``SOLVER.MOMENTUM``, Nesterov ``SOLVER.NESTEROV``)
    or "ADAMW" (``SOLVER.AMSGRAD``), over :func:`optimizer_param_groups`, with detectron2's
    ``SOLVER.CLIP_GRADIENTS``. A drop-in for ``DefaultTrainer.build_optimizer``; needs the
    keys of :func:`add_sparseinst_config`.

    Raises:
        ValueError: unknown ``SOLVER.OPTIMIZER``.
    """
    name = cfg.SOLVER.OPTIMIZER.upper()
    if name not in OPTIMIZERS:
        raise ValueError(f"SOLVER.OPTIMIZER must be one of {OPTIMIZERS}, got {cfg.SOLVER.OPTIMIZER!r}")
    params = optimizer_param_groups(cfg, model)
    if name == "SGD":
        return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(
            params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV,
        )
    return maybe_add_gradient_clipping(cfg, torch.optim.AdamW)(
        params, lr=cfg.SOLVER.BASE_LR, amsgrad=cfg.SOLVER.AMSGRAD,
    )
