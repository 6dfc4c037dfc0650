"""Read labelme JSON annotations into polygon :class:`~dcl_data.coco.Instance` objects.

labelme's convention (as its own ``labelme2coco`` example applies it): shapes with the same
label and the same non-null ``group_id`` are one instance; a shape with ``group_id`` null
is an instance of its own; shapes labelled ``__ignore__`` mark regions to ignore. Files
annotated for semantic segmentation (one object per label and image) can instead be
grouped by label (``group_by="label"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .coco import Instance
from .errors import DatasetError

IGNORE_LABEL = "__ignore__"
_SHAPE_TYPES = ("polygon", "rectangle")


@dataclass
class LabelmeImage:
    """One labelme-annotated image.

    Attributes:
        json_path: the annotation file.
        image_path: the image it annotates (``imagePath`` resolved beside the JSON).
        height, width: image size in pixels (``imageHeight``, ``imageWidth``).
        instances: polygon instances, in the order of their first shape.
        ignored: number of ``__ignore__`` shapes dropped (COCO has no ignore regions
            with ``iscrowd`` 0).
    """

    json_path: Path
    image_path: Path
    height: int
    width: int
    instances: list[Instance]
    ignored: int


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: top level must be a JSON object, got {type(data).__name__}")
    return data


def _shape_polygon(path: Path, index: int, shape: dict) -> list[float]:
    where = f"{path}: shapes[{index}]"
    shape_type = shape.get("shape_type") or "polygon"
    if shape_type not in _SHAPE_TYPES:
        raise DatasetError(f"{where}: shape_type {shape_type!r} is not one of {list(_SHAPE_TYPES)}")
    points = shape.get("points")
    try:
        pts = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: 'points' must be a list of [x, y] pairs") from None
    if shape_type == "rectangle":
        if len(pts) != 2:
            raise DatasetError(f"{where}: a rectangle needs 2 points, got {len(pts)}")
        (x1, y1), (x2, y2) = pts
        pts = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    if len(pts) < 3:
        raise DatasetError(f"{where}: a polygon needs >= 3 points, got {len(pts)}")
    return [v for xy in pts for v in xy]


def read_labelme(
    json_path: Path,
    label_map: Mapping[str, str] | None = None,
    group_by: str = "group_id",
) -> LabelmeImage:
    """Parse one labelme JSON file.

    Args:
        json_path: the labelme annotation (labelme 3.x-5.x format).
        label_map: renames labels to category names; when given, every label other
            than ``__ignore__`` must be a key (a typo then fails loudly instead of
            creating a new category).
        group_by: ``"group_id"`` (labelme's convention, see module doc) or ``"label"``
            (all shapes of one label form one instance).

    Returns:
        A :class:`LabelmeImage` whose instances carry polygons in pixel coordinates.

    Raises:
        DatasetError: missing/malformed file, a missing key (``shapes``, ``imagePath``,
            ``imageHeight``, ``imageWidth``, a shape's ``label``/``points``), an
            unsupported shape type, a polygon with < 3 points, a label missing from
            ``label_map``, or a missing image file.
    """
    if group_by not in ("group_id", "label"):
        raise ValueError(f"group_by must be 'group_id' or 'label', got {group_by!r}")
    path = Path(json_path)
    data = _load_json(path)
    for key in ("shapes", "imagePath", "imageHeight", "imageWidth"):
        if key not in data:
            raise DatasetError(f"{path}: missing key {key!r}")
    height, width = data["imageHeight"], data["imageWidth"]
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise DatasetError(f"{path}: imageHeight/imageWidth must be positive integers")
    image_path = path.parent / data["imagePath"]
    if not image_path.is_file():
        raise DatasetError(f"{path}: imagePath {data['imagePath']!r} not found at {image_path}")

    groups: dict[tuple, Instance] = {}
    ignored = 0
    for index, shape in enumerate(data["shapes"]):
        if not isinstance(shape, dict) or "label" not in shape or "points" not in shape:
            raise DatasetError(f"{path}: shapes[{index}]: missing key 'label' or 'points'")
        label = shape["label"]
        if label == IGNORE_LABEL:
            ignored += 1
            continue
        if label_map is not None:
            if label not in label_map:
                raise DatasetError(f"{path}: shapes[{index}]: label {label!r} is not in the label map {sorted(label_map)}")
            category = label_map[label]
        else:
            category = label
        polygon = _shape_polygon(path, index, shape)
        group_id = shape.get("group_id")
        if group_by == "label":
            key: tuple = (category,)
        elif group_id is None:
            key = (category, "shape", index)
        else:
            key = (category, "group", group_id)
        if key in groups:
            groups[key].polygons.append(polygon)
        else:
            groups[key] = Instance(category=category, polygons=[polygon])
    return LabelmeImage(json_path=path, image_path=image_path, height=height, width=width,
                        instances=list(groups.values()), ignored=ignored)
