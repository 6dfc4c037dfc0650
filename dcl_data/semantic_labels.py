"""Per-pixel class labels from a COCO-format instance set: the embedded semantic-segmentation set.

CAC (Wang et al., ACM MM 2023) is a semantic-segmentation loss; at embedded scale its models
train on labels derived from the embedded instance set (``dcl_data.embedded``) by this rule:

- class 0 is ``background`` (no instance covers the pixel); category ``k`` of the JSON (in the
  order of its ``categories`` list) is class ``k + 1``;
- instances are painted from the largest area to the smallest, so where two overlap the
  smaller one (usually the occluder, drawn on top) wins;
- pixels of ``iscrowd`` regions are :data:`IGNORE` (255), as mmseg and Cityscapes' trainIds
  ignore them, whatever non-crowd instance overlaps them.

Output layout (mmseg's ``BaseSegDataset``, one suffix for all files)::

    OUT/img_dir/{split}/{stem}.png    the image, re-encoded losslessly as RGB PNG
    OUT/ann_dir/{split}/{stem}.png    uint8 class labels (0..K, 255 ignore)
    OUT/classes.json                  {"classes": ["background", ...], "ignore_index": 255,
                                       "rule": "..."}

where ``stem`` is the image file name without its extension. The folder is built under a
temporary name and renamed, so it appears whole or not at all.

CLI: ``python -m dcl_data.semantic_labels --split train=JSON:IMAGES --split val=JSON:IMAGES
--out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence, Tuple

import numpy as np

from .errors import DatasetError

__all__ = ["BACKGROUND", "IGNORE", "build_semantic_set", "semantic_label_map"]

BACKGROUND = "background"
IGNORE = 255
RULE = ("class 0 background, category k of the JSON class k+1; instances painted largest first "
        "(the smaller wins an overlap); iscrowd pixels 255 (ignored)")


def semantic_label_map(height: int, width: int, annotations: Sequence[Mapping],
                       category_index: Mapping[int, int]) -> np.ndarray:
    """The class label image of one image's COCO annotations (rule in the module docstring).

    Args:
        height, width: image size in pixels.
        annotations: COCO annotation dicts (``segmentation`` polygons or RLE, ``area``,
            ``category_id``, optional ``iscrowd``).
        category_index: COCO category id -> class index (1..K).

    Returns:
        uint8 array ``[height, width]``: 0 background, 1..K classes, 255 crowd.

    Raises:
        DatasetError: an annotation names a category that ``category_index`` lacks, or there
            are more than 254 classes (uint8 with 255 reserved).
    """
    import pycocotools.mask as mask_utils

    if len(category_index) > IGNORE - 1:
        raise DatasetError(f"{len(category_index)} categories do not fit uint8 labels with "
                           f"{IGNORE} reserved for ignore")
    labels = np.zeros((height, width), np.uint8)
    crowd = np.zeros((height, width), bool)
    for ann in sorted(annotations, key=lambda a: -float(a.get("area", 0))):
        cid = ann["category_id"]
        if cid not in category_index:
            raise DatasetError(f"annotation {ann.get('id')} has category_id {cid}, not in the "
                               "file's categories")
        seg = ann["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        mask = mask_utils.decode(rle).astype(bool)
        if ann.get("iscrowd", 0):
            crowd |= mask
        else:
            labels[mask] = category_index[cid]
    labels[crowd] = IGNORE
    return labels


def _read_split(json_file: Path, image_root: Path) -> Tuple[dict, list, dict]:
    try:
        data = json.loads(Path(json_file).read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{json_file}: cannot read COCO JSON ({e})") from None
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise DatasetError(f"{json_file}: not a COCO instance file (images, annotations, categories)")
    if not Path(image_root).is_dir():
        raise DatasetError(f"image folder not found: {image_root}")
    per_image: dict = {}
    for ann in data["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    return data, data["categories"], per_image


def build_semantic_set(splits: Mapping[str, Tuple[Path, Path]], out: Path) -> dict:
    """Write the semantic set of ``splits`` (name -> (COCO JSON, image folder)) to ``out``.

    Every split must list the same categories (the first split's order gives the classes).

    Returns:
        The ``classes.json`` contents.

    Raises:
        DatasetError: a missing or malformed file, splits with different categories, an
            image whose size differs from its JSON entry, or two images with the same stem.
    """
    from PIL import Image

    out = Path(out)
    categories = None
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent if out.parent.is_dir() else None))
    try:
        for name, (json_file, image_root) in splits.items():
            data, cats, per_image = _read_split(Path(json_file), Path(image_root))
            names = [c["name"] for c in cats]
            if categories is None:
                categories = names
                index = {c["id"]: i + 1 for i, c in enumerate(cats)}
            elif names != categories:
                raise DatasetError(f"{json_file}: its categories differ from the first split's")
            img_dir, ann_dir = tmp / "img_dir" / name, tmp / "ann_dir" / name
            img_dir.mkdir(parents=True)
            ann_dir.mkdir(parents=True)
            for entry in data["images"]:
                stem = Path(entry["file_name"]).stem
                target = ann_dir / f"{stem}.png"
                if target.exists():
                    raise DatasetError(f"{json_file}: two images named {stem}.* (labels would collide)")
                src = Path(image_root) / entry["file_name"]
                try:
                    image = Image.open(src).convert("RGB")
                except OSError as e:
                    raise DatasetError(f"{src}: cannot read image ({e})") from None
                h, w = int(entry["height"]), int(entry["width"])
                if image.size != (w, h):
                    raise DatasetError(f"{src}: {image.size[0]}x{image.size[1]} pixels, its JSON "
                                       f"entry says {w}x{h}")
                image.save(img_dir / f"{stem}.png")
                labels = semantic_label_map(h, w, per_image.get(entry["id"], []), index)
                Image.fromarray(labels, mode="L").save(target)
        meta = {"classes": [BACKGROUND] + list(categories or []), "ignore_index": IGNORE, "rule": RULE,
                "splits": {k: [str(v[0]), str(v[1])] for k, v in splits.items()}}
        (tmp / "classes.json").write_text(json.dumps(meta, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _split_arg(text: str) -> Tuple[str, Tuple[Path, Path]]:
    name, sep, rest = text.partition("=")
    json_file, sep2, images = rest.partition(":")
    if not (sep and sep2 and name and json_file and images):
        raise argparse.ArgumentTypeError(f"expected NAME=JSON:IMAGES, got {text!r}")
    return name, (Path(json_file), Path(images))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=_split_arg, action="append", required=True,
                        metavar="NAME=JSON:IMAGES")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        meta = build_semantic_set(dict(args.split), args.out)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(meta['classes'])} classes ({', '.join(meta['classes'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
