"""Tiny generated datasets in the public Cityscapes and COCO 2017 layouts (``scale=preflight``).

They stand in for the real downloads so the paper path (data rules, training at the paper's
input sizes, evaluation, tables) runs end to end on a CPU before any GPU hour. The files are
what the code reads of the real ones, with the real label ids:

* Cityscapes fine: ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` (RGB,
  2048 x 1024 by default) and ``gtFine/<split>/<city>/..._gtFine_{instanceIds,labelIds}.png``
  and ``..._gtFine_polygons.json``: sky, building and road as stuff (label ids 23, 11, 7) and
  3-6 instances of the eight evaluated classes (cityscapesscripts' ``hasInstances`` and not
  ``ignoreInEval``: person 24 ... bicycle 33), instance ids ``label id * 1000 + k``, drawn
  from their polygons in order (later ones occlude earlier ones, as in the real files).
* COCO 2017: ``annotations/instances_{train,val}2017.json`` with the 80 thing categories of
  COCO (ids 1-90 with COCO's gaps, names as detectron2's ``COCO_CATEGORIES`` lists them),
  polygon segmentations, and ``{train,val}2017/<id:012d>.jpg``; every val image holds a pair of
  overlapping instances (box IoU >= 0.25), so the COCO-OCC split is not empty.

Images are smooth colour fields with textured instances (JPEG/PNG compress them well); nothing
is learnt from them: they only have to be valid input.

CLI: ``python -m dcl_data.preflight_sets {cityscapes,coco} ROOT [--train N] [--val N] [--seed S]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .errors import DatasetError

CITIES = {"train": ("aachen", "bochum", "bremen"), "val": ("frankfurt", "lindau", "munster")}
STUFF = (("sky", 0.0, 0.3), ("building", 0.3, 0.55), ("road", 0.55, 1.0))  # label, top, bottom
Polygon = List[Tuple[float, float]]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> Polygon:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(round(float(cx + rx * np.cos(a)), 1), round(float(cy + ry * np.sin(a)), 1)) for a in t]


def _raster(polygon: Polygon, height: int, width: int) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon(polygon, fill=1)
    return np.asarray(canvas, dtype=bool)


def _background(rng, height: int, width: int, colours) -> np.ndarray:
    """A smooth random colour field (low-frequency noise) mixed over ``colours`` per row band."""
    low = rng.uniform(-25, 25, size=(max(height // 64, 2), max(width // 64, 2), 3))
    noise = np.asarray(Image.fromarray(low.astype(np.float32)[..., 0]).resize((width, height)))
    image = np.zeros((height, width, 3), np.float32)
    for (top, bottom, colour) in colours:
        image[int(top * height):int(bottom * height)] = colour
    return np.clip(image + noise[..., None], 0, 255)


def _check_counts(counts: Dict[str, int]) -> None:
    for split, n in counts.items():
        if not isinstance(n, int) or n < 1:
            raise DatasetError(f"{split}: the number of images must be >= 1, got {n!r}")


def make_cityscapes(root: str | Path, counts: Dict[str, int] | None = None, height: int = 1024,
                    width: int = 2048, seed: int = 0) -> Dict[str, int]:
    """Write a Cityscapes fine tree under ``root``.

    Args:
        counts: frames per split (default ``{"train": 4, "val": 2}``).
        height, width: image size in pixels (Cityscapes: 1024 x 2048).
        seed: the layout and pixels are a function of it.

    Returns:
        ``{split: instances written}``.

    Raises:
        DatasetError: a count below 1.
    """
    from cityscapesscripts.helpers.labels import labels, name2label

    counts = counts or {"train": 4, "val": 2}
    _check_counts(counts)
    things = sorted((l for l in labels if l.hasInstances and not l.ignoreInEval), key=lambda l: l.id)
    root = Path(root)
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in counts.items():
        written[split] = 0
        for i in range(n):
            city = CITIES.get(split, CITIES["train"])[i % 3]
            stem = f"{city}_{i:06d}_000019"
            colours = [(top, bottom, name2label[name].color) for name, top, bottom in STUFF]
            image = _background(rng, height, width, colours)
            label_ids = np.zeros((height, width), np.uint8)  # 0: unlabeled
            objects = []
            for name, top, bottom in STUFF:
                poly = [(0.0, top * height), (width - 1.0, top * height),
                        (width - 1.0, bottom * height - 1), (0.0, bottom * height - 1)]
                label_ids[_raster(poly, height, width)] = name2label[name].id
                objects.append({"label": name, "polygon": [list(p) for p in poly]})
            instance_ids = label_ids.astype(np.uint16)
            per_class: Dict[int, int] = {}
            for _ in range(int(rng.integers(3, 7))):
                label = things[int(rng.integers(len(things)))]
                cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.45, 0.85) * height
                rx, ry = rng.uniform(0.03, 0.1) * width, rng.uniform(0.05, 0.15) * height
                poly = _ellipse(cx, cy, rx, ry)
                mask = _raster(poly, height, width)
                k = per_class.get(label.id, 0)
                per_class[label.id] = k + 1
                label_ids[mask] = label.id
                instance_ids[mask] = label.id * 1000 + k
                image[mask] = np.clip(np.array(label.color, np.float32)
                                      + rng.normal(0, 12, size=(int(mask.sum()), 3)), 0, 255)
                objects.append({"label": label.name, "polygon": [list(p) for p in poly]})
                written[split] += 1
            img_dir = root / "leftImg8bit" / split / city
            gt_dir = root / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.astype(np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(instance_ids).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
            Image.fromarray(label_ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
            (gt_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps(
                {"imgHeight": height, "imgWidth": width, "objects": objects}, indent=1))
    return written


def coco_thing_categories() -> List[Dict[str, Any]]:
    """COCO's 80 thing categories ``[{"id", "name"}]`` (detectron2's ``COCO_CATEGORIES``)."""
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

    return [{"id": c["id"], "name": c["name"]} for c in COCO_CATEGORIES if c["isthing"]]


def _box_iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def _coco_image(rng, height: int, width: int, num_categories: int, occlusion: bool = False):
    """One COCO-style image: float32 ``[H, W, 3]`` RGB in 0-255 (a smooth colour field with 2-5
    textured ellipses), and per ellipse ``(polygon, bool mask [H, W], category index)``. With
    ``occlusion`` the second ellipse overlaps the first (box IoU >= 0.25)."""
    image = _background(rng, height, width, [(0.0, 1.0, tuple(rng.uniform(60, 200, 3)))])
    shapes = []
    for j in range(int(rng.integers(2, 6))):
        if j == 1 and occlusion:
            cx, cy, rx, ry = shapes[0]
            shapes.append((cx + 0.6 * rx, cy, rx, ry))
        else:
            shapes.append((rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height,
                           rng.uniform(0.08, 0.2) * width, rng.uniform(0.08, 0.2) * height))
    drawn = []
    for cx, cy, rx, ry in shapes:
        poly = _ellipse(cx, cy, rx, ry)
        mask = _raster(poly, height, width)
        k = int(rng.integers(num_categories))
        image[mask] = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 15, (int(mask.sum()), 3)), 0, 255)
        drawn.append((poly, mask, k))
    return image, drawn


def sample_images(num: int, height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """``num`` images drawn as :func:`make_coco` draws its images: uint8 ``[num, H, W, 3]`` RGB.

    What the preflight's stand-in weights estimate their batch-norm statistics on
    (dcl_detectron2.synthetic_weights), so the statistics are those of the images the preflight
    trains on. Raises DatasetError for ``num`` below 1.
    """
    _check_counts({"images": num})
    rng = np.random.default_rng(seed)
    return np.stack([_coco_image(rng, height, width, 1)[0].astype(np.uint8) for _ in range(num)])


def make_coco(root: str | Path, counts: Dict[str, int] | None = None, seed: int = 0) -> Dict[str, int]:
    """Write a COCO 2017 tree under ``root`` (sizes 640 x 480 or 480 x 640, as most COCO
    images). Returns ``{split: instances written}``; raises DatasetError for a count below 1."""
    from pycocotools import mask as mask_utils

    counts = counts or {"train": 8, "val": 4}
    _check_counts(counts)
    categories = coco_thing_categories()
    root = Path(root)
    rng = np.random.default_rng(seed)
    written, next_image, next_ann = {}, 1, 1
    for split, n in counts.items():
        images, annotations = [], []
        folder = root / f"{split}2017"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            height, width = (480, 640) if rng.random() < 0.7 else (640, 480)
            image, drawn = _coco_image(rng, height, width, len(categories), occlusion=split == "val")
            for poly, mask, k in drawn:
                category = categories[k]
                flat = [v for p in poly for v in p]
                rle = mask_utils.merge(mask_utils.frPyObjects([flat], height, width))
                x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
                annotations.append({"id": next_ann, "image_id": next_image, "category_id": category["id"],
                                    "segmentation": [flat], "area": float(mask_utils.area(rle)),
                                    "bbox": [x, y, w, h], "iscrowd": 0})
                next_ann += 1
            file_name = f"{next_image:012d}.jpg"
            Image.fromarray(image.astype(np.uint8)).save(folder / file_name, quality=90)
            images.append({"id": next_image, "file_name": file_name, "height": height, "width": width,
                           "license": 1})
            next_image += 1
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        data = {"info": {"description": "generated stand-in for COCO 2017 (dcl_data.preflight_sets)",
                         "year": 2017}, "licenses": [{"id": 1, "name": "generated", "url": ""}],
                "images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
        written[split] = len(annotations)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dcl_data.preflight_sets",
                                     description="Write a tiny generated dataset in a public layout.")
    parser.add_argument("layout", choices=("cityscapes", "coco"))
    parser.add_argument("root", type=Path)
    parser.add_argument("--train", type=int, default=None, help="images (default 4 / 8)")
    parser.add_argument("--val", type=int, default=None, help="images (default 2 / 4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    default = {"cityscapes": (4, 2), "coco": (8, 4)}[args.layout]
    counts = {"train": default[0] if args.train is None else args.train,
              "val": default[1] if args.val is None else args.val}
    try:
        make = make_cityscapes if args.layout == "cityscapes" else make_coco
        written = make(args.root, counts, seed=args.seed)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"layout": args.layout, "root": str(args.root), "instances": written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
