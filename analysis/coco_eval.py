"""COCO-format inputs, validated, and the shared COCO segm evaluation.

Ground truth is a COCO instances JSON (``images``, ``annotations``, ``categories``); results are
a JSON list of ``{image_id, category_id, segmentation, score}`` entries (``bbox`` / ``area``
optional and ignored). Segmentations may be polygons, uncompressed RLE or compressed RLE.

Everything is checked before pycocotools sees it, so bad input raises
:class:`CocoFormatError` naming the file, the entry and the key, instead of a traceback from
inside pycocotools or a silently wrong number. Conventions (all documented in
``analysis/README.md``):

- Annotation ids are renumbered 1..N internally: pycocotools treats ids as truthy, so a ground
  truth with id 0 would count as unmatched.
- Result ``bbox`` fields are dropped, so a prediction's area (which decides small/medium/large)
  is its mask area. pycocotools' ``loadRes`` would otherwise use the box area; detectron2's and
  mmdetection's COCO evaluators drop the box the same way.
- A ground truth without ``area`` gets its mask area (counted in ``n_area_filled``); a missing
  ``iscrowd`` means 0 (pycocotools would raise ``KeyError`` deep inside ``computeIoU``).
- Stats are the 12 pycocotools segm stats x100. pycocotools reports -1 for a stat that is
  undefined (no ground truth in that area range, or none at all); that becomes ``nan`` here
  (``null`` in JSON). An empty results list is valid: every defined stat is then 0.0, which is
  what COCO evaluation of "no detections" means.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import numbers
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = [
    "STAT_NAMES",
    "CocoFormatError",
    "GroundTruth",
    "Results",
    "load_ground_truth",
    "load_results",
    "evaluate_bbox",
    "evaluate_segm",
    "per_class_ap",
    "evaluate_segm_and_per_class",
    "stats_to_dict",
    "to_coco",
    "results_to_coco",
    "quiet",
    "rle_area",
]

#: Names of the 12 pycocotools segm stats, in ``COCOeval.stats`` order.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

# Compressed RLE strings use the characters chr(48) .. chr(111) only (pycocotools rleToString).
_COMPRESSED_RLE = re.compile(r"[0-o]*\Z")
# pycocotools 2.0.11 mask.area() overflows on lists of 256 or more RLEs (uint8 counter).
_AREA_BATCH = 255


class CocoFormatError(ValueError):
    """Bad COCO-format input. The message names the file, the entry and the key at fault."""


@contextlib.contextmanager
def quiet(verbose: bool = False):
    """Silence pycocotools' progress chatter on stdout unless ``verbose``."""
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def rle_area(rles: Sequence[dict]) -> np.ndarray:
    """Mask areas of compressed RLEs, shape ``(len(rles),)`` float64, in pixels."""
    out = np.empty(len(rles), dtype=np.float64)
    for lo in range(0, len(rles), _AREA_BATCH):
        chunk = list(rles[lo:lo + _AREA_BATCH])
        if chunk:
            out[lo:lo + len(chunk)] = mask_utils.area(chunk)
    return out


def _load_json(source: Any, what: str) -> tuple[Any, str]:
    """Return (parsed JSON, name for messages). ``source`` is a path or an already parsed object."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            with open(name, "rb") as f:
                return json.load(f), name
        except FileNotFoundError:
            raise CocoFormatError(f"{name}: {what} file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CocoFormatError(f"{name}: {what} file is not valid JSON ({e})") from None
    return source, f"<{what}>"


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _segmentation_to_rle(seg: Any, h: int, w: int, where: str) -> dict:
    """Validate one segmentation and return it as compressed RLE ``{'size': [h, w], 'counts'}``.

    Accepts polygons (list of rings ``[x1, y1, x2, y2, ...]``, each with >= 3 points),
    uncompressed RLE (``counts`` a list of run lengths summing to h*w) and compressed RLE
    (``counts`` a str/bytes). Raises :class:`CocoFormatError` naming ``where``.
    """
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            raise CocoFormatError(f"{where}: RLE segmentation needs keys 'counts' and 'size'")
        size = seg["size"]
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(_is_int(s) for s in size)):
            raise CocoFormatError(f"{where}: RLE 'size' must be [height, width], got {size!r}")
        if int(size[0]) != h or int(size[1]) != w:
            raise CocoFormatError(
                f"{where}: mask size {[int(size[0]), int(size[1])]} differs from the image size "
                f"{[h, w]} (height, width)")
        counts = seg["counts"]
        if isinstance(counts, (str, bytes)):
            text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
            if not _COMPRESSED_RLE.match(text):
                raise CocoFormatError(f"{where}: compressed RLE 'counts' has characters outside "
                                      "the RLE alphabet (chr(48)..chr(111))")
            return {"size": [h, w], "counts": counts}
        if isinstance(counts, list):
            if not all(_is_int(c) and c >= 0 for c in counts):
                raise CocoFormatError(f"{where}: uncompressed RLE 'counts' must be "
                                      "non-negative integers")
            if sum(counts) != h * w:
                raise CocoFormatError(f"{where}: uncompressed RLE 'counts' sum to {sum(counts)}, "
                                      f"not height*width = {h * w}")
            return mask_utils.frPyObjects({"size": [h, w], "counts": [int(c) for c in counts]},
                                          h, w)
        raise CocoFormatError(f"{where}: RLE 'counts' must be a string or a list of integers")
    if isinstance(seg, list):
        if not seg:
            raise CocoFormatError(f"{where}: empty polygon list")
        rings = []
        for j, ring in enumerate(seg):
            if not isinstance(ring, list) or not all(_is_real(v) for v in ring):
                raise CocoFormatError(f"{where}: polygon {j} must be a list of finite numbers")
            # pycocotools would read a 4-number ring as a box: refuse rather than guess.
            if len(ring) < 6 or len(ring) % 2:
                raise CocoFormatError(f"{where}: polygon {j} has {len(ring)} coordinates; "
                                      "need an even number >= 6 (3 points)")
            rings.append([float(v) for v in ring])
        return mask_utils.merge(mask_utils.frPyObjects(rings, h, w))
    raise CocoFormatError(f"{where}: 'segmentation' must be a polygon list or an RLE dict, "
                          f"got {type(seg).__name__}")


@dataclass(frozen=True)
class GroundTruth:
    """Validated COCO ground truth. Annotation arrays have shape ``(N,)`` in file order.

    Attributes:
        source: file name (or ``<ground truth>`` for an in-memory dict), for messages.
        image_ids: ``(I,)`` int64, sorted (pycocotools' image order).
        image_sizes: image id -> (height, width) in pixels.
        category_ids: ``(K,)`` int64, sorted.
        categories: minimal category dicts (``id``, ``name``) in file order.
        ann_ids: ``(N,)`` int64 original annotation ids (any value, 0 included).
        ann_image_ids, ann_category_ids: ``(N,)`` int64.
        ann_areas: ``(N,)`` float64 areas in pixels (from the file; mask area where absent).
        ann_iscrowd: ``(N,)`` bool.
        ann_rles: N compressed RLE dicts.
        n_area_filled: how many annotations had no ``area`` and got their mask area.
    """

    source: str
    image_ids: np.ndarray
    image_sizes: dict
    category_ids: np.ndarray
    categories: list
    ann_ids: np.ndarray
    ann_image_ids: np.ndarray
    ann_category_ids: np.ndarray
    ann_areas: np.ndarray
    ann_iscrowd: np.ndarray
    ann_rles: list
    n_area_filled: int

    @property
    def num_annotations(self) -> int:
        return len(self.ann_rles)


@dataclass(frozen=True)
class Results:
    """Validated COCO-format results. Arrays have shape ``(D,)`` in file order.

    Attributes:
        source: file name (or ``<results>``), for messages.
        image_ids, category_ids: ``(D,)`` int64, all present in the ground truth.
        scores: ``(D,)`` float64 confidence scores.
        rles: D compressed RLE dicts (polygons and uncompressed RLE converted).
        entry_index: ``(D,)`` int64 position of each kept entry in the input list.
        n_entries: number of entries in the input list.
        n_skipped_unknown: entries skipped because their image/category id is not in the
            ground truth (only with ``on_unknown="skip"``).
    """

    source: str
    image_ids: np.ndarray
    category_ids: np.ndarray
    scores: np.ndarray
    rles: list
    entry_index: np.ndarray
    n_entries: int
    n_skipped_unknown: int

    def __len__(self) -> int:
        return len(self.rles)


def _require_list(d: Mapping, key: str, name: str) -> list:
    if key not in d:
        raise CocoFormatError(f"{name}: ground truth has no '{key}' list")
    v = d[key]
    if not isinstance(v, list):
        raise CocoFormatError(f"{name}: '{key}' must be a list, got {type(v).__name__}")
    return v


def load_ground_truth(source: Any) -> GroundTruth:
    """Load and validate a COCO ground-truth JSON (path or parsed dict).

    Raises:
        CocoFormatError: unreadable/malformed JSON, missing keys, duplicate image, category or
            annotation ids, annotations pointing at unknown images/categories, bad segmentations
            (RLE size != image size, polygons with < 3 points, RLE counts not summing to h*w).
    """
    data, name = _load_json(source, "ground truth")
    if not isinstance(data, dict):
        raise CocoFormatError(f"{name}: ground truth must be a JSON object with 'images', "
                              f"'annotations' and 'categories', got {type(data).__name__}")
    images = _require_list(data, "images", name)
    annotations = _require_list(data, "annotations", name)
    categories = _require_list(data, "categories", name)

    sizes: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(images):
        where = f"{name}: images[{i}]"
        if not isinstance(img, dict):
            raise CocoFormatError(f"{where}: must be an object")
        for key in ("id", "height", "width"):
            if key not in img:
                raise CocoFormatError(f"{where}: missing key '{key}'")
            if not _is_int(img[key]):
                raise CocoFormatError(f"{where}: '{key}' must be an integer, got {img[key]!r}")
        if img["height"] <= 0 or img["width"] <= 0:
            raise CocoFormatError(f"{where}: height and width must be positive")
        if int(img["id"]) in sizes:
            raise CocoFormatError(f"{where}: duplicate image id {img['id']}")
        sizes[int(img["id"])] = (int(img["height"]), int(img["width"]))

    cats = []
    cat_set: set[int] = set()
    for i, cat in enumerate(categories):
        where = f"{name}: categories[{i}]"
        if not isinstance(cat, dict) or "id" not in cat:
            raise CocoFormatError(f"{where}: must be an object with an 'id'")
        if not _is_int(cat["id"]):
            raise CocoFormatError(f"{where}: 'id' must be an integer, got {cat['id']!r}")
        if int(cat["id"]) in cat_set:
            raise CocoFormatError(f"{where}: duplicate category id {cat['id']}")
        cat_set.add(int(cat["id"]))
        cats.append({"id": int(cat["id"]), "name": str(cat.get("name", cat["id"]))})

    n = len(annotations)
    ann_ids = np.empty(n, np.int64)
    ann_img = np.empty(n, np.int64)
    ann_cat = np.empty(n, np.int64)
    ann_area = np.empty(n, np.float64)
    ann_crowd = np.zeros(n, bool)
    rles = []
    seen_ids: set[int] = set()
    missing_area = []
    for i, ann in enumerate(annotations):
        where = f"{name}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise CocoFormatError(f"{where}: must be an object")
        for key in ("id", "image_id", "category_id", "segmentation"):
            if key not in ann:
                raise CocoFormatError(f"{where}: missing key '{key}'")
        for key in ("id", "image_id", "category_id"):
            if not _is_int(ann[key]):
                raise CocoFormatError(f"{where}: '{key}' must be an integer, got {ann[key]!r}")
        where = f"{name}: annotations[{i}] (id={ann['id']})"
        if int(ann["id"]) in seen_ids:
            raise CocoFormatError(f"{where}: duplicate annotation id")
        seen_ids.add(int(ann["id"]))
        if int(ann["image_id"]) not in sizes:
            raise CocoFormatError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if int(ann["category_id"]) not in cat_set:
            raise CocoFormatError(f"{where}: category_id {ann['category_id']} is not in "
                                  "'categories'")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float):
            raise CocoFormatError(f"{where}: 'iscrowd' must be 0 or 1, got {crowd!r}")
        h, w = sizes[int(ann["image_id"])]
        rle = _segmentation_to_rle(ann["segmentation"], h, w, where)
        if "area" in ann:
            if not _is_real(ann["area"]) or ann["area"] < 0:
                raise CocoFormatError(f"{where}: 'area' must be a non-negative number, "
                                      f"got {ann['area']!r}")
            ann_area[i] = float(ann["area"])
        else:
            missing_area.append(i)
        ann_ids[i] = int(ann["id"])
        ann_img[i] = int(ann["image_id"])
        ann_cat[i] = int(ann["category_id"])
        ann_crowd[i] = bool(crowd)
        rles.append(rle)
    if missing_area:
        ann_area[missing_area] = rle_area([rles[i] for i in missing_area])

    return GroundTruth(
        source=name,
        image_ids=np.array(sorted(sizes), dtype=np.int64),
        image_sizes=sizes,
        category_ids=np.array(sorted(cat_set), dtype=np.int64),
        categories=cats,
        ann_ids=ann_ids, ann_image_ids=ann_img, ann_category_ids=ann_cat,
        ann_areas=ann_area, ann_iscrowd=ann_crowd, ann_rles=rles,
        n_area_filled=len(missing_area),
    )


def load_results(source: Any, gt: GroundTruth, *, on_unknown: str = "error") -> Results:
    """Load and validate COCO-format results (path or parsed list) against ``gt``.

    Args:
        source: path to a JSON list, or the list itself.
        gt: the validated ground truth the results refer to.
        on_unknown: ``"error"`` (default) raises on an entry whose ``image_id`` or
            ``category_id`` is not in ``gt``; ``"skip"`` drops such entries and counts them in
            ``Results.n_skipped_unknown``.

    Raises:
        CocoFormatError: not a JSON list (e.g. a ground-truth file given instead), entries
            missing ``image_id``/``category_id``/``segmentation``/``score``, non-finite scores,
            unknown ids (with ``on_unknown="error"``), masks whose size differs from the image.
    """
    if on_unknown not in ("error", "skip"):
        raise ValueError(f"on_unknown must be 'error' or 'skip', got {on_unknown!r}")
    data, name = _load_json(source, "results")
    if not isinstance(data, list):
        hint = " (is this a ground-truth file?)" if isinstance(data, dict) else ""
        raise CocoFormatError(f"{name}: results must be a JSON list of "
                              f"{{image_id, category_id, segmentation, score}} entries, "
                              f"got {type(data).__name__}{hint}")
    sizes = gt.image_sizes
    cat_set = set(gt.category_ids.tolist())
    keep_idx, img_ids, cat_ids, scores, rles = [], [], [], [], []
    unknown = []
    for i, d in enumerate(data):
        if not isinstance(d, dict):
            raise CocoFormatError(f"{name}: entry {i}: must be an object, got {type(d).__name__}")
        try:
            img, cat, seg, score = d["image_id"], d["category_id"], d["segmentation"], d["score"]
        except KeyError as e:
            raise CocoFormatError(f"{name}: entry {i}: missing key {e.args[0]!r}") from None
        if not _is_int(img) or not _is_int(cat):
            raise CocoFormatError(f"{name}: entry {i}: 'image_id' and 'category_id' must be "
                                  f"integers, got {img!r}, {cat!r}")
        if not _is_real(score):
            raise CocoFormatError(f"{name}: entry {i}: 'score' must be a finite number, "
                                  f"got {score!r}")
        hw = sizes.get(img)
        if hw is None or cat not in cat_set:
            unknown.append((i, img, cat, hw is None))
            continue
        h, w = hw
        if (type(seg) is dict and type(seg.get("counts")) is str and "size" in seg
                and seg["size"] == [h, w] and _COMPRESSED_RLE.match(seg["counts"])):
            rle = {"size": [h, w], "counts": seg["counts"]}  # fast path: the common case
        else:
            rle = _segmentation_to_rle(seg, h, w, f"{name}: entry {i} (image_id={img})")
        keep_idx.append(i)
        img_ids.append(int(img))
        cat_ids.append(int(cat))
        scores.append(float(score))
        rles.append(rle)
    if unknown and on_unknown == "error":
        i, img, cat, bad_img = unknown[0]
        what = f"image_id {img} is not" if bad_img else f"category_id {cat} is not"
        raise CocoFormatError(
            f"{name}: entry {i}: {what} in the ground truth {gt.source} "
            f"({len(unknown)} of {len(data)} entries refer to unknown image or category ids; "
            "use on_unknown='skip' / --skip-unknown to drop them)")
    return Results(
        source=name,
        image_ids=np.array(img_ids, dtype=np.int64),
        category_ids=np.array(cat_ids, dtype=np.int64),
        scores=np.array(scores, dtype=np.float64),
        rles=rles,
        entry_index=np.array(keep_idx, dtype=np.int64),
        n_entries=len(data),
        n_skipped_unknown=len(unknown),
    )


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


def _check_unique_category_names(gt: GroundTruth) -> None:
    names = [c["name"] for c in gt.categories]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CocoFormatError(f"{gt.source}: category name {dup!r} is used by several ids; "
                              "per-class AP is keyed by name")


def _per_class_from(ev: COCOeval, gt: GroundTruth) -> dict[str, float]:
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
    return {c["name"]: by_id[c["id"]] for c in gt.categories}


def evaluate_segm(gt_json_path_or_dict: Any, dt_json_path_or_list: Any, *,
                  verbose: bool = False, on_unknown: str = "error") -> dict[str, float]:
    """COCO segm evaluation (stock pycocotools ``COCOeval``), 12 stats x100.

    Args:
        gt_json_path_or_dict: COCO ground truth (path, parsed dict, or :class:`GroundTruth`).
        dt_json_path_or_list: COCO results (path, parsed list, or :class:`Results`).
        verbose: let pycocotools print its progress and summary table.
        on_unknown: see :func:`load_results`.

    Returns:
        ``{stat: value}`` for every name in :data:`STAT_NAMES`, each x100 (e.g. AP 37.2);
        ``nan`` where pycocotools reports -1 (undefined: no ground truth in that area range).
        Empty results give 0.0 for every defined stat.

    Raises:
        CocoFormatError: bad input (see :func:`load_ground_truth`, :func:`load_results`).
    """
    gt = _as_ground_truth(gt_json_path_or_dict)
    res = _as_results(dt_json_path_or_list, gt, on_unknown)
    return _summary(_segm_cocoeval(gt, res, verbose), verbose)


def evaluate_bbox(gt_json_path_or_dict: Any, dt_json_path_or_list: Any, *,
                  verbose: bool = False, on_unknown: str = "error",
                  evals: dict | None = None) -> dict[str, float]:
    """COCO box evaluation (stock pycocotools ``COCOeval`` "bbox") of the results' ``bbox``
    fields, 12 stats x100 like :func:`evaluate_segm` (paper Tables 1-4 report box AP).
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


def per_class_ap(gt_json_path_or_dict: Any, dt_json_path_or_list: Any, *,
                 verbose: bool = False, on_unknown: str = "error") -> dict[str, float]:
    """COCO-style segm AP per category (stock pycocotools ``COCOeval``), x100.

    For each category, the mean of ``COCOeval.eval["precision"]`` over the 10 IoU thresholds
    and the 101 recall points, at area "all" and maxDets 100: the per-class terms whose mean
    is the overall AP (``stats[0]``). Used for per-class tables (paper Table 5's columns).

    Args:
        gt_json_path_or_dict: COCO ground truth (path, parsed dict, or :class:`GroundTruth`).
        dt_json_path_or_list: COCO results (path, parsed list, or :class:`Results`).
        verbose: let pycocotools print its progress.
        on_unknown: see :func:`load_results`.

    Returns:
        ``{category name: AP x100}`` for every category of the ground truth, in its file
        order; ``nan`` for a category without (non-crowd) ground truth, 0.0 for one with ground
        truth but no detections.

    Raises:
        CocoFormatError: bad input (see :func:`load_ground_truth`, :func:`load_results`), or
            two categories with the same name.
    """
    gt = _as_ground_truth(gt_json_path_or_dict)
    _check_unique_category_names(gt)
    res = _as_results(dt_json_path_or_list, gt, on_unknown)
    return _per_class_from(_segm_cocoeval(gt, res, verbose), gt)


def evaluate_segm_and_per_class(gt_json_path_or_dict: Any, dt_json_path_or_list: Any, *,
                                verbose: bool = False, on_unknown: str = "error",
                                evals: dict | None = None
                                ) -> tuple[dict[str, float], dict[str, float]]:
    """:func:`evaluate_segm` and :func:`per_class_ap` from one segm ``COCOeval`` run (the
    ground truth and results are loaded and matched once). Arguments, returns (as a pair)
    and errors are theirs; ``evals``, if given, receives the evaluated ``COCOeval`` as
    ``evals["segm"]`` (its per-image matching feeds the bootstrap, :mod:`analysis.bootstrap`).
    """
    gt = _as_ground_truth(gt_json_path_or_dict)
    _check_unique_category_names(gt)
    res = _as_results(dt_json_path_or_list, gt, on_unknown)
    ev = _segm_cocoeval(gt, res, verbose)
    if evals is not None:
        evals["segm"] = ev
    return _summary(ev, verbose), _per_class_from(ev, gt)
