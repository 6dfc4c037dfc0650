"""Paper dataset preparation on small fake trees: layout checks, the Cityscapes -> COCO JSON
conversion (cityscapesscripts labels, mmdetection's conventions), COCO-OCC and mini-COCO."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from dcl_data import DatasetError, validate_coco_instances
from dcl_data.cityscapes_convert import coco_categories, convert_split, write_split
from dcl_data.coco_subsets import make_coco_occ, make_mini_coco, mini_image_ids, occluded_image_ids
from dcl_data.paper_sets import check_cityscapes_layout, check_coco_layout, check_split

H, W = 8, 16


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _frame_ids() -> np.ndarray:
    """Instance ids of one 8x16 frame: road (7), car 26000 and 26001, a person group (24, a
    crowd region), a caravan (29000: ignoreInEval, dropped) and an unlabeled pixel (0)."""
    ids = np.full((H, W), 7, dtype=np.uint16)
    ids[0:3, 0:4] = 26000
    ids[4:8, 10:16] = 26001
    ids[5:7, 0:2] = 24
    ids[0:2, 12:14] = 29000
    ids[7, 5] = 0
    return ids


def make_cityscapes(root: Path, frames: dict[str, list[str]]) -> Path:
    """A fake Cityscapes fine tree: `frames` maps split -> ['city/name', ...]."""
    for split, names in frames.items():
        for name in names:
            city, stem = name.split("/")
            _png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                 np.zeros((H, W, 3), dtype=np.uint8))
            _png(root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png", _frame_ids())
    return root


FRAMES = {"train": ["aachen/aachen_000000_000019", "bremen/bremen_000001_000019"],
          "val": ["lindau/lindau_000000_000019"]}


def test_cityscapes_conversion_follows_mmdet_conventions(tmp_path):
    root = make_cityscapes(tmp_path / "cityscapes", FRAMES)
    coco = convert_split(root, "train")
    names = [c["name"] for c in coco["categories"]]
    assert names == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    assert [c["id"] for c in coco["categories"]] == [24, 25, 26, 27, 28, 31, 32, 33]
    assert [im["file_name"] for im in coco["images"]] == [
        "aachen/aachen_000000_000019_leftImg8bit.png", "bremen/bremen_000001_000019_leftImg8bit.png"]
    assert [im["id"] for im in coco["images"]] == [1, 2]
    assert all((im["height"], im["width"]) == (H, W) for im in coco["images"])

    first = [a for a in coco["annotations"] if a["image_id"] == 1]
    # Two cars and the person group; road, caravan and unlabeled pixels give no annotation.
    assert sorted((a["category_id"], a["iscrowd"]) for a in first) == [(24, 1), (26, 0), (26, 0)]
    ids = _frame_ids()
    for ann in first:
        mask = mask_utils.decode({"size": ann["segmentation"]["size"],
                                  "counts": ann["segmentation"]["counts"].encode()})
        value = {(24, 1): 24}.get((ann["category_id"], ann["iscrowd"]))
        expected = ids == value if value is not None else None
        if expected is None:  # one of the cars: match by its pixels
            expected = next(ids == v for v in (26000, 26001) if np.array_equal(mask, ids == v))
        assert np.array_equal(mask, expected)
        assert ann["area"] == expected.sum()
        ys, xs = np.nonzero(expected)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert [a["id"] for a in coco["annotations"]] == list(range(1, 7))


def test_cityscapes_written_json_passes_validation_and_jobs_do_not_change_it(tmp_path):
    root = make_cityscapes(tmp_path / "cityscapes", FRAMES)
    out = tmp_path / "annotations" / "instancesonly_filtered_gtFine_train.json"
    counts = write_split(root, "train", out)
    assert counts == {"images": 2, "annotations": 6, "crowd": 2}
    summary = validate_coco_instances(out, root / "leftImg8bit" / "train")
    assert summary.instances_per_category["car"] == 4 and summary.crowd_annotations == 2
    assert json.loads(out.read_text()) == convert_split(root, "train", jobs=2)
    assert not list(out.parent.glob(".*.tmp"))


def test_coco_categories_come_from_cityscapesscripts():
    from cityscapesscripts.helpers.labels import name2label

    for category in coco_categories():
        assert name2label[category["name"]].id == category["id"]


@pytest.mark.parametrize("breakage, needle", [
    (lambda r: __import__("shutil").rmtree(r / "gtFine"), "gtFine/val: missing Cityscapes val fine annotations"),
    (lambda r: next((r / "gtFine/val").rglob("*instanceIds.png")).unlink(),
     "missing instance ids of lindau_000000_000019_leftImg8bit.png"),
    (lambda r: __import__("shutil").rmtree(r / "leftImg8bit/val/lindau"), "no <city>/*_leftImg8bit.png images"),
    (lambda r: _png(next((r / "leftImg8bit/val").rglob("*.png")), np.zeros((4, 4, 3), np.uint8)),
     "8 pixels, but lindau_000000_000019_leftImg8bit.png is 4x4"),
])
def test_cityscapes_layout_problems_are_one_line_errors(tmp_path, breakage, needle):
    root = make_cityscapes(tmp_path / "cityscapes", FRAMES)
    breakage(root)
    with pytest.raises(DatasetError) as err:
        check_cityscapes_layout(root, ("val",))
        convert_split(root, "val")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_cityscapes_cli_reports_a_missing_root(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dcl_data.cityscapes_convert", str(tmp_path / "nope"),
                             "--split", "val", "--out", str(tmp_path / "x.json")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'}: missing Cityscapes root folder; set sources.cityscapes in config.yaml"


def make_coco_tree(root: Path, val: dict, train: dict | None = None) -> Path:
    for split, coco in (("val", val), ("train", train or val)):
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(coco))
        (root / f"{split}2017").mkdir(exist_ok=True)
        _png(root / f"{split}2017" / "000000000001.jpg", np.zeros((4, 4, 3), np.uint8))
    return root


def _coco(boxes_per_image: dict[int, list[tuple[list[float], int]]]) -> dict:
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 100, "width": 100} for i in sorted(boxes_per_image)]
    anns = []
    for image_id, boxes in sorted(boxes_per_image.items()):
        for bbox, crowd in boxes:
            x, y, w, h = bbox
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": crowd,
                         "bbox": bbox, "area": w * h,
                         "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


# Image 1: IoU([0,0,10,10], [5,0,10,10]) = 50 / 150 = 1/3. Image 2: disjoint boxes.
# Image 3: overlaps only a crowd region. Image 4: a single instance.
VAL = _coco({1: [([0, 0, 10, 10], 0), ([5, 0, 10, 10], 0)],
             2: [([0, 0, 10, 10], 0), ([50, 50, 10, 10], 0)],
             3: [([0, 0, 10, 10], 0), ([0, 0, 10, 10], 1)],
             4: [([0, 0, 10, 10], 0)]})


@pytest.mark.parametrize("threshold, kept", [(0.2, [1]), (0.333, [1]), (0.334, []), (1.0, [])])
def test_coco_occ_keeps_images_with_an_overlapping_non_crowd_pair(threshold, kept):
    assert occluded_image_ids(VAL, threshold) == kept


def test_coco_occ_writes_the_subset_with_all_its_annotations(tmp_path):
    val = _coco({**{i: b for i, b in enumerate([[([0, 0, 10, 10], 0), ([5, 0, 10, 10], 0), ([0, 0, 90, 90], 1)]], 7)},
                 8: [([0, 0, 10, 10], 0)]})
    out = tmp_path / "occ.json"
    assert make_coco_occ(make_coco_tree(tmp_path / "coco", val) / "annotations/instances_val2017.json", out) == \
        {"images": 1, "annotations": 3, "of_images": 2}
    written = json.loads(out.read_text())
    assert [im["id"] for im in written["images"]] == [7]
    assert [a["id"] for a in written["annotations"]] == [1, 2, 3]  # the crowd region stays (ignored in AP)
    assert "box IoU >= 0.2" in written["info"]["description"]


def test_coco_occ_rejects_bad_threshold_and_empty_result(tmp_path):
    with pytest.raises(DatasetError, match="min_box_iou must be in"):
        occluded_image_ids(VAL, 0)
    path = tmp_path / "v.json"
    path.write_text(json.dumps(_coco({2: [([0, 0, 10, 10], 0), ([50, 50, 10, 10], 0)]})))
    with pytest.raises(DatasetError, match="no image has two instances"):
        make_coco_occ(path, tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()


def test_mini_coco_is_reproducible_and_sized(tmp_path):
    train = _coco({i: [([0, 0, 5, 5], 0)] for i in range(1, 41)} | {41: [([0, 0, 5, 5], 1)]})
    val = _coco({i: [([0, 0, 5, 5], 0)] for i in (9, 3, 5, 7)})
    a = mini_image_ids(train, val, 10, 2, seed=0)
    assert a == mini_image_ids(train, val, 10, 2, seed=0)
    assert a != mini_image_ids(train, val, 10, 2, seed=1)
    assert len(a[0]) == 10 and 41 not in a[0]  # crowd-only images are never drawn
    assert a[1] == [3, 5]
    with pytest.raises(DatasetError, match=r"mini_coco.train_images must be between 1 and 40"):
        mini_image_ids(train, val, 41, 2, seed=0)
    with pytest.raises(DatasetError, match=r"mini_coco.val_images must be between 1 and 4"):
        mini_image_ids(train, val, 1, 0, seed=0)
    root = make_coco_tree(tmp_path / "coco", val, train)
    counts = make_mini_coco(root / "annotations/instances_train2017.json", root / "annotations/instances_val2017.json",
                            tmp_path / "t.json", tmp_path / "v.json", 10, 2, 0)
    assert counts == {"train": {"images": 10, "annotations": 10}, "val": {"images": 2, "annotations": 2}}


def test_coco_layout_checks_name_what_is_missing(tmp_path):
    root = make_coco_tree(tmp_path / "coco", VAL)
    assert check_coco_layout(root)["val"]["images"] == str(root / "val2017")
    (root / "train2017" / "000000000001.jpg").unlink()
    with pytest.raises(DatasetError, match="train2017: no .jpg images"):
        check_coco_layout(root)
    (root / "annotations/instances_val2017.json").unlink()
    with pytest.raises(DatasetError, match="instances_val2017.json: missing COCO val annotations"):
        check_coco_layout(root, ("val",))
    with pytest.raises(DatasetError, match="val2017: missing image folder"):
        check_split(root / "annotations/instances_train2017.json", tmp_path / "val2017")


def test_subset_cli_reports_a_missing_file(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dcl_data.coco_subsets", "occ", str(tmp_path / "v.json"),
                             "--out", str(tmp_path / "o.json")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'v.json'}: COCO annotation file not found"
