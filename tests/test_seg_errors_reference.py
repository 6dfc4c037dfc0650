"""The fast path equals stock pycocotools on independently corrected results, exactly.

A dense reference (numpy boolean masks, no RLE tricks, no shared code with the package besides
the stock evaluation) matches and corrects every prediction as paper Sec. 3 / the authors'
script describe, writes the corrected results, and runs stock ``COCOeval`` on them. The package
must give the same 12 stats (bit for bit) and the same Eq. 1 pixel counts.
"""

from __future__ import annotations

import io
import contextlib
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_eval import evaluate_segm
from analysis.coco_format import load_ground_truth, load_results
from analysis.seg_errors import EvalLayout, analyze_errors
from analysis.seg_errors.synthetic import make_synthetic_coco

TYPES = ("fFP", "bFP", "FN", "fFP+bFP", "fFP+bFP+FN", "bFP+FN")


def small_data(seed: int, n_images: int = 10, **kw):
    args = dict(n_categories=3, gts_per_image=5, dets_per_image=40, sizes=((40, 56), (48, 40)),
                radius=(2.5, 16.0), crowd_fraction=0.08)
    args.update(kw)
    return make_synthetic_coco(n_images, seed=seed, **args)


def dense(seg, h, w) -> np.ndarray:
    if isinstance(seg, list):
        r = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        r = mask_utils.frPyObjects(seg, h, w)
    else:
        r = seg
    return mask_utils.decode(r).astype(bool)


def reference(gt: dict, dt: list, types, mode="paper", thr=0.1):
    """Dense re-implementation: corrected result lists per type, and Eq. 1 pixel counts."""
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    gts = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd", 0):
            gts.setdefault(a["image_id"], []).append(
                (a["category_id"], dense(a["segmentation"], *sizes[a["image_id"]])))
    corrected = {t: [] for t in types}
    pixels = {"fFP": 0, "bFP": 0, "FN": 0}
    n_matched = 0
    for d in dt:
        h, w = sizes[d["image_id"]]
        m = dense(d["segmentation"], h, w)
        img_gts = gts.get(d["image_id"], [])
        union = np.zeros((h, w), bool)
        for _, g in img_gts:
            union |= g
        best, best_iou = None, -1.0
        for cat, g in img_gts:
            if cat != d["category_id"]:
                continue
            inter, uni = (m & g).sum(), (m | g).sum()
            iou = inter / uni if inter else 0.0
            if iou > best_iou:                      # strict: first gt wins ties
                best, best_iou = g, iou
        matched = best is not None and best_iou >= thr
        star = best if matched else (img_gts[-1][1] if mode == "authors" and img_gts else None)
        if matched:
            n_matched += 1
            pixels["fFP"] += int((m & union & ~best).sum())
            pixels["bFP"] += int((m & ~union).sum())
            pixels["FN"] += int((best & ~m).sum())
        for t in types:
            fixed = m.copy()
            if star is not None:
                parts = t.split("+")
                if "fFP" in parts:
                    fixed &= ~(union & ~star)
                if "bFP" in parts:
                    fixed &= union
                if "FN" in parts:
                    fixed |= star
            r = mask_utils.encode(np.asfortranarray(fixed.astype(np.uint8)))
            corrected[t].append(dict(d, segmentation={"size": [h, w],
                                                      "counts": r["counts"].decode()}))
    return corrected, pixels, n_matched


def stock_stats(gt: dict, dt: list) -> np.ndarray:
    """Plain pycocotools on the files as given (ids renumbered from 1 are already fine)."""
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes([{k: v for k, v in d.items() if k != "bbox"} for d in dt])
        ev = COCOeval(cg, cd, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev, np.asarray(ev.stats)


def as_array(stats: dict) -> np.ndarray:
    return np.array([stats[k] for k in stats])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_evaluation_equals_cocoeval(seed):
    """EvalLayout + RLE IoUs reproduce COCOeval's precision/recall arrays exactly."""
    gt, dt = small_data(seed)
    ev, stats = stock_stats(gt, dt)
    g = load_ground_truth(gt)
    r = load_results(dt, g)
    layout = EvalLayout(g, r)
    ious = np.empty(layout.n_iou)
    areas = np.empty(layout.n_evaluated)
    for p in range(len(layout.pair_image)):
        ds, dc = layout.pair_det_start[p], layout.pair_det_count[p]
        gs, gc = layout.pair_gt_start[p], layout.pair_gt_count[p]
        dets = [r.rles[j] for j in layout.det_index[ds:ds + dc]]
        gi = layout.gt_order[gs:gs + gc]
        for k, d in enumerate(dets):
            areas[ds + k] = mask_utils.area(d)
        if dc and gc:
            ious[layout.pair_iou_start[p]:layout.pair_iou_start[p + 1]] = mask_utils.iou(
                dets, [g.ann_rles[i] for i in gi], [int(g.ann_iscrowd[i]) for i in gi]).ravel()
    precision, recall = layout.accumulate(*layout.match(ious, areas))
    np.testing.assert_array_equal(precision, ev.eval["precision"])
    np.testing.assert_array_equal(recall, ev.eval["recall"])
    np.testing.assert_array_equal(layout.summarize(precision, recall), stats)


def test_max_dets_cut_and_score_ties():
    """More than 100 predictions per (image, category), many equal scores."""
    gt, dt = small_data(5, n_categories=1, dets_per_image=130, n_images=3)
    for i, d in enumerate(dt):
        d["score"] = round(d["score"], 1)
    out = analyze_errors(gt, dt, types=["FN"])
    _, stats = stock_stats(gt, dt)
    np.testing.assert_array_equal(as_array(out["baseline"]), np.where(stats == -1, np.nan,
                                                                       stats * 100))
    assert out["counts"]["beyond_max_dets"] == 3 * 30
    ref, _, _ = reference(gt, dt, ["FN"])
    np.testing.assert_array_equal(as_array(out["corrected"]["FN"]),
                                  as_array(evaluate_segm(gt, ref["FN"]).stats))


@pytest.mark.parametrize("exact", [False, True], ids=["analytic", "rle"])
@pytest.mark.parametrize("mode", ["paper", "authors"])
@pytest.mark.parametrize("seed", [0, 3])
def test_corrections_equal_stock_evaluation_of_reference(seed, mode, exact):
    """Both correction paths (pixel-count algebra with RLE fallback, and RLE masks for
    everything) give exactly stock COCOeval's stats on densely corrected results."""
    gt, dt = small_data(seed)
    out = analyze_errors(gt, dt, types=TYPES, mode=mode, exact=exact)
    n_fixed = out["counts"]["matched"] + out["counts"].get("unmatched_corrected", 0)
    rle_path = out["counts"]["corrected_with_rle_masks"]
    # the data must exercise both paths (overlapping ground truths force the RLE path)
    assert rle_path == n_fixed if exact else 0 < rle_path < n_fixed
    ref, pixels, n_matched = reference(gt, dt, TYPES, mode=mode)
    base = as_array(evaluate_segm(gt, dt).stats)
    np.testing.assert_array_equal(as_array(out["baseline"]), base)
    for t in TYPES:
        want = as_array(evaluate_segm(gt, ref[t]).stats)
        np.testing.assert_array_equal(as_array(out["corrected"][t]), want, err_msg=t)
        np.testing.assert_array_equal(as_array(out["delta"][t]), want - base, err_msg=t)
    assert out["counts"]["matched"] == n_matched
    assert out["counts"]["error_pixels"] == pixels
    # The modes must differ somewhere on this data, or the authors' test proves nothing.
    if mode == "authors":
        paper = analyze_errors(gt, dt, types=TYPES, mode="paper")
        assert any(out["delta"][t]["AP"] != paper["delta"][t]["AP"] for t in TYPES)


def test_match_threshold_option_equals_reference():
    gt, dt = small_data(4)
    out = analyze_errors(gt, dt, types=["FN"], iou_threshold=0.5)
    ref, pixels, n_matched = reference(gt, dt, ["FN"], thr=0.5)
    np.testing.assert_array_equal(as_array(out["corrected"]["FN"]),
                                  as_array(evaluate_segm(gt, ref["FN"]).stats))
    assert out["counts"]["matched"] == n_matched and out["counts"]["error_pixels"] == pixels


@pytest.mark.slow
def test_jobs_give_identical_results():
    gt, dt = small_data(6, n_images=24)
    one = analyze_errors(gt, dt, jobs=1, mode="authors")
    two = analyze_errors(gt, dt, jobs=2, mode="authors")
    for key in ("baseline", "corrected", "delta"):
        for name, stats in one[key].items() if key != "baseline" else [("b", one[key])]:
            other = two[key][name] if key != "baseline" else two[key]
            assert all(stats[k] == other[k] or (math.isnan(stats[k]) and math.isnan(other[k]))
                       for k in stats)
    one_c = {k: v for k, v in one["counts"].items()}
    assert one_c == two["counts"]


@pytest.mark.slow
def test_jobs_without_fork_pickle_the_chunks(monkeypatch):
    """Where 'fork' is unavailable (macOS, Windows) chunks are pickled to the workers."""
    from analysis.seg_errors import analyze as analyze_module
    monkeypatch.setattr(analyze_module, "_fork_context", lambda: None)
    gt, dt = small_data(6, n_images=12)
    one = analyze_errors(gt, dt, jobs=1)
    two = analyze_errors(gt, dt, jobs=2)
    for t in one["delta"]:
        np.testing.assert_array_equal(as_array(one["corrected"][t]), as_array(two["corrected"][t]))


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_pixel_count_path_equals_rle_path_on_crowded_scenes(seed):
    """Many overlapping instances and crowd regions, so that many predictions fall back to
    RLE masks and many do not; the two paths must agree on every stat and count."""
    gt, dt = small_data(seed, n_images=8, gts_per_image=9, crowd_fraction=0.15,
                        dets_per_image=50)
    types = ["fFP", "bFP", "FN", "fFP+bFP", "bFP+FN", "fFP+FN", "fFP+bFP+FN"]
    for mode in ("paper", "authors"):
        fast = analyze_errors(gt, dt, types=types, mode=mode)
        slow = analyze_errors(gt, dt, types=types, mode=mode, exact=True)
        for t in types:
            np.testing.assert_array_equal(as_array(fast["corrected"][t]),
                                          as_array(slow["corrected"][t]), err_msg=f"{mode} {t}")
        drop = ("corrected_with_rle_masks",)
        assert ({k: v for k, v in fast["counts"].items() if k not in drop}
                == {k: v for k, v in slow["counts"].items() if k not in drop})
        assert 0 < fast["counts"]["corrected_with_rle_masks"] \
            < slow["counts"]["corrected_with_rle_masks"]
