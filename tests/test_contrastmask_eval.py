"""Partially-supervised splits and novel-only scoring (ContrastMask): the VOC / non-VOC split by
class name, the novel-category val subset, and its evaluation against pycocotools' COCOeval
with ``params.catIds`` set by hand, as the official code scores (cocops.py:L265-270)."""

from __future__ import annotations

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_eval import evaluate_bbox, evaluate_segm, quiet
from analysis.subset import main as subset_main
from analysis.subset import restrict_to_subset
from dcl_data import DatasetError
from dcl_data.coco_subsets import main as subsets_main
from dcl_data.coco_subsets import make_novel_split
from dcl_data.voc_split import VOC_CLASSES, is_voc_class, novel_classes, novel_flags, split_classes

EMBEDDED_CLASSES = ["person", "bottle", "chair", "dining table", "sofa", "bus", "car", "truck",
                    "burts bees baby wipes", "fiskars scissors", "hanes socks", "ice cube tray",
                    "irish spring soap", "laugh out loud jokes", "measuring spoons", "mouse traps",
                    "nucleus"]


def test_voc_split_of_coco_is_the_official_label_set():
    from dcl_data.preflight_sets import coco_thing_categories

    cats = coco_thing_categories()
    names = [c["name"] for c in cats]
    voc = split_classes("voc", names)
    # The official base/novel set (cocops.py:L21-30): mmdet's contiguous labels ...
    assert [names.index(n) for n in voc] == [0, 1, 2, 3, 4, 5, 6, 8, 14, 15, 16, 17, 18, 19,
                                             39, 56, 57, 58, 60, 62]
    # ... and their COCO ids (reference A.5).
    ids = [c["id"] for c in cats if c["name"] in voc]
    assert ids == [1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19, 20, 21, 44, 62, 63, 64, 67, 72]
    assert len(split_classes("nonvoc", names)) == 60
    assert set(voc) | set(split_classes("nonvoc", names)) == set(names)


def test_voc_split_of_the_embedded_classes_and_voc_spellings():
    assert split_classes("voc", EMBEDDED_CLASSES) == ["person", "bottle", "chair", "dining table",
                                                      "sofa", "bus", "car"]
    assert novel_classes("nonvoc", EMBEDDED_CLASSES)[0] == "truck"
    assert novel_flags("nonvoc", EMBEDDED_CLASSES) == [False] * 7 + [True] * 10
    for spelling in ("diningtable", "Dining_Table", "tvmonitor", "aeroplane", "motorbike"):
        assert is_voc_class(spelling), spelling
    assert len(VOC_CLASSES) == 20 and not is_voc_class("truck")
    with pytest.raises(ValueError, match="unknown category split 'coco'"):
        split_classes("coco", EMBEDDED_CLASSES)
    with pytest.raises(ValueError, match="none of the dataset's 2 classes"):
        novel_classes("voc", ["nucleus", "truck"])
    with pytest.raises(ValueError, match="every class of the dataset is novel"):
        novel_classes("voc", ["person", "car"])


def _square_rle(y, x, size, h=40, w=40):
    m = np.zeros((h, w), dtype=np.uint8, order="F")
    m[y:y + size, x:x + size] = 1
    rle = mask_util.encode(m)
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _dataset(rng):
    """4 images, categories person (voc), truck and nucleus (non-voc), a few squares each."""
    cats = [{"id": 1, "name": "person"}, {"id": 8, "name": "truck"}, {"id": 17, "name": "nucleus"}]
    images, anns, results = [], [], []
    for img_id in range(1, 5):
        images.append({"id": img_id, "file_name": f"{img_id}.png", "height": 40, "width": 40})
        for k, cat in enumerate((1, 8, 17, 17)):
            y, x, s = int(rng.integers(0, 20)), int(rng.integers(0, 20)), int(rng.integers(6, 18))
            rle = _square_rle(y, x, s)
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                         "segmentation": rle, "area": float(s * s), "bbox": [x, y, s, s],
                         "iscrowd": 0})
            # Predictions: a jittered copy of each instance and a stray one, random scores.
            dy, dx = (int(v) for v in rng.integers(-3, 4, size=2))
            py, px = min(max(y + dy, 0), 30), min(max(x + dx, 0), 30)
            for yy, xx, ss in ((py, px, s), (int(rng.integers(0, 30)), int(rng.integers(0, 30)), 8)):
                results.append({"image_id": img_id, "category_id": cat, "segmentation":
                                _square_rle(yy, xx, ss), "bbox": [xx, yy, ss, ss],
                                "score": float(rng.random())})
    return {"images": images, "annotations": anns, "categories": cats}, results


def _by_hand(gt_file, results, cat_ids, iou_type):
    """COCOeval over every image, ``params.catIds`` set to the novel ids (the official way)."""
    with quiet():
        gt = COCO(str(gt_file))
        dt = gt.loadRes([{k: v for k, v in r.items() if not (iou_type == "segm" and k == "bbox")}
                         for r in results])
        ev = COCOeval(gt, dt, iou_type)
        ev.params.catIds = list(cat_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [100 * v for v in ev.stats]


@pytest.mark.parametrize("split, ids", [("nonvoc", [8, 17]), ("voc", [1])])
def test_novel_only_evaluation_matches_cocoeval_with_cat_ids_set_by_hand(tmp_path, split, ids):
    gt, results = _dataset(np.random.default_rng(3))
    gt_file, pred_file = tmp_path / "val.json", tmp_path / "pred.json"
    gt_file.write_text(json.dumps(gt))
    pred_file.write_text(json.dumps(results))
    counts = make_novel_split(gt_file, tmp_path / "novel.json", split)
    novel = json.loads((tmp_path / "novel.json").read_text())
    assert counts["images"] == 4 and [c["id"] for c in novel["categories"]] == ids
    assert {a["category_id"] for a in novel["annotations"]} == set(ids)
    kept = restrict_to_subset(pred_file, tmp_path / "novel.json")
    assert kept and {r["category_id"] for r in kept} == set(ids)
    assert len(kept) == sum(r["category_id"] in ids for r in results)
    ours = evaluate_segm(tmp_path / "novel.json", kept).stats
    hand = _by_hand(gt_file, results, ids, "segm")
    assert [ours[k] for k in ("AP", "AP50", "AP75", "AR100")] == pytest.approx(
        [hand[0], hand[1], hand[2], hand[8]], abs=1e-9)
    assert 0 < ours["AP"] < 100  # a real, non-trivial score, not an empty evaluation
    # Box AP the same way (the workflow scores both).
    box = evaluate_bbox(tmp_path / "novel.json", kept)
    hand_box = _by_hand(gt_file, results, ids, "bbox")
    assert box["AP"] == pytest.approx(hand_box[0], abs=1e-9)
    # And it differs from the all-category score: the restriction matters.
    assert evaluate_segm(gt_file, results).stats["AP"] != pytest.approx(ours["AP"])


def test_novel_split_and_subset_clis(tmp_path, capsys):
    gt, results = _dataset(np.random.default_rng(0))
    (tmp_path / "val.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(results))
    assert subsets_main(["novel", str(tmp_path / "val.json"), "--split", "nonvoc",
                         "--out", str(tmp_path / "nonvoc.json")]) == 0
    assert subset_main([str(tmp_path / "pred.json"), str(tmp_path / "nonvoc.json"),
                        "-o", str(tmp_path / "p.json")]) == 0
    assert {r["category_id"] for r in json.loads((tmp_path / "p.json").read_text())} == {8, 17}
    # A split with no annotation in the file: one line, nothing to score.
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != 1]
    (tmp_path / "val.json").write_text(json.dumps(gt))
    with pytest.raises(DatasetError, match="no annotation of the 'voc' categories"):
        make_novel_split(tmp_path / "val.json", tmp_path / "voc.json", "voc")
    assert subsets_main(["novel", str(tmp_path / "val.json"), "--split", "voc",
                         "--out", str(tmp_path / "voc.json")]) == 1
    assert "error:" in capsys.readouterr().err and not (tmp_path / "voc.json").exists()


def test_image_subset_keeps_every_category_when_the_subset_has_them_all(tmp_path):
    gt, results = _dataset(np.random.default_rng(1))
    gt["images"] = gt["images"][:2]  # an occlusion-style subset: images only
    kept = restrict_to_subset(results, gt)
    assert kept == [r for r in results if r["image_id"] in (1, 2)]
