"""Generated stand-ins for Cityscapes and COCO 2017 (dcl_data.preflight_sets) pass the project's
layout checks and the real data steps: Cityscapes -> COCO JSON with cityscapesscripts' labels,
validation against the images, COCO-OCC with at least one image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dcl_data import DatasetError, validate_coco_instances
from dcl_data.cityscapes_convert import coco_categories, write_split
from dcl_data.coco_subsets import occluded_image_ids
from dcl_data.paper_sets import check_cityscapes_layout, check_coco_layout
from dcl_data.preflight_sets import main, make_cityscapes, make_coco


def test_cityscapes_stand_in_converts_with_the_real_label_ids(tmp_path):
    root = tmp_path / "cityscapes"
    written = make_cityscapes(root, {"train": 2, "val": 1}, height=128, width=256, seed=1)
    assert check_cityscapes_layout(root)  # the layout checks of the data rule
    out = tmp_path / "train.json"
    counts = write_split(root, "train", out)
    assert counts["images"] == 2 and counts["annotations"] == written["train"]
    summary = validate_coco_instances(out, root / "leftImg8bit/train")
    assert summary.num_images == 2
    data = json.loads(out.read_text())
    assert data["categories"] == coco_categories()
    assert {a["category_id"] for a in data["annotations"]} <= {24, 25, 26, 27, 28, 31, 32, 33}
    # labelIds, instanceIds and polygons agree: every instance pixel carries its class id.
    gt = next((root / "gtFine/train").rglob("*_gtFine_instanceIds.png"))
    ids = np.asarray(Image.open(gt))
    labels = np.asarray(Image.open(str(gt).replace("instanceIds", "labelIds")))
    inst = ids >= 1000
    assert inst.any() and np.array_equal(labels[inst], ids[inst] // 1000)
    assert set(np.unique(labels[~inst])) <= {0, 7, 11, 23}
    polygons = json.loads(gt.with_name(gt.name.replace("instanceIds.png", "polygons.json")).read_text())
    assert (polygons["imgHeight"], polygons["imgWidth"]) == (128, 256)
    assert [o["label"] for o in polygons["objects"][:3]] == ["sky", "building", "road"]


def test_coco_stand_in_has_the_80_categories_and_an_occlusion_subset(tmp_path):
    root = tmp_path / "coco"
    make_coco(root, {"train": 3, "val": 2}, seed=2)
    assert check_coco_layout(root)
    for split in ("train", "val"):
        summary = validate_coco_instances(root / f"annotations/instances_{split}2017.json",
                                          root / f"{split}2017")
        assert summary.num_images == {"train": 3, "val": 2}[split]
    val = json.loads((root / "annotations/instances_val2017.json").read_text())
    ids = [c["id"] for c in val["categories"]]
    assert len(ids) == 80 and ids[0] == 1 and ids[-1] == 90 and 12 not in ids
    assert val["categories"][0]["name"] == "person" and val["categories"][-1]["name"] == "toothbrush"
    assert occluded_image_ids(val, 0.2) == [im["id"] for im in val["images"]]


def test_a_count_below_one_is_one_line(tmp_path, capsys):
    with pytest.raises(DatasetError, match="train: the number of images must be >= 1, got 0"):
        make_coco(tmp_path, {"train": 0, "val": 1})
    assert main(["coco", str(tmp_path), "--train", "0"]) == 1
    assert capsys.readouterr().err == "error: train: the number of images must be >= 1, got 0\n"
