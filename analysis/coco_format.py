"""COCO-format inputs: ground truth and results, loaded and validated.

Ground truth is a COCO instances JSON (``images``, ``annotations``, ``categories``); results are
a JSON list of ``{image_id, category_id, segmentation, score}`` entries (``bbox`` / ``area``
optional and ignored). Segmentations may be polygons, uncompressed RLE or compressed RLE.

Everything is checked before pycocotools sees it, so bad input raises
:class:`CocoFormatError` naming the file, the entry and the key, instead of a traceback from
inside pycocotools or a silently wrong number. Conventions (all documented in
``analysis/README.md``):

- A ground truth without ``area`` gets its mask area (counted in ``n_area_filled``); a missing
  ``iscrowd`` means 0 (pycocotools would raise ``KeyError`` deep inside ``computeIoU``).
- Every segmentation comes out as a compressed RLE dict ``{'size': [h, w], 'counts'}`` of its
  image's size.

Evaluation lives in :mod:`analysis.coco_eval`.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from analysis.rle import RLE_PROBLEMS, decode_rle_counts, rle_area, rle_pixel_totals

__all__ = [
    "CocoFormatError",
    "GroundTruth",
    "Results",
    "load_ground_truth",
    "load_results",
]


class CocoFormatError(ValueError):
    """Bad COCO-format input. The message names the file, the entry and the key at fault."""


def _check_rle_pixels(rles: Sequence[dict], pixels: Sequence[int],
                      where: Callable[[int], str]) -> None:
    """Raise :class:`CocoFormatError` for the first RLE whose ``counts`` string is malformed
    or does not add up to ``pixels`` (its height*width), naming it by ``where(index)``.

    pycocotools trusts the string: its merge and IoU loops never end on runs that add up to
    less or more than the mask (repro: a 10x10 image and ``"counts": "0b1"``, 50 pixels).
    """
    totals, problem = rle_pixel_totals([r["counts"] for r in rles])
    bad = np.flatnonzero((problem != 0) | (totals != np.asarray(pixels, np.uint64)))
    if not len(bad):
        return
    k = int(bad[0])
    if problem[k]:
        msg = list(RLE_PROBLEMS.values())[problem[k]]
    elif (decode_rle_counts([rles[k]["counts"]])[0].view(np.int32) < 0).any():
        msg = "compressed RLE 'counts' decode to a negative run length"
    else:
        msg = (f"compressed RLE 'counts' add up to {int(totals[k])} pixels, not "
               f"height*width = {int(pixels[k])}")
    raise CocoFormatError(f"{where(k)}: {msg}")


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
    (``counts`` a str/bytes; its string is checked later, for all masks at once, by
    :func:`_check_rle_pixels`). Raises :class:`CocoFormatError` naming ``where``.
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
            return {"size": [h, w], "counts": counts}  # checked in bulk: _check_rle_pixels
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
    _check_rle_pixels(rles, [sizes[int(i)][0] * sizes[int(i)][1] for i in ann_img],
                      lambda k: f"{name}: annotations[{k}] (id={ann_ids[k]}, "
                                f"image_id={ann_img[k]})")
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
                and seg["size"] == [h, w]):
            rle = {"size": [h, w], "counts": seg["counts"]}  # fast path: the common case
        else:
            rle = _segmentation_to_rle(seg, h, w, f"{name}: entry {i} (image_id={img})")
        keep_idx.append(i)
        img_ids.append(int(img))
        cat_ids.append(int(cat))
        scores.append(float(score))
        rles.append(rle)
    img_ids = np.array(img_ids, dtype=np.int64)
    keep_idx = np.array(keep_idx, dtype=np.int64)
    pixels = np.array([sizes[int(i)][0] * sizes[int(i)][1] for i in gt.image_ids], np.int64)
    _check_rle_pixels(rles, pixels[np.searchsorted(gt.image_ids, img_ids)],
                      lambda k: f"{name}: entry {keep_idx[k]} (image_id={img_ids[k]})")
    if unknown and on_unknown == "error":
        i, img, cat, bad_img = unknown[0]
        what = f"image_id {img} is not" if bad_img else f"category_id {cat} is not"
        raise CocoFormatError(
            f"{name}: entry {i}: {what} in the ground truth {gt.source} "
            f"({len(unknown)} of {len(data)} entries refer to unknown image or category ids; "
            "use on_unknown='skip' / --skip-unknown to drop them)")
    return Results(
        source=name,
        image_ids=img_ids,
        category_ids=np.array(cat_ids, dtype=np.int64),
        scores=np.array(scores, dtype=np.float64),
        rles=rles,
        entry_index=keep_idx,
        n_entries=len(data),
        n_skipped_unknown=len(unknown),
    )
