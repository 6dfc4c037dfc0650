"""Shared set-up of train.py and predict.py: config loading, data paths, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

__all__ = ["CliError", "check_contrast_cfg", "check_pretrained", "load_config",
           "schedule_warnings", "set_dataset", "set_num_classes"]

# mmdet wraps the real dataset in these; paths and classes go to the innermost one.
_WRAPPERS = ("RepeatDataset", "ClassBalancedDataset", "MultiImageMixDataset")


class CliError(Exception):
    """A user error worth one line on stderr (bad path, config or option)."""


def load_config(path: str, options: Optional[dict], loss: Optional[Sequence[str]] = None,
                seed: Optional[int] = None):
    """Read an mmengine config file, write the ``--loss`` words into it
    (:func:`dcl_mmdet.contrast.apply_loss_settings`) and ``--seed`` into ``randomness.seed``,
    then merge ``--cfg-options``.

    Raises:
        CliError: the file is missing or does not parse, bad ``--loss`` words, or an option
            does not merge.
    """
    from mmengine.config import Config

    from dcl_core import parse_loss_option

    from .contrast import apply_loss_settings

    if not Path(path).is_file():
        raise CliError(f"config file not found: {path}")
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # mmengine raises many types for a broken file
        raise CliError(f"{path}: {type(e).__name__}: {' '.join(str(e).split())}") from None
    if loss:
        try:
            apply_loss_settings(cfg, parse_loss_option(loss))
        except (TypeError, ValueError) as e:
            raise CliError(f"--loss: {e}") from None
    if seed is not None:
        cfg.randomness = dict(cfg.get("randomness", {}), seed=int(seed))
    if options:
        try:
            cfg.merge_from_dict(options)
        except Exception as e:
            raise CliError(f"--cfg-options: {type(e).__name__}: {' '.join(str(e).split())}") from None
    return cfg


def _leaf_dataset(node: dict) -> dict:
    while node.get("type") in _WRAPPERS:
        node = node["dataset"]
    return node


def set_dataset(loader_cfg: dict, spec: str, flag: str) -> Tuple[Tuple[str, ...], List[int]]:
    """Point a dataloader config's (innermost) CocoDataset at ``JSON:IMAGES`` and its classes.

    Returns:
        (class names, category ids) of the file (:func:`dcl_mmdet.data.load_categories`).

    Raises:
        CliError: malformed spec, or a missing/malformed file or image folder.
    """
    from dcl_data import DatasetError

    from .data import load_categories, parse_data_arg

    try:
        json_file, image_root = parse_data_arg(spec, flag)
        classes, ids = load_categories(json_file, image_root)
    except (ValueError, DatasetError) as e:  # DatasetError is a ValueError; named for clarity
        raise CliError(f"{flag}: {e}") from None
    leaf = _leaf_dataset(loader_cfg["dataset"])
    leaf["data_root"] = ""
    leaf["ann_file"] = str(json_file.resolve())
    leaf["data_prefix"] = dict(img=str(image_root.resolve()) + "/")
    leaf["metainfo"] = dict(classes=classes)
    return classes, ids


def set_num_classes(cfg, num_classes: int) -> None:
    """Size the box and mask predictors for ``num_classes`` classes."""
    roi_head = cfg.model.roi_head
    roi_head.bbox_head.num_classes = num_classes
    roi_head.mask_head.num_classes = num_classes


def _pretrained_paths(node) -> List[str]:
    found: List[str] = []
    if isinstance(node, dict):
        if node.get("type") == "Pretrained" and isinstance(node.get("checkpoint"), str):
            found.append(node["checkpoint"])
        for value in node.values():
            found += _pretrained_paths(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found += _pretrained_paths(value)
    return found


def check_pretrained(model_cfg: dict) -> None:
    """Fail early when a ``Pretrained`` init names a local file that is not there, or that
    weights-only loading refuses (damaged, or carrying code).

    Raises:
        CliError: naming the file; URLs and ``scheme://`` names are left to mmengine.
    """
    from .checkpoint import checkpoint_error

    for path in _pretrained_paths(model_cfg):
        if "://" not in path and not Path(path).is_file():
            raise CliError(f"pretrained weights not found: {path} (put the file there, or set "
                           "model.backbone.init_cfg=None to train from scratch)")
        if "://" not in path and (error := checkpoint_error(path)):
            raise CliError(f"pretrained weights {path} refused: {error}")


def check_contrast_cfg(model_cfg: dict) -> None:
    """Fail early on a bad ``loss_contrast`` of the mask head (unknown key, bad value).

    Raises:
        CliError: naming the problem, before any model or data is built.
    """
    from .contrast import build_contrast_loss

    head = model_cfg.get("roi_head", {}).get("mask_head", {})
    try:
        build_contrast_loss(head.get("loss_contrast"), channels=8)  # any valid C: values only
    except (TypeError, ValueError) as e:
        message = str(e).removeprefix("loss_contrast: ")
        raise CliError(f"model.roi_head.mask_head.loss_contrast: {message}") from None


_LOOP_UNITS = {"IterBasedTrainLoop": ("max_iters", False, "iteration"),
               "EpochBasedTrainLoop": ("max_epochs", True, "epoch")}


def schedule_warnings(cfg) -> List[str]:
    """One line per LR step that an override of the schedule's length has left out of step.

    mmengine configs compute ``end`` and ``milestones`` from the length when the file is read,
    so ``--cfg-options train_cfg.max_iters=N`` moves neither (detectron2 warns likewise when
    ``SOLVER.STEPS`` exceed ``SOLVER.MAX_ITER``). Checks the schedulers counted in the train
    loop's unit (``by_epoch`` False for ``IterBasedTrainLoop``, True for
    ``EpochBasedTrainLoop``); other loops and units are not checked.

    Returns:
        Messages, empty when every scheduler ends within the schedule and every milestone is
        reached, and, for a scheduler with milestones, its ``end`` is the schedule's end.
    """
    loop = cfg.get("train_cfg") or {}
    if loop.get("type") not in _LOOP_UNITS:
        return []
    key, by_epoch, unit = _LOOP_UNITS[loop["type"]]
    length = loop.get(key)
    schedulers = cfg.get("param_scheduler") or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    out = []
    for i, sched in enumerate(schedulers):
        if length is None or bool(sched.get("by_epoch", True)) != by_epoch:
            continue
        name = f"param_scheduler[{i}] ({sched.get('type')})"
        end = sched.get("end")
        milestones = list(sched.get("milestones") or [])
        if end is not None and end > length:
            out.append(f"{name} ends at {unit} {end}, past train_cfg.{key}={length}: "
                       "override its end too")
        elif milestones and end is not None and end < length:
            out.append(f"{name} ends at {unit} {end}, before train_cfg.{key}={length}: the LR "
                       "stays where it is from there; override its end and milestones too")
        limit = length if end is None else min(end, length)
        late = [m for m in milestones if m >= limit]
        if late:
            out.append(f"{name}: milestone(s) {late} never reached in {limit} {unit}s: "
                       "override its milestones too")
    return out
