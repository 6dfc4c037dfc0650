"""COCO-format datasets given as paths on the command line (``ANNOTATIONS.json:IMAGE_ROOT``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

__all__ = ["parse_data_arg", "load_categories"]


def parse_data_arg(spec: str, flag: str = "--data") -> Tuple[Path, Path]:
    """Split ``ANNOTATIONS.json:IMAGE_ROOT`` at its last colon.

    Raises:
        ValueError: the spec is not of that form (the message names ``flag``).
    """
    json_file, sep, image_root = spec.rpartition(":")
    if not (sep and json_file and image_root):
        raise ValueError(f"{flag} {spec!r}: expected ANNOTATIONS.json:IMAGE_ROOT")
    return Path(json_file), Path(image_root)


def load_categories(json_file: Path, image_root: Path) -> Tuple[Tuple[str, ...], List[int]]:
    """Validate a COCO instances file and return its class names and category ids.

    mmdet's ``CocoDataset`` numbers the classes given in ``metainfo`` in the order of the
    file's ``categories`` list, so label ``i`` is the i-th category of the file; the returned
    ids map labels back to the dataset's own category ids.

    Returns:
        (class names, category ids), both in the file's category order.

    Raises:
        dcl_data.DatasetError: missing or malformed file or image folder, or two categories
            with the same name (mmdet matches classes by name); one line naming the file.
    """
    from dcl_data import DatasetError, validate_coco_instances

    validate_coco_instances(json_file, image_root=image_root)
    with open(json_file, encoding="utf-8") as f:
        categories = json.load(f)["categories"]
    names = [str(c["name"]) for c in categories]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DatasetError(f"{json_file}: categories: duplicated names {duplicated} "
                           "(mmdet maps classes by name)")
    return tuple(names), [int(c["id"]) for c in categories]

