"""Cityscapes-style AP (analysis.cityscapes_eval) on a small fake gtFine tree, checked against
cityscapesScripts' own end-to-end evaluation; per-class COCO AP (analysis.coco_eval)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.cityscapes_eval import CLASSES, CityscapesEvalError, evaluate_cityscapes
from analysis.coco_eval import evaluate_segm
from analysis.coco_format import CocoFormatError
from dcl_data.cityscapes_convert import convert_split

H, W = 64, 128
FRAMES = ("lindau/lindau_000000_000019", "munster/munster_000001_000019")


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _instance_ids(shift: int) -> np.ndarray:
    """One frame: road (7); cars 26000 (400 px) and 26001 (300 px); a person 24000 (300 px);
    a person group (24, ignored); a caravan 29000 (ignoreInEval: void); a 60-px rider 25000
    (under cityscapesScripts' 100-pixel minimum, so ignored)."""
    ids = np.full((H, W), 7, dtype=np.uint16)
    ids[4:24, 4 + shift:24 + shift] = 26000
    ids[30:45, 40:60] = 26001
    ids[10:40, 80:90] = 24000
    ids[50:60, 0:20] = 24
    ids[50:60, 100:120] = 29000
    ids[0:6, 100:110] = 25000
    return ids


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(gt dict, gtFine/val folder, path of the gt JSON) of a 2-frame fake Cityscapes val."""
    root = tmp_path_factory.mktemp("cityscapes")
    for k, name in enumerate(FRAMES):
        city, stem = name.split("/")
        _png(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png",
             np.zeros((H, W, 3), dtype=np.uint8))
        _png(root / "gtFine" / "val" / city / f"{stem}_gtFine_instanceIds.png",
             _instance_ids(4 * k))
    gt = convert_split(root, "val")
    gt_path = root / "instancesonly_filtered_gtFine_val.json"
    gt_path.write_text(json.dumps(gt))
    return gt, root / "gtFine" / "val", gt_path


def _perfect(gt: dict) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"],
             "segmentation": a["segmentation"], "score": 0.9, "bbox": a["bbox"]}
            for a in gt["annotations"] if not a["iscrowd"]]


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(mask.shape), "counts": rle["counts"].decode("ascii")}


def _mixed(gt: dict) -> list[dict]:
    """Predictions with every kind of outcome: exact, shifted (IoU about 0.7), a miss, a false
    positive on road, one mostly on the caravan (void), and a duplicate at a lower score (none
    of the inputs that crash cityscapesScripts, so its own run can serve as the reference)."""
    preds = _perfect(gt)
    car = next(p for p in preds if p["category_id"] == 26)
    person = next(p for p in preds if p["category_id"] == 24 and p["image_id"] == 2)
    m = mask_utils.decode(person["segmentation"]).astype(bool)
    person["segmentation"] = _rle(np.roll(m, 5, axis=0))
    preds.remove(next(p for p in preds if p["category_id"] == 26 and p["image_id"] == 2))
    road = np.zeros((H, W), bool)
    road[40:60, 62:78] = True
    on_void = np.zeros((H, W), bool)
    on_void[50:60, 98:120] = True
    preds += [
        {"image_id": 1, "category_id": 26, "segmentation": _rle(road), "score": 0.95},
        {"image_id": 1, "category_id": 26, "segmentation": _rle(on_void), "score": 0.8},
        {**car, "score": 0.3},
    ]
    for k, p in enumerate(preds):
        p["score"] = round(p["score"] - 0.001 * k, 4)  # distinct scores: no tie-order effects
    return preds


def _script_end_to_end(gt: dict, gtfine: Path, preds: list[dict], workdir: Path, monkeypatch):
    """cityscapesScripts' own evaluateImgLists on prediction files written here, independently
    of analysis.cityscapes_eval: the reference numbers (AP, AP50, per class, as fractions)."""
    import copy

    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as cs

    # The script calls np.in1d (gone in NumPy 2.4); the test restores numpy afterwards.
    monkeypatch.setattr(np, "in1d", lambda a, b: np.isin(a, b).ravel(), raising=False)
    # Its JSON dumps (matches.json, the gt cache) fail on NumPy 2 integers; they only write
    # files, which this reference run does not need.
    monkeypatch.setattr(cs, "writeDict2JSON", lambda *a: None)
    monkeypatch.chdir(workdir)
    label_of = {c["id"]: c["name"] for c in gt["categories"]}
    from cityscapesscripts.helpers.labels import name2label

    pred_files, gt_files = [], []
    for img in gt["images"]:
        stem = img["file_name"].split("/")[1][: -len("_leftImg8bit.png")]
        lines = []
        for k, p in enumerate(q for q in preds if q["image_id"] == img["id"]):
            png = workdir / f"{stem}_{k}.png"
            Image.fromarray(mask_utils.decode(p["segmentation"]) * 255).save(png)
            lines.append(f"{png.name} {name2label[label_of[p['category_id']]].id} {p['score']}")
        txt = workdir / f"{stem}.txt"
        txt.write_text("\n".join(lines) + ("\n" if lines else ""))
        pred_files.append(str(txt))
        gt_files.append(str(gtfine / img["file_name"].replace("_leftImg8bit.png",
                                                              "_gtFine_instanceIds.png")))
    args = copy.deepcopy(cs.args)
    args.predictionPath = str(workdir)
    args.gtInstancesFile = str(workdir / "gtInstances.json")
    args.JSONOutput, args.quiet = False, True
    out = cs.evaluateImgLists(pred_files, gt_files, args)
    return out["averages"]


def test_perfect_predictions_give_ap_100_for_present_classes(tree):
    gt, gtfine, gt_path = tree
    out = evaluate_cityscapes(gt_path, gtfine, _perfect(gt))
    assert out["AP"] == pytest.approx(100.0) and out["AP50"] == pytest.approx(100.0)
    assert out["per_class"]["car"] == pytest.approx(100.0)
    assert out["per_class"]["person"] == pytest.approx(100.0)
    # No scored ground truth: the rider is under 100 pixels, the rest absent.
    for name in set(CLASSES) - {"car", "person"}:
        assert math.isnan(out["per_class"][name]), name
    assert out["num_images"] == 2 and out["num_predictions"] == 8
    assert list(out["per_class"]) == list(CLASSES)


def test_a_missing_instance_lowers_ap_as_cityscapesscripts_computes_it(tree):
    gt, gtfine, gt_path = tree
    preds = _perfect(gt)
    preds.remove(next(p for p in preds if p["category_id"] == 26))
    out = evaluate_cityscapes(gt_path, gtfine, preds)
    # 3 of 4 cars found, all true positives at every threshold: precision 1 up to recall
    # 0.75, which the script's step integration turns into AP 0.75.
    assert out["per_class"]["car"] == pytest.approx(75.0)
    assert out["per_class"]["person"] == pytest.approx(100.0)
    assert out["AP"] == pytest.approx(87.5)


def test_mixed_predictions_match_cityscapesscripts_end_to_end(tree, tmp_path, monkeypatch):
    gt, gtfine, gt_path = tree
    preds = _mixed(gt)
    ours = evaluate_cityscapes(gt_path, gtfine, preds)
    ref = _script_end_to_end(gt, gtfine, preds, tmp_path, monkeypatch)
    assert ours["AP"] == pytest.approx(100 * ref["allAp"])
    assert ours["AP50"] == pytest.approx(100 * ref["allAp50%"])
    for name in CLASSES:
        want = ref["classes"][name]["ap"]
        got = ours["per_class"][name]
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(100 * want), name
    # Not a degenerate case: something was lost against the perfect score.
    assert 0 < ours["per_class"]["car"] < 100 and 0 < ours["per_class"]["person"] < 100


def test_jobs_do_not_change_the_result(tree):
    gt, gtfine, gt_path = tree
    preds = _mixed(gt)
    # json.dumps: nan == nan there, as the written results compare.
    assert json.dumps(evaluate_cityscapes(gt_path, gtfine, preds, jobs=2)) == \
        json.dumps(evaluate_cityscapes(gt_path, gtfine, preds))


def test_empty_predictions_score_zero_for_classes_with_ground_truth(tree):
    gt, gtfine, gt_path = tree
    out = evaluate_cityscapes(gt_path, gtfine, [])
    assert out["AP"] == 0.0 and out["per_class"]["car"] == 0.0 and out["per_class"]["person"] == 0.0
    assert math.isnan(out["per_class"]["bus"])


def test_class_without_ground_truth_but_with_predictions_stays_nan(tree):
    # cityscapesScripts 2.3.0 divides by zero here; the documented value is nan.
    gt, gtfine, gt_path = tree
    road = np.zeros((H, W), bool)
    road[40:60, 62:78] = True
    preds = _perfect(gt) + [{"image_id": 1, "category_id": 28, "segmentation": _rle(road),
                             "score": 0.5}]
    out = evaluate_cityscapes(gt_path, gtfine, preds)
    assert math.isnan(out["per_class"]["bus"]) and out["AP"] == pytest.approx(100.0)


def test_all_predictions_ignored_and_ground_truth_missed_scores_zero(tree, tmp_path):
    # cityscapesScripts' issue #89 (IndexError): cars exist, the only car prediction lies on
    # the caravan (void) and matches none.
    gt, gtfine, gt_path = tree
    on_void = np.zeros((H, W), bool)
    on_void[50:60, 100:120] = True
    preds = [p for p in _perfect(gt) if p["category_id"] != 26]
    preds.append({"image_id": 1, "category_id": 26, "segmentation": _rle(on_void), "score": 0.5})
    out = evaluate_cityscapes(gt_path, gtfine, preds)
    assert out["per_class"]["car"] == 0.0 and out["per_class"]["person"] == pytest.approx(100.0)


def _first_image(gt: dict, **changes) -> dict:
    """`gt` with image 1 changed and its annotations dropped (they would not fit a new size)."""
    return {**gt, "images": [{**gt["images"][0], **changes}, *gt["images"][1:]],
            "annotations": [a for a in gt["annotations"] if a["image_id"] != 1]}


@pytest.mark.parametrize("breakage, needle", [
    (lambda gt, d: (gt, d / "nope"), "missing gtFine split folder"),
    (lambda gt, d: (gt, d.parent), "missing label image of lindau/lindau_000000_000019"),
    (lambda gt, d: (_first_image(gt, file_name="x.png"), d), "file_name 'x.png' is not"),
    (lambda gt, d: (_first_image(gt, height=65), d), "128x64 pixels, but .* says 128x65"),
])
def test_bad_ground_truth_or_folder_is_a_one_line_error(tree, breakage, needle):
    gt, gtfine, _ = tree
    bad_gt, bad_dir = breakage(gt, gtfine)
    with pytest.raises(CityscapesEvalError, match=needle) as err:
        evaluate_cityscapes(bad_gt, bad_dir, [])
    assert "\n" not in str(err.value)


def test_unknown_image_id_and_non_cityscapes_category_are_errors(tree):
    gt, gtfine, gt_path = tree
    pred = _perfect(gt)[0]
    with pytest.raises(CityscapesEvalError, match="image_id 99 is not in the ground truth"):
        evaluate_cityscapes(gt_path, gtfine, [{**pred, "image_id": 99}])
    odd = {**gt, "categories": gt["categories"] + [{"id": 99, "name": "lamp post"}]}
    with pytest.raises(CityscapesEvalError, match="'lamp post'.*not a Cityscapes instance class"):
        evaluate_cityscapes(odd, gtfine, [{**pred, "category_id": 99}])


def test_cli_writes_json_and_reports_errors_in_one_line(tree, tmp_path):
    gt, gtfine, gt_path = tree
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(_perfect(gt)))
    out = tmp_path / "out" / "cityscapes.json"
    cmd = [sys.executable, "-m", "analysis.cityscapes_eval", str(gt_path), str(gtfine), str(preds),
           "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["AP"] == pytest.approx(100.0) and data["per_class"]["bus"] is None
    bad = subprocess.run(cmd[:3] + [str(tmp_path / "missing.json"), *cmd[4:]],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: ") and "missing.json" in bad.stderr


# --- per-class COCO-style AP -------------------------------------------------------------

def test_per_class_ap_perfect_missing_and_absent_classes(tree):
    gt, _, _ = tree
    perfect = evaluate_segm(gt, _perfect(gt)).per_class
    assert list(perfect) == list(CLASSES)
    assert perfect["car"] == pytest.approx(100.0) and perfect["person"] == pytest.approx(100.0)
    # COCO has no size floor: the 60-pixel rider counts (Cityscapes ignores it).
    assert perfect["rider"] == pytest.approx(100.0) and math.isnan(perfect["bus"])
    no_car = evaluate_segm(gt, [p for p in _perfect(gt) if p["category_id"] != 26]).per_class
    assert no_car["car"] == 0.0 and no_car["person"] == pytest.approx(100.0)


def test_per_class_ap_averages_to_pycocotools_ap(tree):
    gt, _, _ = tree
    preds = _mixed(gt)
    result = evaluate_segm(gt, preds)
    defined = [v for v in result.per_class.values() if not math.isnan(v)]
    assert len(defined) == 3  # person, rider, car
    assert np.mean(defined) == pytest.approx(result.stats["AP"])
    assert 0 < result.per_class["car"] < 100


def test_per_class_ap_rejects_duplicate_category_names(tree):
    gt, _, _ = tree
    dup = {**gt, "categories": gt["categories"] + [{"id": 99, "name": "car"}]}
    result = evaluate_segm(dup, [])
    assert result.stats["AP"] == 0.0  # the stats do not need unique names
    with pytest.raises(CocoFormatError, match="category name 'car' is used by several ids"):
        result.per_class


def test_one_segm_evaluation_gives_the_stock_stats_and_the_per_class_ap(tree):
    gt, _, _ = tree
    preds = _mixed(gt)
    result = evaluate_segm(gt, preds)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        # Without bbox, as evaluate_segm drops it (mask areas decide small/medium/large).
        ev = COCOeval(coco_gt, coco_gt.loadRes([{k: v for k, v in p.items() if k != "bbox"}
                                                for p in copy.deepcopy(preds)]), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    np.testing.assert_equal(list(result.stats.values()),
                            [np.nan if v == -1 else v * 100 for v in ev.stats])
    assert list(result.per_class) == [c["name"] for c in gt["categories"]]
    assert 0 < result.stats["AP"] < 100


def test_jobs_are_capped_at_the_usable_cpus(tree, monkeypatch):
    import analysis.cityscapes_eval as cityscapes_module
    import analysis.workers as workers

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started")

    gt, gtfine, gt_path = tree
    monkeypatch.setattr(workers, "usable_cpus", lambda: 1)
    monkeypatch.setattr(cityscapes_module, "ProcessPoolExecutor", no_pool)
    assert evaluate_cityscapes(gt_path, gtfine, _perfect(gt), jobs=1000)["AP"] == \
        pytest.approx(100.0)
