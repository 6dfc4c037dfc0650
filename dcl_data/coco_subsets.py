"""COCO 2017 subsets the workflow derives: COCO-OCC (paper Fig. 2 and Table 6), mini-COCO and
the novel-category splits of partially-supervised evaluation (ContrastMask).

COCO-OCC. The paper evaluates on "COCO-OCC, a subset of the COCO validation set with more
occlusion", the split introduced by BCNet (Ke, Tai and Tang, CVPR 2021: 1,005 images of
val2017), which is distributed only as a file download, without code. Its selection is
reported as images whose instances' bounding boxes overlap by a ratio of at least 0.2. We
rebuild a split reproducibly from that description:

    keep an image of val2017 when at least one pair of its non-crowd instances has
    box IoU >= ``min_box_iou`` (default 0.2; pycocotools ``iou`` on ``[x, y, w, h]`` boxes).

This is our reading of the criterion, not the authors' file: the image count differs from
1,005 (every image and annotation id is kept, so the official list can be compared), and
numbers on it are comparable with each other, not digit for digit with the paper's Table 6.
With the official file at hand, point ``datasets.coco_occ.val.json`` at it instead.

mini-COCO. Not in the paper: a small, fixed COCO for trying paper-scale settings quickly.
``train_images`` images drawn without replacement (numpy ``default_rng(seed)``) from the
train2017 images that have at least one non-crowd instance, and the first ``val_images``
images of val2017 by ascending image id (detectron2's ``coco_2017_val_100`` takes the first
100 the same way). Ids, categories and annotations are copied unchanged.

Novel-category splits (``voc``, ``nonvoc``; :mod:`dcl_data.voc_split`). Partially-supervised
models are scored on the novel classes only: the official ContrastMask evaluation runs
pycocotools' ``COCOeval`` over every val image with ``params.catIds`` = the novel ids. The
split file keeps every image, the novel categories and their annotations only; scored with the
predictions of those categories (``analysis.subset``), stock ``COCOeval`` then evaluates exactly
the novel ids on every image: the same numbers (tests/test_contrastmask_eval.py checks it).

CLI: ``python -m dcl_data.coco_subsets occ VAL.json --out OUT.json [--min-box-iou 0.2]``
     ``python -m dcl_data.coco_subsets novel VAL.json --split voc --out OUT.json``
     ``python -m dcl_data.coco_subsets mini TRAIN.json VAL.json --out-train A --out-val B
       [--train-images 5000 --val-images 500 --seed 0]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from analysis.io import input_overwritten_by, write_json_atomic
from .errors import DatasetError


def load_coco(path: str | Path) -> dict[str, Any]:
    """Read a COCO instances JSON and check the three lists it must have.

    Raises:
        DatasetError: missing file, invalid JSON, or ``images``/``annotations``/``categories``
            missing or not a list; one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: COCO annotation file not found")
    try:
        with path.open(encoding="utf-8") as fh:
            coco = json.load(fh)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key) if isinstance(coco, dict) else None, list):
            raise DatasetError(f"{path}: top-level key {key!r} missing or not a list")
    return coco


def subset(coco: dict[str, Any], image_ids: Iterable[int], description: str) -> dict[str, Any]:
    """The COCO dict restricted to ``image_ids``: those images (in the file's order), their
    annotations, every category; ``info.description`` says how it was made."""
    keep = set(image_ids)
    return {
        "info": {**(coco.get("info") or {}), "description": description},
        "licenses": coco.get("licenses", []),
        "images": [im for im in coco["images"] if im["id"] in keep],
        "annotations": [a for a in coco["annotations"] if a["image_id"] in keep],
        "categories": coco["categories"],
    }


def occluded_image_ids(coco: dict[str, Any], min_box_iou: float = 0.2) -> list[int]:
    """Ids of the images with a pair of non-crowd instances whose boxes overlap by
    IoU >= ``min_box_iou`` (ascending ids).

    Raises:
        DatasetError: ``min_box_iou`` outside (0, 1], or an annotation without a 4-number bbox.
    """
    from pycocotools import mask as mask_utils

    if not 0 < min_box_iou <= 1:
        raise DatasetError(f"coco_occ.min_box_iou must be in (0, 1], got {min_box_iou!r}")
    boxes = defaultdict(list)
    for index, ann in enumerate(coco["annotations"]):
        if ann.get("iscrowd", 0):
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DatasetError(f"annotations[{index}] (id {ann.get('id')}): 'bbox' must be [x, y, w, h], got {bbox!r}")
        boxes[ann["image_id"]].append(bbox)
    keep = []
    for image_id, b in boxes.items():
        if len(b) < 2:
            continue
        b = np.asarray(b, dtype=np.float64)
        iou = np.asarray(mask_utils.iou(b, b, [0] * len(b)))
        np.fill_diagonal(iou, 0.0)
        if iou.max() >= min_box_iou:
            keep.append(image_id)
    return sorted(keep)


def make_coco_occ(val_json: str | Path, out: str | Path, min_box_iou: float = 0.2) -> dict[str, int]:
    """Write the COCO-OCC split of ``val_json`` to ``out`` (atomically); returns counts.

    Raises:
        DatasetError: unreadable input (see :func:`load_coco`), a bad threshold, or a
            criterion that selects no image.
    """
    coco = load_coco(val_json)
    ids = occluded_image_ids(coco, min_box_iou)
    if not ids:
        raise DatasetError(f"{val_json}: no image has two instances with box IoU >= {min_box_iou}")
    result = subset(coco, ids, f"COCO-OCC (dcl_data.coco_subsets): images of {Path(val_json).name} with a "
                               f"pair of non-crowd instances of box IoU >= {min_box_iou}")
    write_json_atomic(Path(out), result)
    return {"images": len(result["images"]), "annotations": len(result["annotations"]),
            "of_images": len(coco["images"])}


def make_novel_split(val_json: str | Path, out: str | Path, split: str) -> dict[str, int]:
    """Write the categories of ``split`` (``voc``/``nonvoc``) of ``val_json`` to ``out``
    (atomically): every image, those categories and their annotations; returns counts.

    Raises:
        DatasetError: unreadable input, an unknown split, or one with no category, or no
            annotation, in the file (nothing to score).
    """
    from .voc_split import split_classes

    coco = load_coco(val_json)
    try:
        names = set(split_classes(split, [c["name"] for c in coco["categories"]]))
    except ValueError as err:
        raise DatasetError(str(err)) from None
    categories = [c for c in coco["categories"] if c["name"] in names]
    ids = {c["id"] for c in categories}
    annotations = [a for a in coco["annotations"] if a["category_id"] in ids]
    if not annotations:
        raise DatasetError(f"{val_json}: no annotation of the {split!r} categories "
                           f"({sorted(names) or 'none in the file'}): nothing to score")
    result = {**subset(coco, (im["id"] for im in coco["images"]),
                       f"{split} categories of {Path(val_json).name} (dcl_data.coco_subsets): "
                       "every image, the annotations of those categories"),
              "annotations": annotations, "categories": categories}
    write_json_atomic(Path(out), result)
    return {"images": len(result["images"]), "annotations": len(annotations),
            "categories": len(categories)}


def mini_image_ids(train: dict[str, Any], val: dict[str, Any], train_images: int, val_images: int,
                   seed: int) -> tuple[list[int], list[int]]:
    """(train ids, val ids) of mini-COCO (see the module docstring), both ascending.

    Raises:
        DatasetError: a count below 1 or above what the split has.
    """
    annotated = sorted({a["image_id"] for a in train["annotations"] if not a.get("iscrowd", 0)})
    val_all = sorted(im["id"] for im in val["images"])
    for name, want, have in (("train_images", train_images, len(annotated)),
                             ("val_images", val_images, len(val_all))):
        if not 1 <= want <= have:
            raise DatasetError(f"mini_coco.{name} must be between 1 and {have} (images available), got {want}")
    rng = np.random.default_rng(seed)
    train_ids = sorted(int(i) for i in rng.choice(np.asarray(annotated), size=train_images, replace=False))
    return train_ids, val_all[:val_images]


def make_mini_coco(train_json: str | Path, val_json: str | Path, out_train: str | Path,
                   out_val: str | Path, train_images: int = 5000, val_images: int = 500,
                   seed: int = 0) -> dict[str, dict[str, int]]:
    """Write mini-COCO's train and val JSON (atomically); returns counts per split.

    Raises:
        DatasetError: unreadable inputs or counts out of range.
    """
    train, val = load_coco(train_json), load_coco(val_json)
    train_ids, val_ids = mini_image_ids(train, val, train_images, val_images, seed)
    counts = {}
    for name, coco, ids, out, how in (
            ("train", train, train_ids, out_train, f"{train_images} images drawn with seed {seed}"),
            ("val", val, val_ids, out_val, f"first {val_images} images by id")):
        result = subset(coco, ids, f"mini-COCO (dcl_data.coco_subsets) {name}: {how}")
        write_json_atomic(Path(out), result)
        counts[name] = {"images": len(result["images"]), "annotations": len(result["annotations"])}
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    occ = sub.add_parser("occ", help="COCO-OCC from COCO val2017")
    occ.add_argument("val_json")
    occ.add_argument("--out", required=True)
    occ.add_argument("--min-box-iou", type=float, default=0.2)
    novel = sub.add_parser("novel", help="the annotations of the voc or nonvoc categories")
    novel.add_argument("val_json")
    novel.add_argument("--split", required=True, choices=["voc", "nonvoc"])
    novel.add_argument("--out", required=True)
    mini = sub.add_parser("mini", help="mini-COCO from COCO train2017 and val2017")
    mini.add_argument("train_json")
    mini.add_argument("val_json")
    mini.add_argument("--out-train", required=True)
    mini.add_argument("--out-val", required=True)
    mini.add_argument("--train-images", type=int, default=5000)
    mini.add_argument("--val-images", type=int, default=500)
    mini.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command in ("occ", "novel"):
        outputs, inputs = {"--out": args.out}, [args.val_json]
    else:
        outputs = {"--out-train": args.out_train, "--out-val": args.out_val}
        inputs = [args.train_json, args.val_json]
    for flag, out in outputs.items():
        if hit := input_overwritten_by(out, inputs):
            print(f"error: {flag} {out} is an input ({hit}); write to another file",
                  file=sys.stderr)
            return 1
    try:
        if args.command == "occ":
            counts = make_coco_occ(args.val_json, args.out, args.min_box_iou)
        elif args.command == "novel":
            counts = make_novel_split(args.val_json, args.out, args.split)
        else:
            counts = make_mini_coco(args.train_json, args.val_json, args.out_train, args.out_val,
                                    args.train_images, args.val_images, args.seed)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
