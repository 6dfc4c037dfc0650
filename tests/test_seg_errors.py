"""Segmentation error analysis (paper Sec. 3): corrections, matching rules, authors mode, bad input.

Masks are hand-built on small grids so every expected number follows from the construction.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from analysis.coco_eval import STAT_NAMES, evaluate_segm
from analysis.coco_format import CocoFormatError, load_ground_truth, load_results
from analysis.seg_errors import (BackgroundFP, CombinedError, FalseNegative, ForegroundFP,
                                 Target, analyze_errors, parse_error_types)
from analysis.seg_errors.corrections import Chunk, process_chunk


def rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}


def box(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[rows, cols] = True
    return m


def coco(h: int, w: int, gts: list[tuple], n_cats: int = 2) -> dict:
    """gts: (id, category, mask[, iscrowd])."""
    anns = []
    for g in gts:
        gid, cat, m = g[:3]
        anns.append({"id": gid, "image_id": 1, "category_id": cat, "segmentation": rle(m),
                     "area": float(m.sum()), "iscrowd": int(g[3]) if len(g) > 3 else 0})
    return {"images": [{"id": 1, "height": h, "width": w}], "annotations": anns,
            "categories": [{"id": c, "name": f"c{c}"} for c in range(1, n_cats + 1)]}


def same(a, b) -> bool:
    """Equal nested dicts of stats, nan == nan (undefined stats)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b or (math.isnan(a) and math.isnan(b))


def det(cat: int, m: np.ndarray, score: float) -> dict:
    return {"image_id": 1, "category_id": cat, "segmentation": rle(m), "score": score}


# --------------------------------------------------------------------------- corrections
H = W = 20
G1 = box(H, W, slice(0, 10), slice(0, 10))       # category 1, 100 px
G2 = box(H, W, slice(10, 20), slice(0, 10))      # category 2, 100 px, just below G1


@pytest.mark.parametrize("case", ["FN", "bFP", "fFP"])
def test_each_correction_known_by_construction(case):
    """One error of one kind; fixing it gives IoU 1 and a known AP gain, the others nothing.

    Category 2 has a perfect prediction (AP 1). Category 1's prediction has IoU 0.62 (FN
    case, matched at t = 0.50, 0.55, 0.60: AP 0.3) or 100/140 = 0.714 (bFP/fFP cases, five
    thresholds: AP 0.5). Mean AP over the two categories: 65 or 75; after the fix: 100.
    """
    if case == "FN":
        d = box(H, W, slice(0, 6), slice(0, 10)) | box(H, W, slice(6, 7), slice(0, 2))  # 62 px
        base_ap, pixels = 65.0, {"fFP": 0, "bFP": 0, "FN": 38}
    elif case == "bFP":
        d = G1 | box(H, W, slice(0, 10), slice(10, 14))            # 40 px on background
        base_ap, pixels = 75.0, {"fFP": 0, "bFP": 40, "FN": 0}
    else:
        d = G1 | box(H, W, slice(10, 14), slice(0, 10))            # 40 px on G2
        base_ap, pixels = 75.0, {"fFP": 40, "bFP": 0, "FN": 0}
    gt = coco(H, W, [(1, 1, G1), (2, 2, G2)])
    dt = [det(1, d, 0.9), det(2, G2, 0.8)]
    out = analyze_errors(gt, dt, types=["fFP", "bFP", "FN", "fFP+bFP+FN"])
    assert out["baseline"]["AP"] == pytest.approx(base_ap, abs=1e-9)
    for t in ("fFP", "bFP", "FN"):
        want = 100.0 - base_ap if t == case else 0.0
        assert out["delta"][t]["AP"] == pytest.approx(want, abs=1e-9), t
    assert out["corrected"]["fFP+bFP+FN"]["AP"] == pytest.approx(100.0, abs=1e-9)
    assert out["counts"]["error_pixels"] == pixels
    assert out["counts"]["matched"] == 2 and out["counts"]["unmatched"] == 0
    # Stats without ground truth in their area range are undefined: nan, not 0 or -100.
    # (all objects here are "small", area < 32^2).
    assert math.isnan(out["baseline"]["APm"]) and math.isnan(out["delta"]["FN"]["APl"])
    assert out["baseline"]["APs"] == pytest.approx(base_ap, abs=1e-9)


def test_fix_masks_follow_eq1():
    """fFP: D - (G - G*), bFP: D & G, FN: D | G*, on a prediction with all three errors."""
    h, w = 8, 12
    g_star = box(h, w, slice(0, 4), slice(0, 4))
    other = box(h, w, slice(0, 4), slice(4, 8))
    union = g_star | other
    d = box(h, w, slice(1, 6), slice(2, 6))  # misses part of G*, spills on other and background
    keep = ~union | g_star
    tgt = Target(gt=rle(g_star), union=rle(union), keep=rle(keep))
    dec = lambda r: mask_utils.decode(r).astype(bool)  # noqa: E731
    np.testing.assert_array_equal(dec(ForegroundFP().fix(rle(d), tgt)), d & ~(union & ~g_star))
    np.testing.assert_array_equal(dec(BackgroundFP().fix(rle(d), tgt)), d & union)
    np.testing.assert_array_equal(dec(FalseNegative().fix(rle(d), tgt)), d | g_star)
    both = CombinedError([ForegroundFP(), BackgroundFP()])
    assert both.name == "fFP+bFP"
    np.testing.assert_array_equal(dec(both.fix(rle(d), tgt)), d & g_star)
    everything = parse_error_types(["FN+bFP+fFP"])[0]
    assert everything.name == "fFP+bFP+FN"
    np.testing.assert_array_equal(dec(everything.fix(rle(d), tgt)), g_star)


def test_parse_error_types():
    types = parse_error_types(["ffp", "bFP", "FN", "fFP+bFP"])
    assert [t.name for t in types] == ["fFP", "bFP", "FN", "fFP+bFP"]
    with pytest.raises(ValueError, match="unknown error type 'xFP'"):
        parse_error_types(["xFP"])
    with pytest.raises(ValueError, match="given twice"):
        parse_error_types(["fFP", "fFP"])


# ------------------------------------------------------------------------ matching rules
def test_matching_threshold():
    g = box(H, W, slice(0, 10), slice(0, 10))                       # 100 px
    d12 = box(H, W, slice(0, 2), slice(0, 6))                        # 12 px inside: IoU 0.12
    d9 = box(H, W, slice(5, 8), slice(0, 3))                         # 9 px inside: IoU 0.09
    gt = coco(H, W, [(1, 1, g)], n_cats=1)
    dt = [det(1, d12, 0.9), det(1, d9, 0.8)]
    c = analyze_errors(gt, dt)["counts"]
    assert (c["matched"], c["unmatched"]) == (1, 1)
    assert c["error_pixels"]["FN"] == 100 - 12
    c = analyze_errors(gt, dt, iou_threshold=0.05)["counts"]
    assert (c["matched"], c["unmatched"]) == (2, 0)
    c = analyze_errors(gt, dt, iou_threshold=0.15)["counts"]
    assert (c["matched"], c["unmatched"]) == (0, 2)
    with pytest.raises(ValueError, match="iou_threshold"):
        analyze_errors(gt, dt, iou_threshold=0.0)


def test_matching_is_class_aware():
    """A prediction lying exactly on an instance of another category is unmatched."""
    gt = coco(H, W, [(1, 1, G1), (2, 2, G2)])
    out = analyze_errors(gt, [det(2, G1, 0.9)])
    assert (out["counts"]["matched"], out["counts"]["unmatched"]) == (0, 1)
    for t in ("fFP", "bFP", "FN"):
        assert out["delta"][t]["AP"] == 0.0


def test_crowd_ground_truths_are_dropped():
    """Crowd regions neither match predictions nor count as foreground (G) for bFP."""
    crowd = box(H, W, slice(10, 20), slice(10, 20))
    gt = coco(H, W, [(1, 1, G1), (2, 1, crowd, 1)], n_cats=1)
    on_crowd = det(1, crowd, 0.5)
    spill = det(1, G1 | box(H, W, slice(10, 12), slice(10, 20)), 0.9)  # 20 px on the crowd
    out = analyze_errors(gt, [spill, on_crowd])
    c = out["counts"]
    assert (c["matched"], c["unmatched"], c["crowd_ground_truths"]) == (1, 1, 1)
    assert c["error_pixels"] == {"fFP": 0, "bFP": 20, "FN": 0}


def test_many_to_one_matching():
    """Two predictions may match the same ground truth; both are corrected."""
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    a = box(H, W, slice(0, 10), slice(0, 6))      # 60 px of G1
    b = box(H, W, slice(0, 10), slice(4, 10))     # 60 px of G1
    out = analyze_errors(gt, [det(1, a, 0.9), det(1, b, 0.8)])
    c = out["counts"]
    assert (c["matched"], c["matched_ground_truths"]) == (2, 1)
    assert c["error_pixels"]["FN"] == 40 + 40
    # After FN both equal G1: the first is a TP at every threshold, the second a duplicate
    # (FP) ranked after it, so AP becomes 100; before, IoU 0.6 > 0.55 matched only 2 of 10.
    assert out["corrected"]["FN"]["AP"] == pytest.approx(100.0, abs=1e-9)


def test_ties_go_to_the_first_ground_truth_in_file_order():
    h, w = 6, 8
    x = box(h, w, slice(0, 3), slice(0, 4))
    y = box(h, w, slice(3, 6), slice(0, 4))
    d = box(h, w, slice(2, 4), slice(0, 4))       # 4 px on each: equal IoU 4/(8+12-4)
    for order in ((0, 1), (1, 0)):
        gts = [x, y]
        chunk = Chunk(sizes=[(h, w)], gt_rles=[[rle(gts[order[0]]), rle(gts[order[1]])]],
                      gt_crowd=[[False, False]], gt_cat=[[0, 0]], dets=[[rle(d)]],
                      det_cat=[[0]], pairs=[[(1, [0, 1])]], n_iou=2, n_det=1,
                      types=parse_error_types(["FN"]), mode="paper", iou_threshold=0.1)
        res = process_chunk(chunk)
        assert res.match.tolist() == [0]          # the first gt in file order, either way
        assert res.pixels["FN"] == 12 - 4


# ---------------------------------------------------------------------- authors' mode
def _authors_case():
    """10x10 image. File order: B (cat 2, rows 6-9 x cols 6-9), then A (id 0, cat 1, rows
    0-3 x cols 0-3), so A is the image's last ground truth.

    P (cat 1, score 0.9) = A + 3 background pixels: IoU 16/19, matched to A.
    U (cat 1, score 0.95) = rows 3-4 x cols 3-6, 8 px, 1 px on A: IoU 1/23 < 0.1, unmatched.

    Baseline, category 1: U (FP) ranks before P (TP for t <= 0.80): AP_t = 0.5 at 7 of 10
    thresholds -> 0.35; category 2 has no prediction -> 0. AP = 17.5.
    Paper: bFP turns P into A (IoU 1): AP_t = 0.5 at all 10 -> AP 25.0, dAP_bFP = +7.5;
    fFP and FN change nothing.
    Authors: U is also corrected against A (the last gt): FN makes U = U | A (23 px,
    IoU 16/23 = 0.696): U is a TP at t <= 0.65 (AP_t = 1) and P the duplicate; at
    t = 0.70..0.80 U stays FP (AP_t = 0.5): category 1 = (4 + 1.5) / 10, AP = 27.5, dAP_FN =
    +10. bFP makes U = U & G (1 px): still FP, dAP_bFP = +7.5 as in the paper.
    """
    n = 10
    a = box(n, n, slice(0, 4), slice(0, 4))
    b = box(n, n, slice(6, 10), slice(6, 10))
    p = a | box(n, n, slice(0, 3), slice(4, 5))
    u = box(n, n, slice(3, 5), slice(3, 7))
    gt = coco(n, n, [(7, 2, b), (0, 1, a)])
    return gt, [det(1, p, 0.9), det(1, u, 0.95)]


def test_paper_mode_hand_worked():
    gt, dt = _authors_case()
    out = analyze_errors(gt, dt, mode="paper")
    assert out["baseline"]["AP"] == pytest.approx(17.5, abs=1e-9)
    assert out["delta"]["bFP"]["AP"] == pytest.approx(7.5, abs=1e-9)
    assert out["delta"]["fFP"]["AP"] == 0.0 and out["delta"]["FN"]["AP"] == 0.0
    assert out["counts"]["error_pixels"] == {"fFP": 0, "bFP": 3, "FN": 0}
    assert "error_pixels_unmatched" not in out["counts"]


def test_authors_mode_hand_worked():
    gt, dt = _authors_case()
    out = analyze_errors(gt, dt, mode="authors")
    assert out["baseline"]["AP"] == pytest.approx(17.5, abs=1e-9)
    assert out["delta"]["bFP"]["AP"] == pytest.approx(7.5, abs=1e-9)
    assert out["delta"]["fFP"]["AP"] == 0.0
    assert out["delta"]["FN"]["AP"] == pytest.approx(10.0, abs=1e-9)
    c = out["counts"]
    assert (c["matched"], c["unmatched"], c["unmatched_corrected"]) == (1, 1, 1)
    assert c["error_pixels"] == {"fFP": 0, "bFP": 3, "FN": 0}
    # U: 8 px, 1 on G (= on A), |A| = 16.
    assert c["error_pixels_unmatched"] == {"fFP": 0, "bFP": 7, "FN": 15}
    assert out["settings"]["mode"] == "authors"


def test_authors_mode_leaves_images_without_ground_truth_alone():
    gt = coco(H, W, [], n_cats=1)
    out = analyze_errors(gt, [det(1, G1, 0.9)], mode="authors")
    assert out["counts"]["unmatched_corrected"] == 0
    assert all(math.isnan(v) for v in out["baseline"].values())


# --------------------------------------------------------------------------- bad input
def test_annotation_id_zero_is_renumbered():
    """pycocotools uses ids as truthy; a gt with id 0 must still count as matched."""
    gt, dt = _authors_case()                       # A has id 0
    assert evaluate_segm(gt, dt).stats["AP"] == pytest.approx(17.5, abs=1e-9)
    shifted = json.loads(json.dumps(gt))
    for a in shifted["annotations"]:
        a["id"] += 100
    assert same(evaluate_segm(shifted, dt).stats, evaluate_segm(gt, dt).stats)


def test_malformed_json(tmp_path):
    p = tmp_path / "gt.json"
    p.write_text("{not json")
    with pytest.raises(CocoFormatError, match="gt.json: ground truth file is not valid JSON"):
        load_ground_truth(p)
    with pytest.raises(CocoFormatError, match="not found"):
        load_ground_truth(tmp_path / "missing.json")


def test_unknown_image_and_category_ids():
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    good = det(1, G1, 0.9)
    bad_img = dict(det(1, G2, 0.8), image_id=99)
    bad_cat = dict(det(5, G2, 0.7))
    with pytest.raises(CocoFormatError, match=r"entry 1: image_id 99 is not in the ground truth"):
        evaluate_segm(gt, [good, bad_img, bad_cat])
    with pytest.raises(CocoFormatError, match=r"entry 1: category_id 5 is not"):
        evaluate_segm(gt, [good, bad_cat])
    res = load_results([good, bad_img, bad_cat], load_ground_truth(gt), on_unknown="skip")
    assert (len(res), res.n_skipped_unknown, res.n_entries) == (1, 2, 3)
    out = analyze_errors(gt, [good, bad_img, bad_cat], on_unknown="skip")
    assert out["counts"]["skipped_unknown_ids"] == 2
    assert same(out["baseline"], evaluate_segm(gt, [good]).stats)


def test_empty_predictions():
    """No predictions: every defined stat is 0, undefined ones nan, all deltas 0."""
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    stats = evaluate_segm(gt, []).stats
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0 and math.isnan(stats["APl"])
    out = analyze_errors(gt, [])
    assert out["baseline"]["AP"] == 0.0
    assert out["delta"]["FN"]["AP"] == 0.0 and out["counts"]["predictions"] == 0


def test_no_annotations_and_no_predictions():
    """Nothing to evaluate: every stat undefined (nan), in both evaluators."""
    for gt in (coco(H, W, [], n_cats=1), {"images": [], "annotations": [], "categories": []}):
        assert all(math.isnan(v) for v in evaluate_segm(gt, []).stats.values())
        out = analyze_errors(gt, [])
        assert all(math.isnan(v) for v in out["baseline"].values())
        assert all(math.isnan(v) for v in out["delta"]["FN"].values())


def test_mask_size_differs_from_image():
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    wrong = det(1, np.ones((H, W + 1), bool), 0.9)
    with pytest.raises(CocoFormatError,
                       match=r"entry 1 \(image_id=1\): mask size \[20, 21\] differs"):
        analyze_errors(gt, [det(1, G1, 0.9), wrong])
    bad_gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    bad_gt["annotations"][0]["segmentation"] = rle(np.ones((H + 1, W), bool))
    with pytest.raises(CocoFormatError, match=r"annotations\[0\] \(id=1\): mask size"):
        load_ground_truth(bad_gt)


@pytest.mark.parametrize("entry, message", [
    ({"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 5]], "score": 0.5},
     "polygon 0 has 4 coordinates"),
    ({"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 5, 0, 5]]},
     "missing key 'score'"),
    ({"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 5, 0, 5]],
      "score": float("nan")}, "'score' must be a finite number"),
    ({"image_id": "1", "category_id": 1, "segmentation": [[0, 0, 5, 5, 0, 5]], "score": 1},
     "must be integers"),
    ({"image_id": 1, "category_id": 1, "segmentation": {"size": [20, 20], "counts": "a b"},
      "score": 1}, "outside the RLE alphabet"),
    ({"image_id": 1, "category_id": 1, "segmentation": {"size": [20, 20], "counts": [5, 5]},
      "score": 1}, "sum to 10, not height\\*width = 400"),
    ({"image_id": 1, "category_id": 1, "segmentation": "blob", "score": 1},
     "'segmentation' must be a polygon list or an RLE dict"),
])
def test_bad_result_entries(entry, message):
    gt = load_ground_truth(coco(H, W, [(1, 1, G1)], n_cats=1))
    with pytest.raises(CocoFormatError, match=r"<results>: entry 0.*" + message):
        load_results([entry], gt)


def test_ground_truth_given_as_results():
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    with pytest.raises(CocoFormatError, match="is this a ground-truth file"):
        analyze_errors(gt, gt)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("images"), "ground truth has no 'images' list"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0])), "duplicate annotation id"),
    (lambda d: d["annotations"][0].update(image_id=5), "image_id 5 is not in 'images'"),
    (lambda d: d["annotations"][0].update(category_id=9), "category_id 9 is not"),
    (lambda d: d["annotations"][0].update(iscrowd=2), "'iscrowd' must be 0 or 1"),
    (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image id 1"),
    (lambda d: d["annotations"][0].update(segmentation=[]), "empty polygon list"),
])
def test_bad_ground_truth(edit, message):
    d = coco(H, W, [(1, 1, G1)], n_cats=1)
    edit(d)
    with pytest.raises(CocoFormatError, match=message):
        load_ground_truth(d)


def test_missing_area_and_iscrowd_are_filled():
    d = coco(H, W, [(1, 1, G1)], n_cats=1)
    del d["annotations"][0]["area"], d["annotations"][0]["iscrowd"]
    g = load_ground_truth(d)
    assert g.n_area_filled == 1 and g.ann_areas[0] == 100.0 and not g.ann_iscrowd[0]
    assert evaluate_segm(d, [det(1, G1, 0.9)]).stats["AP"] == pytest.approx(100.0)


def test_polygon_and_rle_predictions_agree_and_bbox_is_ignored():
    gt = coco(H, W, [(1, 1, G1), (2, 2, G2)])
    # Polygon of the square [0, 12] x [0, 8] vs its RLE.
    poly = [[0.0, 0.0, 12.0, 0.0, 12.0, 8.0, 0.0, 8.0]]
    as_rle = mask_utils.merge(mask_utils.frPyObjects(poly, H, W))
    as_rle = {"size": [H, W], "counts": as_rle["counts"].decode()}
    a = [{"image_id": 1, "category_id": 1, "segmentation": poly, "score": 0.9}]
    b = [{"image_id": 1, "category_id": 1, "segmentation": as_rle, "score": 0.9,
          "bbox": [0, 0, 5000, 5000], "area": 1e9}]
    ra, rb = analyze_errors(gt, a), analyze_errors(gt, b)
    assert same(ra["baseline"], rb["baseline"]) and same(ra["delta"], rb["delta"])
    assert ra["counts"]["error_pixels"] == rb["counts"]["error_pixels"]


def test_evaluate_segm_is_quiet_and_keyed(capsys):
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    stats = evaluate_segm(gt, [det(1, G1, 0.9)]).stats
    assert tuple(stats) == STAT_NAMES
    assert stats["AP"] == pytest.approx(100.0)
    assert capsys.readouterr().out == ""
    evaluate_segm(gt, [det(1, G1, 0.9)], verbose=True)
    assert "Average Precision" in capsys.readouterr().out


def test_bad_arguments():
    gt = coco(H, W, [(1, 1, G1)], n_cats=1)
    with pytest.raises(ValueError, match="mode must be one of"):
        analyze_errors(gt, [], mode="tide")
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        analyze_errors(gt, [], jobs=0)
