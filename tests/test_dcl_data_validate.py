"""Every error case of dcl_data.validate_coco_instances, with its one-line message."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from dcl_data import CocoSummary, DatasetError, validate_coco_instances


def _rle(height: int, width: int) -> dict:
    mask = np.zeros((height, width), np.uint8)
    mask[2:5, 3:7] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def _valid() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "height": 10, "width": 12},
            {"id": 2, "file_name": "b.png", "height": 8, "width": 8},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 12.0,
             "bbox": [3.0, 2.0, 4.0, 3.0], "segmentation": _rle(10, 12)},
            {"id": 2, "image_id": 2, "category_id": 2, "iscrowd": 0, "area": 16.0,
             "bbox": [1.0, 1.0, 4.0, 4.0], "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]},
        ],
        "categories": [{"id": 1, "name": "nucleus"}, {"id": 2, "name": "person"}, {"id": 3, "name": "car"}],
    }


def _write(tmp_path: Path, data, name: str = "instances_val.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "val"
    root.mkdir()
    Image.new("RGB", (12, 10)).save(root / "a.png")
    Image.new("RGB", (8, 8)).save(root / "b.png")
    return root


def test_valid_file_returns_counts(tmp_path, image_root):
    summary = validate_coco_instances(_write(tmp_path, _valid()), image_root=image_root)
    assert isinstance(summary, CocoSummary)
    assert (summary.num_images, summary.num_annotations, summary.num_categories) == (2, 2, 3)
    assert summary.instances_per_category == {"nucleus": 1, "person": 1, "car": 0}
    assert summary.images_without_annotations == 0
    assert summary.crowd_annotations == 0


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.json: file not found$"):
        validate_coco_instances(tmp_path / "nope.json")


def test_malformed_json_reports_line_and_column(tmp_path):
    path = _write(tmp_path, '{"images": [],\n  "annotations": [,]}')
    with pytest.raises(DatasetError) as err:
        validate_coco_instances(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "malformed JSON at line 2 column 19" in msg
    assert "\n" not in msg


def test_top_level_not_an_object(tmp_path):
    with pytest.raises(DatasetError, match="top level must be a JSON object, got list"):
        validate_coco_instances(_write(tmp_path, [1, 2]))


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(tmp_path, key):
    data = _valid()
    del data[key]
    with pytest.raises(DatasetError, match=rf"instances_val\.json: missing top-level key\(s\) \['{key}'\]"):
        validate_coco_instances(_write(tmp_path, data))


def test_top_level_key_of_wrong_type(tmp_path):
    data = _valid()
    data["images"] = {"id": 1}
    with pytest.raises(DatasetError, match="top-level key 'images' must be a list, got dict"):
        validate_coco_instances(_write(tmp_path, data))


def _mutate(fn):
    data = _valid()
    fn(data)
    return data


# (mutation, expected message fragment)
CASES = {
    "empty images": (lambda d: d.update(images=[], annotations=[]), r"empty split: 'images' is empty"),
    "empty annotations": (lambda d: d.update(annotations=[]), r"empty split: 'annotations' is empty"),
    "empty categories": (lambda d: d.update(categories=[]), r"'categories' is empty"),
    "image missing key": (lambda d: d["images"][1].pop("file_name"), r"images\[1\]: missing key\(s\) \['file_name'\]"),
    "image bad height": (lambda d: d["images"][0].update(height=0), r"images\[0\] \(id 1\): 'height' must be a positive integer, got 0"),
    "category missing name": (lambda d: d["categories"][2].pop("name"), r"categories\[2\]: missing key\(s\) \['name'\]"),
    "annotation missing area": (lambda d: d["annotations"][0].pop("area"), r"annotations\[0\]: missing key\(s\) \['area'\]"),
    "annotation not an object": (lambda d: d["annotations"].append(7), r"annotations\[2\]: must be a JSON object, got int"),
    "duplicate image id": (lambda d: d["images"][1].update(id=1), r"images\[1\]: duplicate image id 1 \(first at images\[0\]\)"),
    "duplicate annotation id": (lambda d: d["annotations"][1].update(id=1), r"annotations\[1\]: duplicate annotation id 1 \(first at annotations\[0\]\)"),
    "duplicate category id": (lambda d: d["categories"][2].update(id=2), r"categories\[2\]: duplicate category id 2"),
    "non-integer id": (lambda d: d["images"][0].update(id="1"), r"images\[0\]: 'id' must be an integer, got '1'"),
    "unknown image_id": (lambda d: d["annotations"][1].update(image_id=9), r"annotations\[1\] \(id 2\): unknown image_id 9"),
    "unknown category_id": (lambda d: d["annotations"][0].update(category_id=99), r"annotations\[0\] \(id 1\): unknown category_id 99"),
    "bad bbox": (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"annotations\[0\] \(id 1\): 'bbox' must be \[x, y, w, h\]"),
    "negative area": (lambda d: d["annotations"][0].update(area=-1), r"'area' must be a number >= 0, got -1"),
    "bad iscrowd": (lambda d: d["annotations"][0].update(iscrowd=2), r"'iscrowd' must be 0 or 1, got 2"),
    "rle size differs": (lambda d: d["annotations"][0].update(segmentation=_rle(12, 10)),
                         r"annotations\[0\] \(id 1\): RLE size \[12, 10\] differs from its image's \[height, width\] \[10, 12\]"),
    "rle missing counts": (lambda d: d["annotations"][0]["segmentation"].pop("counts"), r"RLE segmentation needs 'size' and 'counts'"),
    "uncompressed rle wrong total": (lambda d: d["annotations"][0].update(segmentation={"size": [10, 12], "counts": [5, 10]}),
                                     r"uncompressed RLE counts sum to 15, not height\*width 120"),
    "polygon outside image": (lambda d: d["annotations"][1].update(segmentation=[[1, 1, 30, 1, 30, 5]]),
                              r"annotations\[1\] \(id 2\): segmentation\[0\] spans x \[1, 30\] y \[1, 5\], outside its image of width 8 height 8"),
    "polygon too short": (lambda d: d["annotations"][1].update(segmentation=[[1, 1, 5, 1]]),
                          r"segmentation\[0\] must be a flat list of >= 3 \(x, y\) number pairs"),
    "empty segmentation": (lambda d: d["annotations"][1].update(segmentation=[]),
                           r"segmentation must be a non-empty list of polygons or an RLE object"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_entries(tmp_path, case):
    mutation, pattern = CASES[case]
    path = _write(tmp_path, _mutate(mutation))
    with pytest.raises(DatasetError) as err:
        validate_coco_instances(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    assert re.search(pattern, msg), msg
    assert "\n" not in msg
    assert isinstance(err.value, ValueError)


def test_image_file_missing_on_disk(tmp_path, image_root):
    (image_root / "b.png").unlink()
    path = _write(tmp_path, _valid())
    with pytest.raises(DatasetError, match=r"images\[1\] \(id 2\): image file .*b\.png not found"):
        validate_coco_instances(path, image_root=image_root)


def test_image_size_differs_from_entry(tmp_path, image_root):
    Image.new("RGB", (9, 8)).save(image_root / "b.png")
    path = _write(tmp_path, _valid())
    with pytest.raises(DatasetError, match=r"b\.png is 9x8 pixels, but the entry says width 8 height 8"):
        validate_coco_instances(path, image_root=image_root)
    # Existence is still checked when size checks are off.
    assert validate_coco_instances(path, image_root=image_root, check_image_sizes=False).num_images == 2


def test_unreadable_image(tmp_path, image_root):
    (image_root / "a.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"a\.png: not a readable image"):
        validate_coco_instances(_write(tmp_path, _valid()), image_root=image_root)


def test_image_root_not_a_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"image root .*missing is not a folder"):
        validate_coco_instances(_write(tmp_path, _valid()), image_root=tmp_path / "missing")


def test_images_without_annotations_are_counted(tmp_path):
    data = _valid()
    data["images"].append({"id": 3, "file_name": "c.png", "height": 4, "width": 4})
    assert validate_coco_instances(_write(tmp_path, data)).images_without_annotations == 1


def test_cli_ok_and_error(tmp_path, image_root):
    good = _write(tmp_path, _valid())
    run = subprocess.run([sys.executable, "-m", "dcl_data.validate", str(good), "--image-root", str(image_root)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["num_annotations"] == 2
    assert run.stderr == ""
    bad = _write(tmp_path, _mutate(CASES["unknown category_id"][0]), name="bad.json")
    run = subprocess.run([sys.executable, "-m", "dcl_data.validate", str(bad)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [f"error: {bad}: annotations[0] (id 1): unknown category_id 99"]


def test_pycocotools_accepts_what_the_validator_accepts(tmp_path):
    """A file passing validation loads and evaluates in pycocotools (the consumer)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = _write(tmp_path, _valid())
    validate_coco_instances(path)
    gt = COCO(str(path))
    dets = [dict(copy.deepcopy(a), score=1.0) for a in gt.dataset["annotations"]]
    ev = COCOeval(gt, gt.loadRes(dets), iouType="segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)
