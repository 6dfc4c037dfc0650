"""Validate a COCO-format instance-segmentation annotation file before training or evaluation.

CLI: ``python -m dcl_data.validate FILE.json [--image-root DIR]`` prints the summary as one
JSON line and exits 0, or prints ``error: <one line>`` and exits 1.

This is the training-side gate; ``analysis.coco_format.load_ground_truth`` is the
evaluation-side loader. They overlap (ids, references, segmentation sizes) on purpose:
this one checks what training needs and evaluation does not (``bbox``, ``area``,
``file_name``, the image files and their pixel sizes, a non-empty split) without rasterising
any polygon, so COCO train2017 is checked quickly at every training start; the loader turns
every segmentation into RLE, which evaluation needs anyway, and keeps ``analysis`` free of
``dcl_data`` so the error-analysis tool can be reused on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import DatasetError

#: Keys every COCO instances file must have at the top level.
TOP_LEVEL_KEYS = ("images", "annotations", "categories")
IMAGE_KEYS = ("id", "file_name", "height", "width")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "segmentation", "bbox", "area")
CATEGORY_KEYS = ("id", "name")
#: Polygon vertices may sit on the far image border (x == width); anything further out
#: than this many pixels means the polygon belongs to an image of another size.
POLYGON_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class CocoSummary:
    """Counts of a valid COCO instances file.

    Attributes:
        path: the validated file.
        num_images, num_annotations, num_categories: entry counts.
        instances_per_category: ``{category name: annotation count}`` for every category
            (0 for categories without annotations), in category-list order.
        images_without_annotations: images that have no annotation (allowed).
        crowd_annotations: annotations with ``iscrowd`` 1.
    """

    path: str
    num_images: int
    num_annotations: int
    num_categories: int
    instances_per_category: dict[str, int]
    images_without_annotations: int
    crowd_annotations: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _load(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: top level must be a JSON object, got {type(data).__name__}")
    missing = [k for k in TOP_LEVEL_KEYS if k not in data]
    if missing:
        raise DatasetError(f"{path}: missing top-level key(s) {missing}")
    for key in TOP_LEVEL_KEYS:
        if not isinstance(data[key], list):
            raise DatasetError(f"{path}: top-level key {key!r} must be a list, got {type(data[key]).__name__}")
    return data


def _require_keys(path: Path, where: str, entry: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(entry, dict):
        raise DatasetError(f"{path}: {where}: must be a JSON object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DatasetError(f"{path}: {where}: missing key(s) {missing}")


_SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


def _check_ids(path: Path, section: str, entries: list[dict]) -> dict[int, int]:
    """``{id: index}``; rejects non-integer and duplicate ids."""
    seen: dict[int, int] = {}
    for index, entry in enumerate(entries):
        entry_id = entry["id"]
        if not _is_int(entry_id):
            raise DatasetError(f"{path}: {section}[{index}]: 'id' must be an integer, got {entry_id!r}")
        if entry_id in seen:
            raise DatasetError(f"{path}: {section}[{index}]: duplicate {_SINGULAR[section]} id {entry_id} (first at {section}[{seen[entry_id]}])")
        seen[entry_id] = index
    return seen


def _check_segmentation(path: Path, where: str, seg: Any, height: int, width: int) -> None:
    if isinstance(seg, dict):
        if "size" not in seg or "counts" not in seg:
            raise DatasetError(f"{path}: {where}: RLE segmentation needs 'size' and 'counts'")
        size = seg["size"]
        if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
            raise DatasetError(f"{path}: {where}: RLE 'size' must be [height, width], got {size!r}")
        if list(size) != [height, width]:
            raise DatasetError(f"{path}: {where}: RLE size {size} differs from its image's [height, width] [{height}, {width}]")
        counts = seg["counts"]
        if isinstance(counts, list):
            if not all(_is_int(c) and c >= 0 for c in counts):
                raise DatasetError(f"{path}: {where}: uncompressed RLE 'counts' must be non-negative integers")
            if sum(counts) != height * width:
                raise DatasetError(f"{path}: {where}: uncompressed RLE counts sum to {sum(counts)}, not height*width {height * width}")
        elif not isinstance(counts, str):
            raise DatasetError(f"{path}: {where}: RLE 'counts' must be a string or a list of integers")
        return
    if not isinstance(seg, list) or not seg:
        raise DatasetError(f"{path}: {where}: segmentation must be a non-empty list of polygons or an RLE object")
    for p, poly in enumerate(seg):
        if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                and all(_is_number(v) for v in poly)):
            raise DatasetError(f"{path}: {where}: segmentation[{p}] must be a flat list of >= 3 (x, y) number pairs")
        xs, ys = poly[0::2], poly[1::2]
        tol = POLYGON_TOLERANCE_PX
        if min(xs) < -tol or min(ys) < -tol or max(xs) > width + tol or max(ys) > height + tol:
            raise DatasetError(
                f"{path}: {where}: segmentation[{p}] spans x [{min(xs):g}, {max(xs):g}] y [{min(ys):g}, {max(ys):g}], "
                f"outside its image of width {width} height {height}")


def _image_size_on_disk(file: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:  # reads the header only
            return im.size
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"{file}: not a readable image ({type(err).__name__})") from None


def validate_coco_instances(
    path: str | Path,
    image_root: str | Path | None = None,
    check_image_sizes: bool = True,
) -> CocoSummary:
    """Check a COCO instance-segmentation file and return its counts.

    Checks, in order: the file exists and is valid JSON (line/column reported); the
    top-level keys ``images``, ``annotations``, ``categories`` are lists; every image has
    ``id``, ``file_name``, positive integer ``height``/``width``; every category has
    ``id`` and ``name``; every annotation has ``id``, ``image_id``, ``category_id``,
    ``segmentation``, ``bbox`` (4 numbers, w/h >= 0), ``area`` (>= 0) and ``iscrowd`` in
    {0, 1} if present; ids are unique integers per section; ``image_id`` and
    ``category_id`` refer to existing entries; an RLE's ``size`` equals its image's
    ``[height, width]`` and polygons lie within the image (+-1 px); the split is not empty
    (>= 1 image, >= 1 annotation, >= 1 category). With ``image_root`` every
    ``image_root / file_name`` must exist and, with ``check_image_sizes``, its pixel size
    must equal ``width`` x ``height`` (only the file header is read).

    Args:
        path: the annotation JSON (e.g. ``OUT/annotations/instances_val.json``).
        image_root: folder that ``file_name`` is relative to (e.g. ``OUT/val``).
        check_image_sizes: compare image headers with width/height (needs ``image_root``).

    Returns:
        A :class:`CocoSummary`.

    Raises:
        DatasetError: on the first problem found; one line naming ``path`` (or the image
            file) and the entry, e.g. ``"instances_val.json: annotations[3] (id 4):
            unknown category_id 99"``.
    """
    path = Path(path)
    data = _load(path)
    images, annotations, categories = data["images"], data["annotations"], data["categories"]
    if not images:
        raise DatasetError(f"{path}: empty split: 'images' is empty")
    if not categories:
        raise DatasetError(f"{path}: 'categories' is empty")
    if not annotations:
        raise DatasetError(f"{path}: empty split: 'annotations' is empty")

    for index, image in enumerate(images):
        where = f"images[{index}]"
        _require_keys(path, where, image, IMAGE_KEYS)
        for key in ("height", "width"):
            if not (_is_int(image[key]) and image[key] > 0):
                raise DatasetError(f"{path}: {where} (id {image['id']}): {key!r} must be a positive integer, got {image[key]!r}")
        if not isinstance(image["file_name"], str) or not image["file_name"]:
            raise DatasetError(f"{path}: {where} (id {image['id']}): 'file_name' must be a non-empty string")
    for index, category in enumerate(categories):
        _require_keys(path, f"categories[{index}]", category, CATEGORY_KEYS)
    for index, ann in enumerate(annotations):
        _require_keys(path, f"annotations[{index}]", ann, ANNOTATION_KEYS)
    image_index = _check_ids(path, "images", images)
    category_index = _check_ids(path, "categories", categories)
    _check_ids(path, "annotations", annotations)

    per_category: Counter[int] = Counter()
    images_with_annotations: set[int] = set()
    crowd = 0
    for index, ann in enumerate(annotations):
        where = f"annotations[{index}] (id {ann['id']})"
        if not _is_int(ann["image_id"]) or ann["image_id"] not in image_index:
            raise DatasetError(f"{path}: {where}: unknown image_id {ann['image_id']!r}")
        if not _is_int(ann["category_id"]) or ann["category_id"] not in category_index:
            raise DatasetError(f"{path}: {where}: unknown category_id {ann['category_id']!r}")
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)
                and bbox[2] >= 0 and bbox[3] >= 0):
            raise DatasetError(f"{path}: {where}: 'bbox' must be [x, y, w, h] with w, h >= 0, got {bbox!r}")
        if not (_is_number(ann["area"]) and ann["area"] >= 0):
            raise DatasetError(f"{path}: {where}: 'area' must be a number >= 0, got {ann['area']!r}")
        iscrowd = ann.get("iscrowd", 0)
        if not _is_int(iscrowd) or iscrowd not in (0, 1):
            raise DatasetError(f"{path}: {where}: 'iscrowd' must be 0 or 1, got {iscrowd!r}")
        crowd += iscrowd
        image = images[image_index[ann["image_id"]]]
        _check_segmentation(path, where, ann["segmentation"], image["height"], image["width"])
        per_category[ann["category_id"]] += 1
        images_with_annotations.add(ann["image_id"])

    if image_root is not None:
        root = Path(image_root)
        if not root.is_dir():
            raise DatasetError(f"{path}: image root {root} is not a folder")
        for index, image in enumerate(images):
            file = root / image["file_name"]
            if not file.is_file():
                raise DatasetError(f"{path}: images[{index}] (id {image['id']}): image file {file} not found")
            if check_image_sizes:
                w, h = _image_size_on_disk(file)
                if (w, h) != (image["width"], image["height"]):
                    raise DatasetError(
                        f"{path}: images[{index}] (id {image['id']}): {file} is {w}x{h} pixels, "
                        f"but the entry says width {image['width']} height {image['height']}")

    return CocoSummary(
        path=str(path),
        num_images=len(images),
        num_annotations=len(annotations),
        num_categories=len(categories),
        instances_per_category={c["name"]: per_category[c["id"]] for c in categories},
        images_without_annotations=len(images) - len(images_with_annotations),
        crowd_annotations=crowd,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dcl_data.validate",
        description="Validate a COCO-format instance-segmentation annotation file.",
    )
    parser.add_argument("annotations", type=Path, help="COCO instances JSON file")
    parser.add_argument("--image-root", type=Path, default=None,
                        help="folder the images' file_name is relative to; checks files and sizes")
    args = parser.parse_args(argv)
    try:
        summary = validate_coco_instances(args.annotations, image_root=args.image_root)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
