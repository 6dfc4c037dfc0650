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

__all__ = [
    "CocoFormatError",
    "GroundTruth",
    "Results",
    "load_ground_truth",
    "load_results",
    "rle_area",
    "decode_rle_counts",
    "rle_pixel_totals",
    "RLE_PROBLEMS",
]

# pycocotools 2.0.11 mask.area() overflows on lists of 256 or more RLEs (uint8 counter).
_AREA_BATCH = 255


class CocoFormatError(ValueError):
    """Bad COCO-format input. The message names the file, the entry and the key at fault."""


def rle_area(rles: Sequence[dict]) -> np.ndarray:
    """Mask areas of compressed RLEs, shape ``(len(rles),)`` float64, in pixels."""
    out = np.empty(len(rles), dtype=np.float64)
    for lo in range(0, len(rles), _AREA_BATCH):
        chunk = list(rles[lo:lo + _AREA_BATCH])
        if chunk:
            out[lo:lo + len(chunk)] = mask_utils.area(chunk)
    return out


# --- compressed RLE strings, checked without building masks -------------------------------
#
# Facts about pycocotools' format (maskApi.c rleToString / rleFrString): each run length is
# written as 5-bit groups, least significant first, one character chr(48 + c) per group; bit
# 0x20 of c says "more groups follow", bit 0x10 of the last group is the sign. From the fourth
# run on (index i > 2) the string holds the difference to run i - 2. The decoder trusts the
# string: runs that do not add up to height*width make its merge and IoU loops spin forever,
# and a string ending inside a run makes it read past the end.

# Most characters per run: 6 groups hold 30 bits, which pycocotools decodes without overflow
# (a 7th group shifts past its 32-bit int). Enough for any run or difference below 2**29
# pixels, i.e. any image under 536 million pixels.
_MAX_RUN_CHARS = 6
#: What can be wrong with a compressed RLE string (:func:`decode_rle_counts`' problem codes).
RLE_PROBLEMS = {
    "": "",
    "empty": "compressed RLE 'counts' is empty",
    "alphabet": "compressed RLE 'counts' has characters outside the RLE alphabet "
                "(chr(48)..chr(111))",
    "truncated": "compressed RLE 'counts' ends inside a run (the string is cut short)",
    "long run": "compressed RLE 'counts' has a run of more than 6 characters, which "
                "pycocotools cannot decode",
}
_PROBLEM_CODE = {k: i for i, k in enumerate(RLE_PROBLEMS)}
# Characters decoded per numpy batch: bounds the temporary arrays (about 40 bytes a char).
_DECODE_BATCH = 1 << 20


def decode_rle_counts(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Run lengths of COCO compressed RLE strings as pycocotools decodes them, in bulk.

    Args:
        strings: ``counts`` strings (str or bytes) of compressed RLEs.

    Returns:
        ``(runs, offsets, problem)``. ``runs`` is uint32 (pycocotools stores run lengths as
        32-bit unsigned, so a "negative" run is a huge one here too): string ``k``'s runs are
        ``runs[offsets[k]:offsets[k + 1]]``, ``offsets`` being ``(len(strings) + 1,)`` int64.
        ``problem`` is ``(len(strings),)`` uint8: 0 for a well-formed string, else the index
        in :data:`RLE_PROBLEMS` of what is wrong with it; the runs of such a string mean
        nothing.
    """
    n = len(strings)
    problem = np.zeros(n, np.uint8)
    parts, n_runs = [], np.zeros(n, np.int64)
    for lo, hi, runs, per_str in _decoded_batches(strings, problem):
        parts.append(runs)
        n_runs[lo:hi] = per_str
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(n_runs, out=offsets[1:])
    return (np.concatenate(parts) if parts else np.zeros(0, np.uint32)), offsets, problem


def rle_pixel_totals(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels covered by each compressed RLE string (the sum of its runs), without masks.

    Returns:
        ``(totals, problem)``: ``(len(strings),)`` uint64 sums of the run lengths as
        pycocotools decodes them, and the ``problem`` codes of :func:`decode_rle_counts`.
        A string is safe to hand to pycocotools when its problem is 0 and its total is
        height*width of its mask.
    """
    n = len(strings)
    problem = np.zeros(n, np.uint8)
    totals = np.zeros(n, np.uint64)
    for lo, hi, runs, per_str in _decoded_batches(strings, problem):
        has = np.flatnonzero(per_str)
        if len(has):
            first = np.cumsum(per_str) - per_str
            totals[lo + has] = np.add.reduceat(runs, first[has], dtype=np.uint64)
    return totals, problem


def _decoded_batches(strings: Sequence[str | bytes], problem: np.ndarray):
    """Yield ``(lo, hi, runs, runs_per_string)`` for consecutive batches of ``strings`` of about
    :data:`_DECODE_BATCH` characters; fills ``problem`` in place."""
    n = len(strings)
    lengths = np.fromiter(map(len, strings), np.int64, count=n)
    ends = np.cumsum(lengths)
    lo = 0
    while lo < n:
        limit = (ends[lo - 1] if lo else 0) + _DECODE_BATCH
        hi = max(int(np.searchsorted(ends, limit, side="right")), lo + 1)
        runs, per_str = _decode_batch(strings[lo:hi], lengths[lo:hi], problem[lo:hi])
        yield lo, hi, runs, per_str
        lo = hi


def _decode_batch(strings: Sequence[str | bytes], lengths: np.ndarray,
                  problem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode one batch: ``(runs uint32, runs per string)``; fills ``problem`` (a view) in
    place. A few uint8 passes per character and a few passes per run: most runs are one
    character, so longer runs are handled apart."""
    n = len(strings)

    def mark(which: np.ndarray, why: str) -> None:
        """Record ``why`` for the strings ``which`` that have no problem yet."""
        which = which[problem[which] == 0]
        problem[which] = _PROBLEM_CODE[why]

    try:
        text = "".join(strings).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        # bytes among them, or non-ASCII text (kept at one byte per character, outside the
        # alphabet).
        text = b"".join(s if isinstance(s, bytes) else s.encode("ascii") if s.isascii()
                        else b"\x00" * len(s) for s in strings)
    c = np.frombuffer(text, np.uint8) - np.uint8(48)   # chars below '0' wrap above 63
    str_end = np.cumsum(lengths)
    str_start = str_end - lengths
    nonempty = lengths > 0
    mark(np.flatnonzero(~nonempty), "empty")
    if len(c) == 0:
        return np.zeros(0, np.uint32), np.zeros(n, np.int64)
    if (c > 63).any():
        mark(np.unique(np.searchsorted(str_end, np.flatnonzero(c > 63), side="right")),
             "alphabet")
    last = str_end[nonempty] - 1
    mark(np.flatnonzero(nonempty)[c[last] >= 32], "truncated")

    # A run ends at a character without the 0x20 bit, and at every string's end (so that a
    # truncated string, already marked, does not run into the next one).
    run_end = c < 32
    run_end[last] = True
    end_char = c[run_end]
    # One-character runs: 5 bits, 0x10 the sign; uint32 as pycocotools stores runs (a
    # negative run wraps to a huge one).
    x = end_char.astype(np.uint32)
    x -= (x & 0x10) << 1
    cont = np.flatnonzero(~run_end)        # the other characters of longer runs
    # Every character before cont[i] is a run end or one of the i continuations before it.
    per_str = lengths - (np.searchsorted(cont, str_end) - np.searchsorted(cont, str_start))
    if len(cont):
        # Longer runs: 5-bit groups, least significant first, from the run's first character.
        is_first = np.empty(len(cont), bool)
        is_first[0] = True
        np.not_equal(cont[1:], cont[:-1] + 1, out=is_first[1:])   # after a run end
        g0 = np.flatnonzero(is_first)
        start = cont[g0]
        multi = start - g0                 # run index (runs before = chars - continuations)
        n_cont = np.diff(g0, append=len(cont))
        long_run = n_cont >= _MAX_RUN_CHARS
        if long_run.any():
            mark(np.unique(np.searchsorted(str_end, start[long_run], side="right")),
                 "long run")
            n_cont = np.minimum(n_cont, _MAX_RUN_CHARS - 1)
        value = (c[start] & 0x1f).astype(np.int64)
        for k in range(1, int(n_cont.max()) + 1):
            sel = np.flatnonzero(n_cont >= k) if k > 1 else slice(None)
            group = (c[start[sel] + k] & 0x1f).astype(np.int64) << (5 * k)
            if k > 1:
                value[sel] += group
            else:
                value += group
        sign = (c[start + n_cont] & 0x10) != 0
        value[sign] -= np.int64(1) << (5 * (n_cont[sign] + 1))
        x[multi] = value.astype(np.uint32)   # mod 2**32, as pycocotools stores it

    # Differences: run j > 2 of a string is x[j] + run[j - 2], i.e. (mod 2**32, as pycocotools'
    # uint32 runs) a running sum along its odd runs and along its even runs from run 2. One
    # running sum per parity of the global run index; per string, subtract the sum before the
    # string's chain and set run 0 back to x.
    first = np.cumsum(per_str) - per_str
    runs = np.empty_like(x)
    odd_first = (first & 1).astype(bool)
    for p in (0, 1):
        total = np.cumsum(x[p::2], dtype=np.uint32)
        same = odd_first == bool(p)        # the string's run 0 has global parity p
        n_p = (per_str + same) // 2
        # Chain base: the running sum just before the chain. For the parity of run 0 the chain
        # starts at run 2, so run 0 is part of the base.
        start_p = (first + ~same) // 2 + same
        before = np.zeros(len(total) + 1, np.uint32)
        before[1:] = total
        runs[p::2] = total - np.repeat(before[np.minimum(start_p, len(total))], n_p)
    has = per_str > 0
    runs[first[has]] = x[first[has]]
    return runs, per_str


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
