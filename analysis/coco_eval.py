"""COCO segm (and box) evaluation with stock pycocotools ``COCOeval``, on validated inputs.

Inputs are loaded and checked by :mod:`analysis.coco_format`; this module turns them into
pycocotools objects and evaluates them. Conventions (all documented in ``analysis/README.md``):

- Annotation ids are renumbered 1..N internally: pycocotools treats ids as truthy, so a ground
  truth with id 0 would count as unmatched.
- Result ``bbox`` fields are dropped, so a prediction's area (which decides small/medium/large)
  is its mask area. pycocotools' ``loadRes`` would otherwise use the box area; detectron2's and
  mmdetection's COCO evaluators drop the box the same way.
- Stats are the 12 pycocotools segm stats x100. pycocotools reports -1 for a stat that is
  undefined (no ground truth in that area range, or none at all); that becomes ``nan`` here
  (``null`` in JSON). An empty results list is valid: every defined stat is then 0.0, which is
  what COCO evaluation of "no detections" means.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis.coco_format import (CocoFormatError, GroundTruth, Results, _is_real, _load_json,
                                  load_ground_truth, load_results)

__all__ = [
    "STAT_NAMES",
    "SegmEvaluation",
    "evaluate_segm",
    "evaluate_bbox",
    "stats_to_dict",
    "to_coco",
    "results_to_coco",
    "quiet",
]

#: Names of the 12 pycocotools segm stats, in ``COCOeval.stats`` order.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@contextlib.contextmanager
def quiet(verbose: bool = False):
    """Silence pycocotools' progress chatter on stdout unless ``verbose``."""
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def to_coco(gt: GroundTruth, verbose: bool = False) -> COCO:
    """A pycocotools ``COCO`` for ``gt``, annotation ids renumbered 1..N in file order."""
    dataset = {
        "images": [{"id": int(i), "height": gt.image_sizes[int(i)][0],
                    "width": gt.image_sizes[int(i)][1]} for i in gt.image_ids],
        "categories": [dict(c) for c in gt.categories],
        "annotations": [
            {"id": k + 1, "image_id": int(gt.ann_image_ids[k]),
             "category_id": int(gt.ann_category_ids[k]), "segmentation": dict(gt.ann_rles[k]),
             "area": float(gt.ann_areas[k]), "iscrowd": int(gt.ann_iscrowd[k])}
            for k in range(gt.num_annotations)],
    }
    coco = COCO()
    coco.dataset = dataset
    with quiet(verbose):
        coco.createIndex()
    return coco


def results_to_coco(coco_gt: COCO, results: Results | Sequence[dict],
                    verbose: bool = False) -> COCO:
    """pycocotools results ``COCO`` without bboxes (so areas are mask areas); empty allowed.

    ``results`` is a :class:`Results` or a list of already valid result dicts with RLE
    segmentations (their ``bbox`` keys are dropped; the dicts are copied, not mutated).
    """
    if isinstance(results, Results):
        anns = [{"image_id": int(results.image_ids[k]),
                 "category_id": int(results.category_ids[k]),
                 "segmentation": dict(results.rles[k]), "score": float(results.scores[k])}
                for k in range(len(results))]
    else:
        anns = [{k: v for k, v in d.items() if k not in ("bbox", "area", "id")}
                for d in results]
    if anns:
        with quiet(verbose):
            return coco_gt.loadRes(anns)
    # loadRes indexes anns[0]; an empty result set is still a valid (all-miss) evaluation.
    res = COCO()
    res.dataset = {"images": list(coco_gt.dataset["images"]),
                   "categories": list(coco_gt.dataset["categories"]), "annotations": []}
    with quiet(verbose):
        res.createIndex()
    return res


def stats_to_dict(stats: Sequence[float]) -> dict[str, float]:
    """pycocotools ``COCOeval.stats`` (12 values in [0, 1], -1 = undefined) -> x100 dict.

    Returns ``{name: value}`` keyed by :data:`STAT_NAMES`; undefined stats (-1) become ``nan``.
    """
    if len(stats) != len(STAT_NAMES):
        raise ValueError(f"expected {len(STAT_NAMES)} stats, got {len(stats)}")
    return {n: (math.nan if float(v) == -1.0 else float(v) * 100.0)
            for n, v in zip(STAT_NAMES, stats)}


def _as_ground_truth(source: Any) -> GroundTruth:
    return source if isinstance(source, GroundTruth) else load_ground_truth(source)


def _as_results(source: Any, gt: GroundTruth, on_unknown: str) -> Results:
    return source if isinstance(source, Results) else load_results(source, gt, on_unknown=on_unknown)


def _segm_cocoeval(gt: GroundTruth, res: Results, verbose: bool) -> COCOeval:
    """Stock segm ``COCOeval`` of ``res`` against ``gt``, evaluated and accumulated."""
    coco_gt = to_coco(gt, verbose)
    ev = COCOeval(coco_gt, results_to_coco(coco_gt, res, verbose), "segm")
    with quiet(verbose):
        ev.evaluate()
        ev.accumulate()
    return ev


def _summary(ev: COCOeval, verbose: bool) -> dict[str, float]:
    with quiet(verbose):
        ev.summarize()
    return stats_to_dict(ev.stats)


def _ap_by_category_id(ev: COCOeval) -> dict[int, float]:
    area_all = list(ev.params.areaRngLbl).index("all")
    max_dets = list(ev.params.maxDets).index(100)
    # precision: [IoU thresholds, recall points, categories, areas, maxDets]; -1 = undefined
    # (the category has no ground truth), as pycocotools' summarize treats it.
    precision = ev.eval["precision"][:, :, :, area_all, max_dets]
    by_id = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k]
        p = p[p > -1]
        by_id[int(cat_id)] = float(p.mean()) * 100.0 if p.size else math.nan
    return by_id


@dataclass(frozen=True)
class SegmEvaluation:
    """What one stock segm ``COCOeval`` run gives: the 12 stats and the AP of each category.

    Attributes:
        stats: ``{stat: value}`` for every name in :data:`STAT_NAMES`, each x100 (e.g. AP
            37.2); ``nan`` where pycocotools reports -1 (undefined: no ground truth in that
            area range). Empty results give 0.0 for every defined stat.
        ap_by_category_id: ``{category id: AP x100}``: for each category, the mean of
            ``COCOeval.eval["precision"]`` over the 10 IoU thresholds and the 101 recall
            points, at area "all" and maxDets 100, i.e. the per-class terms whose mean is the
            overall AP. ``nan`` for a category without (non-crowd) ground truth, 0.0 for one
            with ground truth but no detections.
        categories: the ground truth's ``{id, name}`` dicts, in file order.
        source: the ground truth's file name, for messages.
    """

    stats: dict
    ap_by_category_id: dict
    categories: tuple
    source: str

    @property
    def per_class(self) -> dict[str, float]:
        """``{category name: AP x100}`` in the ground truth's category order (paper Table 5's
        columns).

        Raises:
            CocoFormatError: two categories share a name (per-class AP is keyed by name).
        """
        names = [c["name"] for c in self.categories]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise CocoFormatError(f"{self.source}: category name {dup!r} is used by several ids; "
                                  "per-class AP is keyed by name")
        return {c["name"]: self.ap_by_category_id[c["id"]] for c in self.categories}


def evaluate_segm(gt_json_path_or_dict: Any, dt_json_path_or_list: Any, *,
                  verbose: bool = False, on_unknown: str = "error",
                  evals: dict | None = None) -> SegmEvaluation:
    """COCO segm evaluation (stock pycocotools ``COCOeval``): stats and per-class AP, x100.

    The ground truth and results are loaded, matched and accumulated once; both the 12 stats
    (``.stats``) and the per-class AP (``.per_class``) come from that one run.

    Args:
        gt_json_path_or_dict: COCO ground truth (path, parsed dict, or :class:`GroundTruth`).
        dt_json_path_or_list: COCO results (path, parsed list, or :class:`Results`).
        verbose: let pycocotools print its progress and summary table.
        on_unknown: see :func:`analysis.coco_format.load_results`.
        evals: if given, receives the evaluated ``COCOeval`` as ``evals["segm"]`` (its
            per-image matching feeds the bootstrap, :mod:`analysis.bootstrap`).

    Returns:
        :class:`SegmEvaluation`.

    Raises:
        CocoFormatError: bad input (see :func:`analysis.coco_format.load_ground_truth`,
            :func:`analysis.coco_format.load_results`).
    """
    gt = _as_ground_truth(gt_json_path_or_dict)
    res = _as_results(dt_json_path_or_list, gt, on_unknown)
    ev = _segm_cocoeval(gt, res, verbose)
    if evals is not None:
        evals["segm"] = ev
    return SegmEvaluation(stats=_summary(ev, verbose), ap_by_category_id=_ap_by_category_id(ev),
                          categories=tuple(dict(c) for c in gt.categories), source=gt.source)


def evaluate_bbox(gt_json_path_or_dict: Any, dt_json_path_or_list: Any, *,
                  verbose: bool = False, on_unknown: str = "error",
                  evals: dict | None = None) -> dict[str, float]:
    """COCO box evaluation (stock pycocotools ``COCOeval`` "bbox") of the results' ``bbox``
    fields, 12 stats x100 like :attr:`SegmEvaluation.stats` (paper Tables 1-4 report box AP).
    Ground-truth boxes are the tight boxes of the ground-truth masks.

    Args:
        gt_json_path_or_dict: COCO ground truth (path, parsed dict, or :class:`GroundTruth`).
        dt_json_path_or_list: COCO results, a path or the parsed list (each with ``bbox``).
        evals: if given, receives the evaluated ``COCOeval`` as ``evals["bbox"]``.

    Raises:
        CocoFormatError: bad input (as :func:`evaluate_segm`), or a result without a
            ``bbox`` of 4 finite numbers.
    """
    gt = _as_ground_truth(gt_json_path_or_dict)
    data, name = _load_json(dt_json_path_or_list, "results")
    res = load_results(data, gt, on_unknown=on_unknown)  # validates ids, scores, masks
    anns = []
    for k in res.entry_index.tolist():
        box = data[k].get("bbox")
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(map(_is_real, box))
                and all(math.isfinite(v) for v in box)):
            raise CocoFormatError(f"{name}: entry {k} needs a bbox [x, y, w, h] for box evaluation")
        anns.append({"image_id": data[k]["image_id"], "category_id": data[k]["category_id"],
                     "bbox": [float(v) for v in box], "score": float(data[k]["score"])})
    coco_gt = to_coco(gt, verbose)
    for ann in coco_gt.dataset["annotations"]:
        # The tight box of the gt mask: COCO's file boxes are its polygons' extents, the same
        # up to rounding; GroundTruth keeps masks only, so every source is treated alike.
        ann["bbox"] = [float(v) for v in mask_utils.toBbox(ann["segmentation"])]
    if anns:
        with quiet(verbose):
            coco_dt = coco_gt.loadRes(anns)
    else:
        coco_dt = results_to_coco(coco_gt, [], verbose)
    ev = COCOeval(coco_gt, coco_dt, "bbox")
    with quiet(verbose):
        ev.evaluate()
        ev.accumulate()
    if evals is not None:
        evals["bbox"] = ev
    return _summary(ev, verbose)
