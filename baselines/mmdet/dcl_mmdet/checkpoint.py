"""Strict loading of pretrained weights in mmdetection configs, checked before training starts.

mmengine loads both ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and ``load_from`` with
``strict=False`` and only logs what did not fit. :func:`check_weights_fit` reads each local file
first and compares it with the module it initialises (:func:`dcl_data.weights.check_fit`):

- a ``Pretrained`` init of a sub-module (the ImageNet backbone) must fill that module
  completely; the classifier of the ImageNet file (``fc.*``, ``head.*``) is dropped on purpose;
- ``load_from`` (a whole detector) must fill the whole model, except the key prefixes listed
  in the config's ``load_from_dropped`` (e.g. class-specific predictors from another dataset).

``num_batches_tracked`` is ignored on both sides, as mmengine's loader does.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence


from dcl_data.weights import (CheckpointMismatch, WeightsFileError, check_fit, compare_state_dicts,
                              read_state_dict)

from .runner_setup import CliError

__all__ = ["CLASSIFIER_HEADS", "check_weights_fit", "checkpoint_shapes"]

#: An ImageNet classifier's head: never part of a detection backbone, dropped on purpose.
CLASSIFIER_HEADS = ("fc.", "head.")
_IGNORE = ("num_batches_tracked",)


def checkpoint_shapes(path: str, prefix: Optional[str] = None) -> dict:
    """``{key: shape}`` of a weights file as mmengine would load it.

    Unwraps ``state_dict``/``model``, strips ``module.`` (mmengine's default revise_keys) and,
    with ``prefix`` (PretrainedInit's option), keeps only the keys under it, prefix removed.

    Raises:
        CliError: missing or unreadable file, or no dict of tensors.
    """
    try:
        data = read_state_dict(path)
    except WeightsFileError as err:
        raise CliError(str(err)) from None
    shapes = {k.removeprefix("module."): tuple(v.shape) for k, v in data.items()}
    if prefix:
        p = prefix if prefix.endswith(".") else prefix + "."
        shapes = {k[len(p):]: s for k, s in shapes.items() if k.startswith(p)}
    return shapes


def _module_shapes(module_cfg: dict) -> dict:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = copy.deepcopy(dict(module_cfg))
    cfg.pop("init_cfg", None)
    module = MODELS.build(cfg)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check(module_cfg: dict, path: str, prefix: Optional[str], dropped: Sequence[str],
           source: str) -> List[str]:
    missing, unexpected, mismatch = compare_state_dicts(
        _module_shapes(module_cfg), checkpoint_shapes(path, prefix), ignore=_IGNORE)
    try:
        report = check_fit(missing, unexpected, mismatch, dropped=dropped, source=source)
    except CheckpointMismatch as err:
        raise CliError(str(err)) from None
    return report.log_lines(source, "")


def check_weights_fit(model_cfg: dict, load_from: Optional[str] = None,
                      load_from_dropped: Sequence[str] = ()) -> List[str]:
    """Check the local files of the model's ``Pretrained`` inits and of ``load_from``.

    Args:
        model_cfg: ``cfg.model``; each direct sub-module config (``backbone``, ``neck``, ...)
            with ``init_cfg.type == 'Pretrained'`` and a local ``checkpoint`` is checked.
        load_from: ``cfg.load_from``, a whole-model checkpoint, or None.
        load_from_dropped: key prefixes of the whole model ``load_from`` may leave out.

    Returns:
        Log lines naming what was dropped on purpose.

    Raises:
        CliError: one line naming the first missing and unexpected key (``check_fit``).
    """
    lines: List[str] = []
    for name, sub in model_cfg.items():
        init = sub.get("init_cfg") if isinstance(sub, dict) else None
        if not (isinstance(init, dict) and init.get("type") == "Pretrained"):
            continue
        ckpt = init.get("checkpoint")
        if not isinstance(ckpt, str) or "://" in ckpt:
            continue  # mmengine's own names (torchvision://...) are left to mmengine
        lines += _check(sub, ckpt, init.get("prefix"), CLASSIFIER_HEADS,
                        f"{ckpt} (model.{name}.init_cfg)")
    if load_from and "://" not in load_from:
        lines += _check(model_cfg, load_from, None, tuple(load_from_dropped),
                        f"{load_from} (load_from)")
    return lines
