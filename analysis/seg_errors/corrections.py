"""One matching pass and the corrected masks, per image, on pycocotools RLEs.

Work is cut into chunks of consecutive images (:class:`Chunk`) so that ``--jobs`` can run them in
separate processes; :func:`process_chunk` is the worker. For every evaluated prediction it:

1. computes the mask IoU with the image's ground truths of its category (pycocotools
   ``maskUtils.iou``, crowd columns with the crowd IoU), once: these IoUs serve both the
   baseline COCO evaluation and the matching;
2. matches it (paper Section 3): to the non-crowd ground truth of its category with the largest
   IoU (the first one on ties), if that IoU >= the threshold (0.1); several predictions may
   match the same ground truth;
3. for each error type, fixes the masks that have a :class:`~.error_types.Target` and recomputes
   their IoU rows and areas; all other rows are the baseline's.

Modes (who gets a target):

- ``paper``: matched predictions only; unmatched ones are left unchanged.
- ``authors``: as the authors' script: matched predictions as above, and every unmatched
  prediction is "corrected" against the image's *last* non-crowd ground truth in file order,
  whatever its category (their matched index -1 picks the last element), with bFP against G.

In both modes, an image without non-crowd ground truth has nothing corrected (G is empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from analysis.coco_eval import rle_area
from analysis.seg_errors.error_types import BackgroundFP, ErrorType, Target

__all__ = ["MODES", "Chunk", "ChunkResult", "process_chunk"]

MODES = ("paper", "authors")


@dataclass
class Chunk:
    """Consecutive images and their (image, category) pairs, as a worker needs them.

    Attributes:
        image_sizes: per image (height, width).
        image_gts: per image, global ground-truth indices in file order.
        gt_rles, gt_crowd: per global gt index in this chunk (dicts keyed by global index).
        image_pairs: per image, list of pairs ``(gt_indices, det_rles)``: the pair's ground
            truths (global indices, file order) and its evaluated detections (score order).
        n_iou, n_det: lengths of this chunk's slices of the flat IoU and detection arrays.
    """

    image_sizes: list
    image_gts: list
    gt_rles: dict
    gt_crowd: dict
    image_pairs: list
    n_iou: int
    n_det: int
    types: list
    mode: str
    iou_threshold: float


@dataclass
class ChunkResult:
    """What a worker returns for its chunk (slices of the global arrays, in order).

    Attributes:
        ious: ``(n_iou,)`` float64 baseline IoU blocks.
        areas: ``(n_det,)`` float64 baseline detection areas (pixels).
        match: ``(n_det,)`` int64 matched global gt index, -1 if unmatched.
        fixed_ious, fixed_areas: per error type name, the same arrays after the fix.
        pixels: per base type name, error pixels summed over matched predictions (Eq. 1).
        pixels_unmatched: the same over unmatched predictions that got a target (authors mode).
        n_targets_unmatched: unmatched predictions corrected (authors mode).
    """

    ious: np.ndarray
    areas: np.ndarray
    match: np.ndarray
    fixed_ious: dict = field(default_factory=dict)
    fixed_areas: dict = field(default_factory=dict)
    pixels: dict = field(default_factory=dict)
    pixels_unmatched: dict = field(default_factory=dict)
    n_targets_unmatched: int = 0


class _ImageMasks:
    """Per-image G (union of non-crowd gts), its complement and the fFP keep-masks, lazily."""

    def __init__(self, h: int, w: int, gt_rles: list):
        self.h, self.w = h, w
        self.gt_rles = gt_rles
        self.union = mask_utils.merge(gt_rles, intersect=False) if gt_rles else None
        self._background = None
        self._targets: dict[int, Target] = {}

    def target(self, gt_index: int, gt_rle: dict) -> Target:
        t = self._targets.get(gt_index)
        if t is None:
            if self._background is None:
                # One dense pass per image: RLEs support union and intersection only.
                g = mask_utils.decode(self.union)
                self._background = mask_utils.encode(np.asfortranarray(1 - g))
            keep = mask_utils.merge([self._background, gt_rle], intersect=False)
            t = self._targets[gt_index] = Target(gt=gt_rle, union=self.union, keep=keep)
        return t


def process_chunk(chunk: Chunk) -> ChunkResult:
    """Baseline IoUs, matching and the corrected IoUs/areas of one chunk (see module doc)."""
    thr = float(chunk.iou_threshold)
    authors = chunk.mode == "authors"
    types: list[ErrorType] = chunk.types
    ious = np.empty(chunk.n_iou, np.float64)
    areas = np.empty(chunk.n_det, np.float64)
    match = np.full(chunk.n_det, -1, np.int64)
    fixed_ious = {t.name: None for t in types}
    fixed_areas = {t.name: None for t in types}
    res = ChunkResult(ious, areas, match)
    base_names = ("fFP", "bFP", "FN")
    pix = dict.fromkeys(base_names, 0)
    pix_un = dict.fromkeys(base_names, 0)
    bfp_name = next((t.name for t in types if t == BackgroundFP()), None)

    # Pass 1: baseline IoUs, areas and matching for the whole chunk.
    io = do = 0
    rows_per_image = []
    for img, pairs in enumerate(chunk.image_pairs):
        img_rows = []
        for gts, dets in pairs:
            D, G = len(dets), len(gts)
            if D:
                areas[do:do + D] = rle_area(dets)
            if D and G:
                crowd = [int(chunk.gt_crowd[g]) for g in gts]
                block = np.asarray(mask_utils.iou(dets, [chunk.gt_rles[g] for g in gts], crowd),
                                   dtype=np.float64).reshape(D, G)
                ious[io:io + D * G] = block.ravel()
                nc = np.flatnonzero(~np.asarray(crowd, bool))
                if len(nc):
                    sub = block[:, nc]
                    j = sub.argmax(axis=1)
                    ok = sub[np.arange(D), j] >= thr
                    match[do:do + D][ok] = np.asarray(gts)[nc[j[ok]]]
            img_rows.append((io, do, D, G))
            io += D * G
            do += D
        rows_per_image.append(img_rows)

    for t in types:
        fixed_ious[t.name] = ious.copy()
        fixed_areas[t.name] = areas.copy()

    # Pass 2: targets and fixes, image by image.
    for img, pairs in enumerate(chunk.image_pairs):
        nc_gts = [g for g in chunk.image_gts[img] if not chunk.gt_crowd[g]]
        if not nc_gts:
            continue
        h, w = chunk.image_sizes[img]
        masks = _ImageMasks(h, w, [chunk.gt_rles[g] for g in nc_gts])
        gt_area = dict(zip(nc_gts, rle_area([chunk.gt_rles[g] for g in nc_gts])))
        last = nc_gts[-1]
        for (gts, dets), (io0, do0, D, G) in zip(pairs, rows_per_image[img]):
            if D == 0:
                continue
            targeted = []  # (row, target, gt index, matched?)
            for r in range(D):
                g = int(match[do0 + r])
                if g >= 0:
                    targeted.append((r, masks.target(g, chunk.gt_rles[g]), g, True))
                elif authors:
                    targeted.append((r, masks.target(last, chunk.gt_rles[last]), last, False))
            if not targeted:
                continue
            rows = [x[0] for x in targeted]
            crowd = [int(chunk.gt_crowd[g]) for g in gts]
            gt_rles = [chunk.gt_rles[g] for g in gts]
            bfp_area = None
            for t in types:
                fixed = [t.fix(dets[r], tg) for r, tg, _, _ in targeted]
                fa = rle_area(fixed)
                fixed_areas[t.name][do0 + np.asarray(rows)] = fa
                if t.name == bfp_name:
                    bfp_area = fa
                if G:
                    blk = np.asarray(mask_utils.iou(fixed, gt_rles, crowd),
                                     dtype=np.float64).reshape(len(fixed), G)
                    view = fixed_ious[t.name][io0:io0 + D * G].reshape(D, G)
                    view[rows] = blk
            # Eq. 1 pixel counts: |D & G| (the bFP fix) and |D & G*|.
            if bfp_area is None:
                bfp_area = rle_area([mask_utils.merge([dets[r], tg.union], intersect=True)
                                     for r, tg, _, _ in targeted])
            r_arr = np.asarray(rows)
            g_arr = np.array([x[2] for x in targeted])
            is_m = np.array([x[3] for x in targeted])
            a_d = areas[do0 + r_arr]
            a_g = np.array([gt_area[g] for g in g_arr], dtype=np.float64)
            a_i = np.empty(len(targeted))
            if is_m.any():
                col = {g: c for c, g in enumerate(gts)}
                cols = np.array([col[g] for g in g_arr[is_m]])
                iou = ious[io0 + r_arr[is_m] * G + cols]
                # |D & G*| from the IoU: i = iou (|D| + |G*|) / (1 + iou), exact once rounded.
                a_i[is_m] = np.rint(iou * (a_d[is_m] + a_g[is_m]) / (1.0 + iou))
            if not is_m.all():
                a_i[~is_m] = rle_area([mask_utils.merge([dets[r], tg.gt], intersect=True)
                                       for r, tg, _, m in targeted if not m])
                res.n_targets_unmatched += int((~is_m).sum())
            for sel, out in ((is_m, pix), (~is_m, pix_un)):
                if sel.any():
                    out["fFP"] += int((bfp_area[sel] - a_i[sel]).sum())
                    out["bFP"] += int((a_d[sel] - bfp_area[sel]).sum())
                    out["FN"] += int((a_g[sel] - a_i[sel]).sum())

    res.fixed_ious = fixed_ious
    res.fixed_areas = fixed_areas
    res.pixels = pix
    res.pixels_unmatched = pix_un
    return res
