"""Layout checks of the paper's raw datasets, run before any conversion or training.

The workflow never downloads COCO or Cityscapes (licences, 20+ GB); users place them where
``config.yaml`` (``sources``) points. These checks fail at once, with one line naming the
first missing file or folder and what was expected there, instead of a crash hours later.

Layouts (the frameworks' own):

* COCO 2017, detectron2's ``datasets/coco``::

      annotations/instances_train2017.json   train2017/*.jpg
      annotations/instances_val2017.json     val2017/*.jpg

* Cityscapes fine (``leftImg8bit_trainvaltest.zip`` + ``gtFine_trainvaltest.zip`` unpacked side
  by side, as detectron2's ``datasets/cityscapes`` and mmdetection's ``data/cityscapes``)::

      leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
      gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png  (+ _labelIds,
                                                                             _polygons.json)

CLI: ``python -m dcl_data.paper_sets {coco,cityscapes} ROOT [--splits train val]`` or
``python -m dcl_data.paper_sets split JSON IMAGE_DIR`` prints the result as one JSON line, or
``error: <one line>`` with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

COCO_SPLITS = ("train", "val")
CITYSCAPES_SPLITS = ("train", "val")
IMAGE_SUFFIX = "_leftImg8bit.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"


@dataclass(frozen=True)
class CityscapesFrame:
    """One Cityscapes frame: its image and instance-id label image (absolute paths) and the
    image path relative to ``leftImg8bit/<split>`` (``<city>/<name>_leftImg8bit.png``, the
    ``file_name`` the COCO JSON records)."""

    image: Path
    instance_ids: Path
    file_name: str


def _need(path: Path, what: str, hint: str = "") -> None:
    if not path.exists():
        raise DatasetError(f"{path}: missing {what}{'; ' + hint if hint else ''}")


def check_coco_layout(root: str | Path, splits: tuple[str, ...] = COCO_SPLITS) -> dict[str, dict[str, str]]:
    """Check detectron2's ``datasets/coco`` layout of COCO 2017.

    Args:
        root: the COCO root (``datasets/coco``).
        splits: which of ``train``/``val`` are needed.

    Returns:
        ``{split: {"json": annotations file, "images": image folder}}`` (strings).

    Raises:
        DatasetError: one line naming the first missing annotation file or image folder, or an
            image folder without any ``.jpg``.
    """
    root = Path(root)
    _need(root, "COCO root folder", "set sources.coco in config.yaml (detectron2's datasets/coco)")
    out = {}
    for split in splits:
        if split not in COCO_SPLITS:
            raise DatasetError(f"{root}: unknown COCO split {split!r} (expected one of {COCO_SPLITS})")
        json_file = root / "annotations" / f"instances_{split}2017.json"
        images = root / f"{split}2017"
        _need(json_file, f"COCO {split} annotations", "unpack annotations_trainval2017.zip here")
        _need(images, f"COCO {split} image folder", f"unpack {split}2017.zip here")
        if next(images.glob("*.jpg"), None) is None:
            raise DatasetError(f"{images}: no .jpg images in the COCO {split} image folder")
        out[split] = {"json": str(json_file), "images": str(images)}
    return out


def check_split(json_file: str | Path, images: str | Path) -> None:
    """Check one configured COCO-format split: the annotation file exists and the image folder
    holds at least one ``.jpg``/``.png`` (the layout a derived subset or a training reads).

    Raises:
        DatasetError: one line naming the missing file or folder, or the empty folder.
    """
    json_file, images = Path(json_file), Path(images)
    _need(json_file, "annotation file", "check `datasets` in config.yaml")
    _need(images, "image folder", "check `datasets` in config.yaml")
    if next(images.glob("*.jpg"), None) is None and next(images.glob("*.png"), None) is None:
        raise DatasetError(f"{images}: no .jpg or .png images in the image folder")


def cityscapes_frames(root: str | Path, split: str) -> list[CityscapesFrame]:
    """Every frame of a Cityscapes fine split, after checking that each image has its
    instance-id label image.

    Args:
        root: the Cityscapes root holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``train`` or ``val``.

    Returns:
        Frames sorted by ``file_name`` (so image ids are reproducible).

    Raises:
        DatasetError: one line naming the missing folder, an empty split, or the first image
            whose ``*_gtFine_instanceIds.png`` is missing.
    """
    root = Path(root)
    if split not in CITYSCAPES_SPLITS:
        raise DatasetError(f"{root}: unknown Cityscapes split {split!r} (expected one of {CITYSCAPES_SPLITS})")
    _need(root, "Cityscapes root folder", "set sources.cityscapes in config.yaml")
    image_dir = root / "leftImg8bit" / split
    label_dir = root / "gtFine" / split
    _need(image_dir, f"Cityscapes {split} images", "unpack leftImg8bit_trainvaltest.zip here")
    _need(label_dir, f"Cityscapes {split} fine annotations", "unpack gtFine_trainvaltest.zip here")
    frames = []
    for image in sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}")):
        stem = image.name[: -len(IMAGE_SUFFIX)]
        labels = label_dir / image.parent.name / f"{stem}{INSTANCE_SUFFIX}"
        _need(labels, f"instance ids of {image.name}", "gtFine and leftImg8bit do not match")
        frames.append(CityscapesFrame(image, labels, f"{image.parent.name}/{image.name}"))
    if not frames:
        raise DatasetError(f"{image_dir}: no <city>/*{IMAGE_SUFFIX} images in the Cityscapes {split} split")
    return frames


def check_cityscapes_layout(root: str | Path, splits: tuple[str, ...] = CITYSCAPES_SPLITS) -> dict[str, int]:
    """Check the Cityscapes fine layout; returns ``{split: number of frames}``.

    Raises:
        DatasetError: as :func:`cityscapes_frames`.
    """
    return {split: len(cityscapes_frames(root, split)) for split in splits}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("coco", "cityscapes", "split"))
    parser.add_argument("root", help="dataset root, or the annotation JSON for `split`")
    parser.add_argument("images", nargs="?", help="image folder (only for `split`)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    args = parser.parse_args(argv)
    try:
        if args.dataset == "split":
            if args.images is None:
                parser.error("`split` needs JSON and IMAGE_DIR")
            check_split(args.root, args.images)
            print(json.dumps({"json": args.root, "images": args.images}))
        else:
            check = check_coco_layout if args.dataset == "coco" else check_cityscapes_layout
            print(json.dumps(check(args.root, tuple(args.splits))))
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
