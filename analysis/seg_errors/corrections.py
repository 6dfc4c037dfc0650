"""One matching pass and the corrected predictions' IoUs and areas, per image.

Work is cut into chunks of consecutive images (:class:`Chunk`) so that ``--jobs`` can run them in
separate processes; :func:`process_chunk` is the worker. Per image it:

1. computes the mask IoU of every evaluated prediction with every ground truth of the image
   (one pycocotools ``maskUtils.iou`` call; crowd columns get pycocotools' crowd IoU). The
   same-category blocks are exactly what ``COCOeval.computeIoU`` would compute, and serve the
   baseline evaluation and the matching;
2. matches each prediction (paper Section 3): to the non-crowd ground truth of its category
   with the largest IoU (the first in file order on ties) if that IoU >= the threshold (0.1);
   several predictions may match the same ground truth;
3. for each error type, gives every prediction with a target its corrected IoU row and area.

Who gets a target (``mode``):

- ``paper``: matched predictions only; unmatched ones are left unchanged.
- ``authors``: as the authors' script: matched predictions as above, and every unmatched
  prediction is "corrected" against the image's *last* non-crowd ground truth in file order,
  whatever its category (their matched index -1 picks the last element), with bFP against G.

In both modes an image without non-crowd ground truth has nothing corrected (G is empty).

How step 3 is computed. pycocotools' IoU is ``i / u`` of integer pixel counts, so the
intersection ``|D & G_j|`` is recovered exactly from the IoU and the two areas. When the ground
truths a prediction touches, together with its target G*, are pairwise disjoint and G* does not
overlap the other ground truths of the prediction's category, D splits into disjoint parts
(on G*, on each other touched instance, on background) and every corrected area and
intersection is a sum of those parts: no mask is built ("analytic" path). Otherwise, or with
``exact=True``, the corrected mask is built with RLE merges and its IoUs computed by pycocotools
("exact" path). Tests check both paths against dense masks and stock ``COCOeval``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from analysis.rle import rle_area
from analysis.seg_errors.error_types import BASE_ERRORS, ErrorType, PixelCounts, Target

__all__ = ["MODES", "Chunk", "ChunkResult", "process_chunk"]

MODES = ("paper", "authors")
_BASE = tuple(t.name for t in BASE_ERRORS)


@dataclass
class Chunk:
    """Consecutive images, as a worker needs them. Per image (lists indexed by image):

    Attributes:
        sizes: (height, width).
        gt_rles, gt_crowd, gt_cat: the image's ground truths in file order (RLE dicts, bools,
            category indices).
        dets: the image's evaluated predictions, in the global evaluated order (pairs by
            category, score order inside a pair), as RLE dicts.
        pairs: per (image, category) pair, in the same order: ``(n_dets, gt_columns)`` with
            ``gt_columns`` the local indices of the pair's ground truths (file order).
        n_iou, n_det: lengths of this chunk's slices of the flat IoU and detection arrays.
        types, mode, iou_threshold, exact: the analysis settings.
    """

    sizes: list
    gt_rles: list
    gt_crowd: list
    gt_cat: list
    dets: list
    det_cat: list
    pairs: list
    n_iou: int
    n_det: int
    types: list
    mode: str
    iou_threshold: float
    exact: bool = False


@dataclass
class ChunkResult:
    """What a worker returns for its chunk (slices of the global arrays, in order).

    Attributes:
        ious: ``(n_iou,)`` float64 baseline IoU blocks.
        areas: ``(n_det,)`` float64 baseline prediction areas (pixels).
        match: ``(n_det,)`` int64 matched ground truth as a chunk-global index
            (``gt_offset[image] + local``), -1 if unmatched; see :attr:`gt_offsets`.
        fixed_ious, fixed_areas: per error type name, the same arrays after the fix.
        pixels: per base type, error pixels summed over matched predictions (Eq. 1).
        pixels_unmatched: the same over unmatched predictions given a target (authors mode).
        n_targets_unmatched: unmatched predictions corrected (authors mode).
        n_exact: predictions corrected on the exact (RLE) path.
    """

    ious: np.ndarray
    areas: np.ndarray
    match: np.ndarray
    fixed_ious: dict = field(default_factory=dict)
    fixed_areas: dict = field(default_factory=dict)
    pixels: dict = field(default_factory=lambda: dict.fromkeys(_BASE, 0))
    pixels_unmatched: dict = field(default_factory=lambda: dict.fromkeys(_BASE, 0))
    n_targets_unmatched: int = 0
    n_exact: int = 0


def _intersections(iou: np.ndarray, a_det: np.ndarray, a_gt: np.ndarray,
                   crowd: np.ndarray) -> np.ndarray:
    """Exact ``|D & G|`` pixel counts from pycocotools IoUs ``(D, G)``.

    Non-crowd: iou = i / (a_d + a_g - i), so i = iou (a_d + a_g) / (1 + iou); crowd:
    iou = i / a_d. Both are integers, recovered exactly by rounding (float64 relative error
    ~1e-16 is far below 0.5 pixel for any image size).
    """
    plain = iou * (a_det[:, None] + a_gt[None, :]) / (1.0 + iou)
    inter = np.where(crowd[None, :], iou * a_det[:, None], plain)
    return np.rint(inter)


def _iou_from_counts(inter: np.ndarray, a_det: np.ndarray, a_gt: np.ndarray,
                     crowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``rleIou`` from pixel counts: ``i / u`` as float64, 0 when ``i == 0``."""
    union = np.where(crowd[None, :], a_det[:, None], a_det[:, None] + a_gt[None, :] - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / union
    return np.where(inter > 0, out, 0.0)


def _background(union: dict) -> dict:
    # One dense pass per image: pycocotools RLEs have union and intersection only.
    return mask_utils.encode(np.asfortranarray(1 - mask_utils.decode(union)))


def process_chunk(chunk: Chunk) -> ChunkResult:
    """Baseline IoUs, matching and corrected IoUs/areas for one chunk (see module doc)."""
    thr = float(chunk.iou_threshold)
    authors = chunk.mode == "authors"
    types: list[ErrorType] = list(chunk.types)
    res = ChunkResult(np.empty(chunk.n_iou), np.empty(chunk.n_det),
                      np.full(chunk.n_det, -1, np.int64))
    for t in types:
        res.fixed_ious[t.name] = np.empty(chunk.n_iou)
        res.fixed_areas[t.name] = np.empty(chunk.n_det)
    io = do = gt_off = 0
    for img in range(len(chunk.sizes)):
        dets, pairs = chunk.dets[img], chunk.pairs[img]
        gt_rles = chunk.gt_rles[img]
        crowd = np.asarray(chunk.gt_crowd[img], bool)
        n_d, n_g = len(dets), len(gt_rles)
        a_det = rle_area(dets)
        if n_d and n_g:
            iou = np.asarray(mask_utils.iou(dets, gt_rles, crowd.astype(np.uint8).tolist()),
                             dtype=np.float64).reshape(n_d, n_g)
        else:
            iou = np.zeros((n_d, n_g))
        # Pair blocks (rows: the pair's predictions, columns: its ground truths).
        blocks = []
        r0 = 0
        for n_pd, cols in pairs:
            blocks.append((r0, n_pd, np.asarray(cols, np.int64)))
            r0 += n_pd
        target = np.full(n_d, -1, np.int64)
        matched = np.zeros(n_d, bool)
        for r0, n_pd, cols in blocks:
            nc = cols[~crowd[cols]]
            if n_pd and len(nc):
                sub = iou[r0:r0 + n_pd][:, nc]
                j = sub.argmax(axis=1)
                ok = sub[np.arange(n_pd), j] >= thr
                target[r0:r0 + n_pd][ok] = nc[j[ok]]
                matched[r0:r0 + n_pd] = ok
        nc_all = np.flatnonzero(~crowd)
        if authors and len(nc_all):
            target[~matched] = nc_all[-1]
        res.match[do:do + n_d] = np.where(matched, target + gt_off, -1)
        res.areas[do:do + n_d] = a_det

        fixed = {t.name: (iou, a_det) for t in types}
        has_target = target >= 0
        if has_target.any():
            fixed = _correct_image(chunk, img, types, iou, a_det, target, matched, crowd, res)

        # Scatter baseline and corrected pair blocks into the flat arrays.
        for r0, n_pd, cols in blocks:
            size = n_pd * len(cols)
            if size:
                res.ious[io:io + size] = iou[r0:r0 + n_pd][:, cols].ravel()
                for t in types:
                    res.fixed_ious[t.name][io:io + size] = \
                        fixed[t.name][0][r0:r0 + n_pd][:, cols].ravel()
            io += size
        for t in types:
            res.fixed_areas[t.name][do:do + n_d] = fixed[t.name][1]
        do += n_d
        gt_off += n_g
    return res


def _correct_image(chunk: Chunk, img: int, types: list[ErrorType], iou: np.ndarray,
                   a_det: np.ndarray, target: np.ndarray, matched: np.ndarray,
                   crowd: np.ndarray, res: ChunkResult) -> dict:
    """Corrected ``(iou (D, G), areas (D,))`` per type name for one image; adds pixel counts."""
    dets, gt_rles = chunk.dets[img], chunk.gt_rles[img]
    n_d, n_g = iou.shape
    a_gt = rle_area(gt_rles)
    inter = _intersections(iou, a_det, a_gt, crowd)                       # (D, G)
    rows = np.flatnonzero(target >= 0)
    s = target[rows]
    # Ground truths overlapping each other (pixel sets, crowd regions included).
    if n_g > 1:
        ov = np.asarray(mask_utils.iou(gt_rles, gt_rles, [0] * n_g)).reshape(n_g, n_g) > 0
        np.fill_diagonal(ov, False)
    else:
        ov = np.zeros((n_g, n_g), bool)
    # When is the pixel-count algebra exact? (Each condition is checked per prediction.)
    # disjoint_t: the ground truths D touches (crowd included) do not overlap each other;
    # disjoint_s: the same with G* added; star_clear: G* overlaps no other ground truth of
    # D's category. bFP needs disjoint_t, fFP disjoint_s, FN star_clear, combinations both.
    touched = inter[rows] > 0
    with_star = touched.copy()
    with_star[np.arange(len(rows)), s] = True
    ov_i = ov.astype(np.int64)

    def disjoint(m: np.ndarray) -> np.ndarray:
        mi = m.astype(np.int64)
        return ((mi @ ov_i) * mi).sum(axis=1) == 0

    gt_cat = np.asarray(chunk.gt_cat[img])
    same_cat = gt_cat[None, :] == np.asarray(chunk.det_cat[img])[rows][:, None]
    if chunk.exact:
        disjoint_t = disjoint_s = star_clear = np.zeros(len(rows), bool)
    else:
        disjoint_t, disjoint_s = disjoint(touched), disjoint(with_star)
        star_clear = ~(ov[s] & same_cat).any(axis=1)

    # Parts of D: on G*, on other non-crowd instances, on background (the remainder).
    on_star = inter[rows, s]
    nc = ~crowd
    on_others = (inter[rows] * nc[None, :]).sum(axis=1) - on_star
    parts = PixelCounts(on_target=on_star, on_others=on_others,
                        on_background=a_det[rows] - on_star - on_others,
                        missing=a_gt[s] - on_star, per_gt=inter[rows], target=s, crowd=crowd)

    # Eq. 1 pixel counts: from the parts where disjoint_s holds, else from |D & G| built as an
    # RLE (that mask is also the bFP fix: kept for it). FN needs no mask either way.
    eq1_on_others, eq1_on_background = on_others.copy(), parts.on_background.copy()
    out = {}
    union = mask_utils.merge([gt_rles[i] for i in np.flatnonzero(nc)], intersect=False)
    targets: dict[int, Target] = {}
    background = None

    def target_of(g: int) -> Target:
        nonlocal background
        if g not in targets:
            if background is None:
                background = _background(union)
            keep = mask_utils.merge([background, gt_rles[g]], intersect=False)
            targets[g] = Target(gt=gt_rles[g], union=union, keep=keep)
        return targets[g]

    pix_rows = np.flatnonzero(~disjoint_s)
    d_and_g_masks = {}
    if len(pix_rows):
        masks = [mask_utils.merge([dets[rows[k]], union], intersect=True) for k in pix_rows]
        d_and_g_masks = dict(zip(pix_rows.tolist(), masks))
        d_and_g = rle_area(masks)
        eq1_on_others[pix_rows] = d_and_g - on_star[pix_rows]
        eq1_on_background[pix_rows] = a_det[rows[pix_rows]] - d_and_g
    eq1 = dataclasses.replace(parts, on_others=eq1_on_others, on_background=eq1_on_background)
    for base in BASE_ERRORS:
        px = base.error_pixels(eq1)
        res.pixels[base.name] += int(px[matched[rows]].sum())
        res.pixels_unmatched[base.name] += int(px[~matched[rows]].sum())
    res.n_targets_unmatched += int((~matched[rows]).sum())
    used_rle = ~disjoint_s

    for t in types:
        names = [p.name for p in t.parts]
        ok = {("fFP",): disjoint_s, ("bFP",): disjoint_t,
              ("FN",): star_clear}.get(tuple(names), disjoint_s & star_clear)
        f_iou, f_area = iou.copy(), a_det.copy()
        # Analytic path: corrected area and intersections as sums of D's parts.
        c = np.flatnonzero(ok)
        if len(c):
            rc = rows[c]
            fixed_parts = t.fix_counts(parts.take(c))
            area = fixed_parts.area
            f_iou[rc] = _iou_from_counts(fixed_parts.intersections(), area, a_gt, crowd)
            f_area[rc] = area
        # Exact path: build the corrected masks with RLE merges.
        ex = np.flatnonzero(~ok)
        if len(ex):
            re_ = rows[ex]
            if names == ["bFP"]:
                masks = [d_and_g_masks[k] for k in ex.tolist()]   # ~disjoint_t implies ~disjoint_s
            else:
                masks = [t.fix(dets[r], target_of(int(g))) for r, g in zip(re_, s[ex])]
            f_area[re_] = rle_area(masks)
            f_iou[re_] = np.asarray(mask_utils.iou(masks, gt_rles, crowd.astype(np.uint8)
                                                   .tolist()), np.float64).reshape(len(re_), n_g)
            used_rle[ex] = True
        out[t.name] = (f_iou, f_area)
    res.n_exact += int(used_rle.sum())
    return out
