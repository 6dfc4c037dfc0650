"""Cityscapes fine -> COCO-format instance JSON (``instancesonly_filtered_gtFine_{split}.json``).

Follows what mmdetection's ``tools/dataset_converters/cityscapes.py`` writes and the authors'
error-analysis tool reads (paper Sec. 3 and 5 score Cityscapes COCO-style on this conversion):

* classes: the cityscapesscripts labels with ``hasInstances`` and not ``ignoreInEval`` (person,
  rider, car, truck, bus, train, motorcycle, bicycle; caravan/trailer are dropped), each with its
  Cityscapes label id as COCO ``category_id`` (24..33);
* one annotation per value of ``*_gtFine_instanceIds.png``: ids >= 1000 are instances
  (label = id // 1000, ``iscrowd`` 0); ids < 1000 of an instance class are that class's group
  regions ("persongroup", ...), kept with ``iscrowd`` 1 as mmdetection does;
* the segmentation is the uncompressed-then-compressed COCO RLE of the pixel mask (pycocotools),
  ``area`` and ``bbox`` come from that RLE;
* ``file_name`` is ``<city>/<name>_leftImg8bit.png`` relative to ``leftImg8bit/<split>``, which
  is the image root given to detectron2/mmdet.

Differences, stated: image and annotation ids start at 1 and follow the sorted file names
(pycocotools treats id 0 as falsy in places); every frame is kept, also frames without any
instance (evaluation must count them; the frameworks filter empty images for training).
Training with detectron2's own Cityscapes loader (``cityscapes_fine_instance_seg_*``) reads the
raw tree instead and needs no JSON.

CLI: ``python -m dcl_data.cityscapes_convert ROOT --split val --out FILE.json [--jobs N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from analysis.io import write_json_atomic
from .errors import DatasetError
from .paper_sets import CityscapesFrame, cityscapes_frames

#: Below this value an instance-id PNG holds plain label ids (stuff or group regions).
INSTANCE_ID_OFFSET = 1000


def instance_labels() -> list[Any]:
    """cityscapesscripts' ``Label`` tuples of the evaluated instance classes, in label-id order
    (``hasInstances`` and not ``ignoreInEval``)."""
    from cityscapesscripts.helpers.labels import labels

    return sorted((l for l in labels if l.hasInstances and not l.ignoreInEval), key=lambda l: l.id)


def coco_categories() -> list[dict[str, Any]]:
    """COCO ``categories``: ``[{"id": Cityscapes label id, "name": ..., "supercategory": ...}]``."""
    return [{"id": l.id, "name": l.name, "supercategory": l.category} for l in instance_labels()]


def frame_annotations(frame: CityscapesFrame) -> tuple[int, int, list[dict[str, Any]]]:
    """Annotations of one frame (without ``id``/``image_id``).

    Returns:
        ``(height, width, annotations)``; each annotation has ``category_id`` (int), ``iscrowd``
        (0/1), ``segmentation`` (RLE with str ``counts``), ``area`` (pixels, float) and ``bbox``
        (``[x, y, w, h]`` in pixels).

    Raises:
        DatasetError: the label image is unreadable, not single-channel, or its size differs
            from the image's.
    """
    from PIL import Image, UnidentifiedImageError
    from pycocotools import mask as mask_utils

    try:
        with Image.open(frame.instance_ids) as im:
            ids = np.asarray(im)
        with Image.open(frame.image) as im:
            image_size = im.size
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"{frame.instance_ids}: not a readable image ({type(err).__name__})") from None
    if ids.ndim != 2:
        raise DatasetError(f"{frame.instance_ids}: expected a single-channel instance-id image, got shape {ids.shape}")
    height, width = ids.shape
    if image_size != (width, height):
        raise DatasetError(f"{frame.instance_ids}: {width}x{height} pixels, but {frame.image.name} is "
                           f"{image_size[0]}x{image_size[1]}")
    classes = {l.id for l in instance_labels()}
    annotations = []
    for value in np.unique(ids):
        value = int(value)
        label_id = value // INSTANCE_ID_OFFSET if value >= INSTANCE_ID_OFFSET else value
        if label_id not in classes:
            continue
        rle = mask_utils.encode(np.asfortranarray(ids == value, dtype=np.uint8))
        annotations.append({
            "category_id": label_id,
            "iscrowd": int(value < INSTANCE_ID_OFFSET),
            "segmentation": {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")},
            "area": float(mask_utils.area(rle)),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        })
    return height, width, annotations


def convert_split(root: str | Path, split: str, jobs: int = 1) -> dict[str, Any]:
    """The COCO dict of one Cityscapes fine split.

    Args:
        root: Cityscapes root with ``leftImg8bit/`` and ``gtFine/``.
        split: ``train`` or ``val``.
        jobs: worker processes reading label images (order and ids do not depend on it).

    Raises:
        DatasetError: layout problems (see :func:`dcl_data.paper_sets.cityscapes_frames`) or an
            unreadable/mismatched label image, naming the file.
    """
    frames = cityscapes_frames(root, split)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(frame_annotations, frames, chunksize=8))
    else:
        results = [frame_annotations(f) for f in frames]
    images, annotations = [], []
    for image_id, (frame, (height, width, anns)) in enumerate(zip(frames, results), start=1):
        images.append({"id": image_id, "file_name": frame.file_name, "height": height, "width": width})
        for ann in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
    return {
        "info": {"description": f"Cityscapes fine {split}, instance classes, converted by dcl_data.cityscapes_convert"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(),
    }


def write_split(root: str | Path, split: str, out: str | Path, jobs: int = 1) -> dict[str, int]:
    """Convert one split and write it atomically to ``out``; returns image/annotation counts."""
    coco = convert_split(root, split, jobs)
    write_json_atomic(Path(out), coco)
    return {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
            "crowd": sum(a["iscrowd"] for a in coco["annotations"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="Cityscapes root (leftImg8bit/ and gtFine/)")
    parser.add_argument("--split", required=True, choices=("train", "val"))
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        print(json.dumps({args.split: write_split(args.root, args.split, args.out, args.jobs)}))
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
