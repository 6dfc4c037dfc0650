"""Register COCO-format instance-segmentation datasets given as file paths."""

from __future__ import annotations

import json
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances


def parse_data_arg(spec: str, flag: str = "--dataset") -> tuple[str, Path, Path]:
    """Split ``NAME=ANNOTATIONS.json:IMAGE_ROOT`` into its parts (the paths at the last colon,
    as ``dcl_mmdet.data.parse_data_arg`` splits its ``ANNOTATIONS.json:IMAGE_ROOT``).

    Raises:
        ValueError: the spec is not of that form (the message names ``flag``).
    """
    name, sep, paths = spec.partition("=")
    json_file, sep2, image_root = paths.rpartition(":")
    if not (sep and sep2 and name and json_file and image_root):
        raise ValueError(f"{flag} {spec!r}: expected NAME=ANNOTATIONS.json:IMAGE_ROOT")
    return name, Path(json_file), Path(image_root)


def register_coco_dataset(name: str, json_file: Path, image_root: Path) -> int:
    """Register ``name`` with detectron2 after checking the files; return its category count.

    Checks run before any training starts, so a missing or malformed file fails at once with a
    one-line error naming it (``dcl_data.DatasetError``), not deep inside a data loader.
    """
    from dcl_data import validate_coco_instances

    validate_coco_instances(json_file, image_root=image_root)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(json_file), str(image_root))
    with open(json_file) as f:
        return len(json.load(f)["categories"])


def unregistered_datasets(cfg, splits=("TRAIN", "TEST")) -> list[str]:
    """The names in ``DATASETS.<split>`` (for each of ``splits``) that no one registered.

    detectron2 would find out only when it builds that loader: for ``DATASETS.TEST``, after
    the whole training (the evaluation hook runs at the end).
    """
    known = set(DatasetCatalog.list())
    return [n for split in splits for n in cfg.DATASETS[split] if n not in known]
