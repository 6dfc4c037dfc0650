"""The image bootstrap of COCO AP (analysis.bootstrap) against stock pycocotools.

The reference for a resample is the brute force the module exists to avoid: the resampled
ground truth and results built as a new COCO dataset (each drawn image copied under a new id)
and scored by stock ``COCOeval``.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.bootstrap import (MatchArrays, Resampler, accumulate, load_matches,
                                percentile_interval, resample_weights, save_matches, summarize)
from analysis.seg_errors.synthetic import make_synthetic_coco


def _data(seed=0, n_images=10, round_scores=None):
    gt, dt = make_synthetic_coco(n_images, seed=seed, n_categories=4, gts_per_image=5,
                                 dets_per_image=24, sizes=((160, 200), (200, 160)),
                                 radius=(3.0, 120.0))
    rng = np.random.default_rng(seed + 100)
    for d in dt:  # unique scores unless asked to round (ties)
        d["score"] = float(rng.random()) if round_scores is None else round(d["score"], round_scores)
    return gt, dt


def _with_boxes(gt, dt):
    from pycocotools import mask as mask_utils
    for d in dt:
        d["bbox"] = [float(v) for v in mask_utils.toBbox(d["segmentation"])]
    return gt, dt


def _stock(gt, dt, iou_type="segm"):
    gt, dt = copy.deepcopy(gt), copy.deepcopy(dt)
    if iou_type == "segm":
        for d in dt:
            d.pop("bbox", None)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dt), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _brute_force(gt, dt, weights, iou_type="segm"):
    """Stock COCOeval of the resample: image i copied weights[i] times (copies in a row, in
    sorted id order), renamed."""
    ids = sorted(img["id"] for img in gt["images"])
    by_id = {img["id"]: img for img in gt["images"]}
    images, anns, dets = [], [], []
    for i, w in zip(ids, weights):
        for _ in range(int(w)):
            new = len(images) + 1
            images.append({**by_id[i], "id": new})
            anns += [{**a, "id": len(anns) + 1 + j, "image_id": new}
                     for j, a in enumerate(a for a in gt["annotations"] if a["image_id"] == i)]
            dets += [{**d, "image_id": new} for d in dt if d["image_id"] == i]
    return _stock({**gt, "images": images, "annotations": anns}, dets, iou_type)


def _as100(stats):
    s = np.asarray(stats, np.float64)
    return np.where(s == -1, np.nan, s * 100)


@pytest.mark.parametrize("round_scores", [None, 1])
def test_identity_equals_cocoeval_exactly(round_scores):
    gt, dt = _data(round_scores=round_scores)
    ev = _stock(gt, dt)
    m = MatchArrays.from_cocoeval(ev)
    precision, recall = accumulate(m)
    assert np.array_equal(precision, ev.eval["precision"])
    assert np.array_equal(recall, ev.eval["recall"])
    assert np.array_equal(summarize(m, precision, recall), np.asarray(ev.stats))
    stats, per_class = Resampler(m).stats(np.ones((1, m.n_images), np.int64))
    np.testing.assert_allclose(stats[0], _as100(ev.stats), rtol=0, atol=1e-12)
    p = ev.eval["precision"][:, :, :, 0, -1]
    expect = [p[:, :, k][p[:, :, k] > -1].mean() * 100 if (p[:, :, k] > -1).any() else np.nan
              for k in range(p.shape[2])]
    np.testing.assert_allclose(per_class[0], expect, rtol=0, atol=1e-12)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_resamples_equal_brute_force(iou_type):
    gt, dt = _with_boxes(*_data(seed=3))
    m = MatchArrays.from_cocoeval(_stock(gt, dt, iou_type))
    weights = resample_weights(m.n_images, 6, seed=1)
    weights[0] = 0
    weights[0, 2] = 3  # one image three times, nothing else: a corner case
    stats, per_class = Resampler(m).stats(weights)
    for b, w in enumerate(weights):
        ev = _brute_force(gt, dt, w, iou_type)
        np.testing.assert_allclose(stats[b], _as100(ev.stats), rtol=0, atol=1e-12,
                                   err_msg=f"resample {b}")
        exact = summarize(m, *accumulate(m, w))
        np.testing.assert_allclose(stats[b], _as100(exact), rtol=0, atol=1e-12)
        p = ev.eval["precision"][:, :, :, 0, -1]
        for k in range(p.shape[2]):
            v = p[:, :, k]
            want = v[v > -1].mean() * 100 if (v > -1).any() else np.nan
            np.testing.assert_allclose(per_class[b, k], want, rtol=0, atol=1e-12)


def test_interval_brute_force_small():
    """The 95% interval from the fast path equals the one from brute-force resampling."""
    gt, dt = _data(seed=5, n_images=6)
    m = MatchArrays.from_cocoeval(_stock(gt, dt))
    weights = resample_weights(m.n_images, 20, seed=0)
    fast, _ = Resampler(m).stats(weights)
    brute = np.stack([_as100(_brute_force(gt, dt, w).stats) for w in weights])
    np.testing.assert_allclose(percentile_interval(fast), percentile_interval(brute),
                               rtol=0, atol=1e-10)


def test_weights_are_seeded_and_count_draws():
    w = resample_weights(7, 50, seed=3)
    assert w.shape == (50, 7) and (w.sum(axis=1) == 7).all()
    assert np.array_equal(w, resample_weights(7, 50, seed=3))
    assert not np.array_equal(w, resample_weights(7, 50, seed=4))
    with pytest.raises(ValueError):
        resample_weights(0, 5)


def test_save_load_round_trip(tmp_path):
    gt, dt = _data(seed=1, n_images=4)
    m = MatchArrays.from_cocoeval(_stock(gt, dt))
    save_matches(tmp_path / "m.npz", {"segm": m})
    back = load_matches(tmp_path / "m.npz")["segm"]
    assert back.iou_type == "segm" and back.area_labels == m.area_labels
    assert np.array_equal(back.dtm, m.dtm) and np.array_equal(back.det_score, m.det_score)
    assert np.array_equal(summarize(back, *accumulate(back)), summarize(m, *accumulate(m)))


def test_not_evaluated_is_refused():
    with pytest.raises(ValueError, match="evaluate"):
        MatchArrays.from_cocoeval(COCOeval(iouType="segm"))


def test_percentile_interval_nan_columns():
    s = np.array([[1.0, np.nan], [3.0, np.nan], [2.0, np.nan]])
    ci = percentile_interval(s)
    assert np.isnan(ci[1]).all() and 1.0 <= ci[0, 0] < ci[0, 1] <= 3.0


def test_error_analysis_matching_feeds_the_bootstrap(tmp_path):
    """MatchArrays from the error analysis' own matching: identity = its baseline and corrected
    stats exactly; a resample of the baseline = stock COCOeval of that resample."""
    from analysis.seg_errors import analyze_errors

    gt, dt = _data(seed=2)
    matches = {}
    result = analyze_errors(copy.deepcopy(gt), copy.deepcopy(dt), matches=matches)
    assert set(matches) == {"baseline", "fFP", "bFP", "FN"}
    for name, m in matches.items():
        want = result["baseline"] if name == "baseline" else result["corrected"][name]
        got = _as100(summarize(m, *accumulate(m)))
        np.testing.assert_array_equal(got, [want[k] for k in want])
    m = matches["baseline"]
    w = resample_weights(m.n_images, 2, seed=7)
    stats, _ = Resampler(m).stats(w)
    for b in range(2):
        np.testing.assert_allclose(stats[b], _as100(_brute_force(gt, dt, w[b]).stats),
                                   rtol=0, atol=1e-12)
    assert m.category_names == tuple(c["name"] for c in gt["categories"])


def test_intervals_command(tmp_path, capsys):
    import json

    from analysis.intervals import main

    gt, dt = _with_boxes(*_data(seed=4, n_images=8))
    dt0 = copy.deepcopy(dt)   # the baseline: the same masks with shuffled scores
    for d, score in zip(dt0, np.random.default_rng(0).permutation([d["score"] for d in dt])):
        d["score"] = float(score)
    for name, obj in (("gt", gt), ("dt", dt), ("dt0", dt0)):
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    assert main([str(tmp_path / "gt.json"), str(tmp_path / "dt.json"), "--baseline",
                 str(tmp_path / "dt0.json"), "--resamples", "50",
                 "--json", str(tmp_path / "out.json")]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    ap = out["segm"]["AP"]
    assert ap["value"] == pytest.approx(_as100(_stock(gt, dt).stats)[0])
    assert ap["ci95"][0] <= ap["ci95"][1] and set(out["gain"]) == {"segm", "bbox"}
    assert "gain over the baseline, segm (paired)" in capsys.readouterr().out
    assert main([str(tmp_path / "gt.json"), str(tmp_path / "missing.json")]) == 1


def test_basic_interval_reflects_the_percentile_one_about_the_estimate():
    from analysis.bootstrap import interval
    s = np.array([[1.0], [2.0], [3.0], [6.0]])
    lo, hi = percentile_interval(s)[0]
    np.testing.assert_allclose(interval(s, [2.0], "basic")[0], [4.0 - hi, 4.0 - lo])
    with pytest.raises(ValueError):
        interval(s, None, "basic")
    with pytest.raises(ValueError):
        interval(s, [2.0], "bca")


def test_no_detections_and_no_matches():
    """An empty result set (every defined AP 0) and one with detections that match nothing."""
    gt, dt = _data(seed=8, n_images=5)
    for results in ([], [{**d, "category_id": 1 + d["category_id"] % 4,
                          "segmentation": dt[-1]["segmentation"], "image_id": dt[-1]["image_id"]}
                         for d in dt[:3]]):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
            from analysis.coco_eval import results_to_coco
            ev = COCOeval(coco, results_to_coco(coco, copy.deepcopy(results)), "segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        m = MatchArrays.from_cocoeval(ev)
        assert np.array_equal(summarize(m, *accumulate(m)), np.asarray(ev.stats))
        w = resample_weights(m.n_images, 4, seed=0)
        stats, _ = Resampler(m).stats(w)
        if not results:
            assert np.nanmax(np.abs(stats)) == 0.0
        for b in range(len(w)):
            np.testing.assert_allclose(stats[b], _as100(summarize(m, *accumulate(m, w[b]))),
                                       rtol=0, atol=1e-12)
