"""Shared set-up of the mmseg train.py and predict.py: data folders, class count, one-line errors.

Two data layouts (``--data DIR``):

- a semantic set written by :mod:`dcl_data.semantic_labels` (``DIR/classes.json``,
  ``DIR/img_dir/{split}``, ``DIR/ann_dir/{split}``): mmseg's ``BaseSegDataset``, classes from
  ``classes.json``, every decode head sized for them;
- Cityscapes (``DIR/leftImg8bit/{split}``, ``DIR/gtFine/{split}`` with cityscapesScripts'
  ``*_gtFine_labelTrainIds.png``): mmseg's ``CityscapesDataset``, 19 classes (the config's).

The config's dataset types decide which layout is expected; a mismatch is one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

from dcl_mmdet.runner_setup import CliError

__all__ = ["CliError", "TRAIN_ID_SUFFIX", "set_data", "set_num_classes"]

TRAIN_ID_SUFFIX = "_gtFine_labelTrainIds.png"  # cityscapesscripts' createTrainIdLabelImgs


def _semantic_classes(root: Path) -> Tuple[str, ...]:
    meta_file = root / "classes.json"
    try:
        meta = json.loads(meta_file.read_text())
        classes = tuple(meta["classes"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CliError(f"--data {root}: cannot read classes.json ({e})") from None
    if len(classes) < 2:
        raise CliError(f"--data {root}: classes.json lists {len(classes)} class(es); need >= 2")
    return classes


def _check_cityscapes(root: Path, split: str) -> None:
    images, labels = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (images, labels):
        if not folder.is_dir():
            raise CliError(f"--data {root}: {folder} not found (Cityscapes layout: leftImg8bit/"
                           f"{split} and gtFine/{split})")
    if next(labels.glob(f"*/*{TRAIN_ID_SUFFIX}"), None) is None:
        raise CliError(f"--data {root}: no *{TRAIN_ID_SUFFIX} under {labels}; make them with "
                       "cityscapesscripts' csCreateTrainIdLabelImgs (rule cityscapes_train_ids)")


def set_data(loader_cfg: dict, root: Path, split: str) -> Optional[Tuple[str, ...]]:
    """Point a dataloader config's dataset at ``root``'s ``split``.

    Returns:
        The class names of a semantic set (the config must use ``BaseSegDataset``), or None
        for Cityscapes (``CityscapesDataset``, whose classes are mmseg's 19).

    Raises:
        CliError: a missing folder or file, or a layout the config's dataset type cannot read.
    """
    root = Path(root)
    if not root.is_dir():
        raise CliError(f"--data {root}: not a folder")
    dataset = loader_cfg["dataset"]
    kind = dataset.get("type")
    if kind == "CityscapesDataset":
        _check_cityscapes(root, split)
        dataset["data_root"] = str(root.resolve())
        dataset["data_prefix"] = dict(img_path=f"leftImg8bit/{split}", seg_map_path=f"gtFine/{split}")
        return None
    if kind != "BaseSegDataset":
        raise CliError(f"dataset type {kind!r} is not supported (BaseSegDataset or CityscapesDataset)")
    classes = _semantic_classes(root)
    for sub in ("img_dir", "ann_dir"):
        if not (root / sub / split).is_dir():
            raise CliError(f"--data {root}: {sub}/{split} not found (a dcl_data.semantic_labels folder?)")
    dataset["data_root"] = str(root.resolve())
    dataset["data_prefix"] = dict(img_path=f"img_dir/{split}", seg_map_path=f"ann_dir/{split}")
    dataset["metainfo"] = dict(classes=classes)
    return classes


def set_num_classes(cfg, num_classes: int) -> None:
    """Size every decode head (and auxiliary head) for ``num_classes`` classes."""
    for key in ("decode_head", "auxiliary_head"):
        heads = cfg.model.get(key)
        if heads is None:
            continue
        for head in heads if isinstance(heads, (list, tuple)) else [heads]:
            head["num_classes"] = num_classes
