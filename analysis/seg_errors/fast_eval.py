"""COCO segm evaluation split into what corrected copies of a result set share and what they don't.

pycocotools' ``COCOeval`` re-derives everything per call: gt/dt grouping per (image, category),
score order, ignore flags, and then runs ``evaluateImg`` (a Python triple loop) and
``accumulate``. Corrected predictions (paper Section 3) keep images, categories, scores and the
ground truth; only their masks change, i.e. the IoU matrices and the detection areas.
:class:`EvalLayout` computes the shared part once; :meth:`EvalLayout.evaluate` takes IoUs and
areas and returns the same ``precision``/``recall`` arrays as ``COCOeval.accumulate`` bit for bit
(tests compare against stock pycocotools), with ``evaluateImg``'s greedy matching vectorised
over all (image, category) pairs, area ranges and IoU thresholds at once.

Semantics copied from pycocotools 2.0 ``cocoeval.py`` (facts, not code):
- per (image, category) the detections are sorted by score (stable mergesort) and cut at
  ``maxDets[-1]`` = 100; ground truths keep file order, ignored ones (crowd or out of the area
  range) after the others;
- greedy matching per IoU threshold t: a detection takes, among still unmatched (or crowd)
  ground truths with IoU >= min(t, 1 - 1e-10), the one with the largest IoU (the last one on
  ties), preferring non-ignored ground truths; it inherits the matched gt's ignore flag;
  unmatched detections outside the area range are ignored;
- accumulation per (category, area range, maxDet): detections of all images, each image's cut at
  maxDet, sorted by score (stable), cumulative TP/FP, precision envelope, 101 recall points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools.cocoeval import COCOeval, Params

from analysis.coco_eval import quiet
from analysis.coco_format import GroundTruth, Results

__all__ = ["EvalLayout"]

# Bucket widths for the number of ground truths per (image, category): exact up to 8, then
# powers of two. Padding wastes at most half a bucket's columns.
_EXACT_G = 8


def _starts(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive groups of the given sizes (empty for no groups)."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.cumsum(counts) - counts


def _g_bucket(g: np.ndarray) -> np.ndarray:
    return np.where(g <= _EXACT_G, g, 1 << np.ceil(np.log2(np.maximum(g, 1))).astype(np.int64))


@dataclass
class _Bucket:
    """Pairs with the same padded gt count, detections laid out rank-major (rank r rows of all
    pairs with more than r detections are contiguous, pairs sorted by detection count)."""

    width: int               # padded number of gt columns G
    row_gather: np.ndarray   # (rows, G) int64 positions into the flat IoU array (+ sentinel)
    row_det: np.ndarray      # (rows,) int64 evaluated-detection index of each row
    rank_offsets: np.ndarray  # (R + 1,) row offset of each rank
    not_ignored: np.ndarray  # (P, A, G) bool: gt neither crowd nor out of area range
    crowd: np.ndarray        # (P, G) bool


class EvalLayout:
    """Everything of a COCO segm evaluation that does not depend on the detection masks.

    Built once from the ground truth and the (uncorrected) results; :meth:`evaluate` then runs
    the evaluation for any masks with the same images, categories and scores.

    Attributes (E = number of evaluated detections, i.e. at most 100 per (image, category)):
        pair_image, pair_category: ``(P,)`` int64 image / category *indices* (into
            ``gt.image_ids`` / ``gt.category_ids``) of each (image, category) pair that has a
            ground truth or a detection, sorted image-major.
        pair_gt_start, pair_gt_count: ``(P,)`` slices into :attr:`gt_order`.
        gt_order: ``(N,)`` int64 ground-truth indices grouped by pair, file order inside a pair.
        pair_det_start, pair_det_count: ``(P,)`` slices into :attr:`det_index`.
        det_index: ``(E,)`` int64 indices into the results of the evaluated detections, grouped
            by pair, score order (stable) inside a pair.
        pair_iou_start: ``(P + 1,)`` offsets of each pair's ``D x G`` row-major IoU block in the
            flat IoU array (length :attr:`n_iou`).
        image_pair_start: ``(I + 1,)`` first pair of each image (pairs are image-major).
        n_beyond_max_dets: detections cut by the 100-per-(image, category) limit.
    """

    def __init__(self, gt: GroundTruth, results: Results, params: Params | None = None):
        self.params = params if params is not None else Params("segm")
        p = self.params
        self.iou_thrs = np.asarray(p.iouThrs, dtype=np.float64)
        self.rec_thrs = np.asarray(p.recThrs, dtype=np.float64)
        self.area_rngs = np.asarray(p.areaRng, dtype=np.float64)
        self.max_dets = sorted(int(m) for m in p.maxDets)
        max_det = self.max_dets[-1]
        n_img, n_cat = len(gt.image_ids), len(gt.category_ids)
        self.n_images, self.n_categories = n_img, n_cat

        gt_img = np.searchsorted(gt.image_ids, gt.ann_image_ids)
        gt_cat = np.searchsorted(gt.category_ids, gt.ann_category_ids)
        dt_img = np.searchsorted(gt.image_ids, results.image_ids)
        dt_cat = np.searchsorted(gt.category_ids, results.category_ids)
        gt_key = gt_img * n_cat + gt_cat
        dt_key = dt_img * n_cat + dt_cat

        self.gt_order = np.argsort(gt_key, kind="stable")
        # pair key, then descending score, then file order: pycocotools' stable mergesort.
        dt_sorted = np.lexsort((np.arange(len(dt_key)), -results.scores, dt_key))
        keys = np.union1d(gt_key, dt_key).astype(np.int64)
        self.pair_image = keys // max(n_cat, 1)
        self.pair_category = keys % max(n_cat, 1)
        n_pairs = len(keys)
        gt_counts = np.bincount(np.searchsorted(keys, gt_key), minlength=n_pairs)
        dt_all_counts = np.bincount(np.searchsorted(keys, dt_key), minlength=n_pairs)
        self.pair_gt_count = gt_counts.astype(np.int64)
        self.pair_gt_start = _starts(gt_counts)
        dt_all_start = _starts(dt_all_counts)
        rank = np.arange(len(dt_sorted)) - np.repeat(dt_all_start, dt_all_counts)
        keep = rank < max_det
        self.det_index = dt_sorted[keep]
        self.det_rank = rank[keep]
        self.n_beyond_max_dets = int((~keep).sum())
        self.pair_det_count = np.minimum(dt_all_counts, max_det).astype(np.int64)
        self.pair_det_start = _starts(self.pair_det_count)
        self.det_pair = np.repeat(np.arange(n_pairs), self.pair_det_count)
        blocks = self.pair_det_count * self.pair_gt_count
        self.pair_iou_start = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64)
        self.n_iou = int(self.pair_iou_start[-1])
        self.image_pair_start = np.searchsorted(self.pair_image, np.arange(n_img + 1))
        self.n_evaluated = len(self.det_index)
        self.scores = results.scores[self.det_index]

        # Ground-truth ignore flags per area range (A, N): pycocotools' 'ignore' is iscrowd.
        lo, hi = self.area_rngs[:, 0:1], self.area_rngs[:, 1:2]
        areas = gt.ann_areas[None, :]
        gt_ignored = gt.ann_iscrowd[None, :] | (areas < lo) | (areas > hi)
        # npig per (category, area range): non-ignored gts (all gts belong to some pair).
        self.npig = np.zeros((n_cat, len(self.area_rngs)), np.int64)
        for a in range(len(self.area_rngs)):
            self.npig[:, a] = np.bincount(gt_cat[~gt_ignored[a]], minlength=n_cat)
        self.cat_has_pairs = np.bincount(self.pair_category, minlength=n_cat) > 0

        self._buckets = self._build_buckets(gt, gt_ignored)
        self._acc_order = self._build_accumulate_order()

    # ----------------------------------------------------------------- shared precomputation
    def _build_buckets(self, gt: GroundTruth, gt_ignored: np.ndarray) -> list[_Bucket]:
        D, G = self.pair_det_count, self.pair_gt_count
        active = np.flatnonzero((D > 0) & (G > 0))
        widths = _g_bucket(G[active])
        buckets = []
        for width in np.unique(widths):
            pairs = active[widths == width]
            pairs = pairs[np.argsort(-D[pairs], kind="stable")]
            pd, pg = D[pairs], G[pairs]
            n_rows = int(pd.sum())
            row_pair_pos = np.repeat(np.arange(len(pairs)), pd)
            row_rank = np.arange(n_rows) - np.repeat(np.cumsum(pd) - pd, pd)
            order = np.lexsort((row_pair_pos, row_rank))  # rank-major, pair order inside
            row_pair_pos, row_rank = row_pair_pos[order], row_rank[order]
            row_pair = pairs[row_pair_pos]
            cols = np.arange(width)[None, :]
            base = self.pair_iou_start[row_pair] + row_rank * G[row_pair]
            valid = cols < G[row_pair][:, None]
            gather = np.where(valid, base[:, None] + cols, self.n_iou)  # n_iou -> sentinel -1
            rank_offsets = np.searchsorted(row_rank, np.arange(int(pd.max()) + 1))
            gidx = np.where(cols < pg[:, None],
                            self.pair_gt_start[pairs][:, None] + np.minimum(cols, pg[:, None] - 1),
                            0)
            gts = self.gt_order[gidx]                              # (P, G)
            pad = ~(cols < pg[:, None])
            not_ig = ~gt_ignored[:, gts].transpose(1, 0, 2) & ~pad[:, None, :]
            crowd = gt.ann_iscrowd[gts] & ~pad
            buckets.append(_Bucket(int(width), gather, self.pair_det_start[row_pair] + row_rank,
                                   np.append(rank_offsets, n_rows), not_ig, crowd))
        return buckets

    def _build_accumulate_order(self) -> dict:
        """Per (category index, maxDet): evaluated detections in accumulate's order."""
        order = {}
        for m in self.max_dets:
            keep = self.det_rank < m
            det = np.flatnonzero(keep)
            cat = self.pair_category[self.det_pair[det]]
            # concatenation order is (category, image, rank) = det order within a category;
            # then the stable sort by descending score, as accumulate's mergesort.
            srt = np.lexsort((np.arange(len(det)), -self.scores[det], cat))
            det, cat = det[srt], cat[srt]
            bounds = np.searchsorted(cat, np.arange(self.n_categories + 1))
            for k in range(self.n_categories):
                order[k, m] = det[bounds[k]:bounds[k + 1]]
        return order

    # ----------------------------------------------------------------------- per evaluation
    def match(self, ious: np.ndarray, det_areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``evaluateImg`` for all pairs at once.

        Args:
            ious: ``(n_iou,)`` float64 flat IoU blocks (see :attr:`pair_iou_start`), each block
                ``D x G`` row-major, rows in score order, columns in file order, crowd columns
                with pycocotools' crowd IoU (intersection over detection area).
            det_areas: ``(E,)`` mask areas of the evaluated detections, in pixels.

        Returns:
            ``(dtm, dtig)``: ``(A, T, E)`` bool, matched and ignored flags per area range and IoU
            threshold (pycocotools' ``dtMatches != 0`` and ``dtIgnore``).
        """
        A, T, E = len(self.area_rngs), len(self.iou_thrs), self.n_evaluated
        if ious.shape != (self.n_iou,) or det_areas.shape != (E,):
            raise ValueError(f"expected ious ({self.n_iou},) and areas ({E},), got "
                             f"{ious.shape} and {det_areas.shape}")
        thr = np.minimum(self.iou_thrs, 1 - 1e-10)[None, None, :, None]
        flat = np.append(ious, -1.0)
        dtm = np.zeros((A, T, E), bool)
        dtig = np.zeros((A, T, E), bool)
        for b in self._buckets:
            G = b.width
            rows_all = flat[b.row_gather]                       # (rows, G)
            n_rows = len(rows_all)
            m_out = np.empty((n_rows, A, T), bool)
            ig_out = np.empty((n_rows, A, T), bool)
            avail = np.ones((len(b.crowd), A, T, G), bool)
            for r in range(len(b.rank_offsets) - 1):
                lo, hi = b.rank_offsets[r], b.rank_offsets[r + 1]
                n = hi - lo
                rows = rows_all[lo:hi][:, None, None, :]         # (n, 1, 1, G)
                cand = (rows >= thr) & avail[:n]                 # (n, A, T, G)
                reg = cand & b.not_ignored[:n, :, None, :]
                any_reg = reg.any(-1)
                sel = np.where(any_reg[..., None], reg, cand)
                vals = np.where(sel, rows, -1.0)
                best = G - 1 - vals[..., ::-1].argmax(-1)         # last maximum, as pycocotools
                matched = sel.any(-1)
                m_out[lo:hi] = matched
                ig_out[lo:hi] = matched & ~any_reg
                i, a, t = np.nonzero(matched)
                g = best[i, a, t]
                keep = ~b.crowd[i, g]                            # crowds stay matchable
                avail[i[keep], a[keep], t[keep], g[keep]] = False
            dtm[:, :, b.row_det] = m_out.transpose(1, 2, 0)
            dtig[:, :, b.row_det] = ig_out.transpose(1, 2, 0)
        lo, hi = self.area_rngs[:, 0:1], self.area_rngs[:, 1:2]
        out_of_range = (det_areas[None, :] < lo) | (det_areas[None, :] > hi)   # (A, E)
        dtig |= ~dtm & out_of_range[:, None, :]
        return dtm, dtig

    def accumulate(self, dtm: np.ndarray, dtig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``COCOeval.accumulate``: ``precision (T, R, K, A, M)`` and ``recall (T, K, A, M)``,
        float64, -1 where undefined."""
        T, R = len(self.iou_thrs), len(self.rec_thrs)
        K, A, M = self.n_categories, len(self.area_rngs), len(self.max_dets)
        precision = -np.ones((T, R, K, A, M))
        recall = -np.ones((T, K, A, M))
        eps = np.spacing(1)
        for k in range(K):
            if not self.cat_has_pairs[k]:
                continue
            a_ok = np.flatnonzero(self.npig[k] > 0)
            if len(a_ok) == 0:
                continue
            npig = self.npig[k, a_ok][:, None, None]
            for mi, m in enumerate(self.max_dets):
                o = self._acc_order[k, m]
                nd = len(o)
                if nd == 0:
                    recall[:, k, a_ok, mi] = 0
                    precision[:, :, k, a_ok, mi] = 0
                    continue
                dm, di = dtm[:, :, o][a_ok], dtig[:, :, o][a_ok]     # (a, T, nd)
                tp = np.cumsum(dm & ~di, axis=-1).astype(float)
                fp = np.cumsum(~dm & ~di, axis=-1).astype(float)
                rc = tp / npig
                pr = tp / (fp + tp + eps)
                pr = np.maximum.accumulate(pr[..., ::-1], axis=-1)[..., ::-1]
                recall[:, k, a_ok, mi] = rc[:, :, -1].T
                for ai, a in enumerate(a_ok):
                    for t in range(T):
                        inds = np.searchsorted(rc[ai, t], self.rec_thrs, side="left")
                        q = np.zeros(R)
                        ok = inds < nd
                        q[ok] = pr[ai, t, inds[ok]]
                        precision[t, :, k, a, mi] = q
        return precision, recall

    def summarize(self, precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
        """The 12 ``COCOeval.stats`` (fractions, -1 = undefined) from accumulate's arrays.

        Runs pycocotools' own ``summarize`` (silenced) so the averaging is theirs exactly.
        """
        ev = COCOeval(iouType="segm")
        ev.params = self.params
        ev.eval = {"params": self.params, "precision": precision, "recall": recall}
        with quiet():
            ev.summarize()
        return np.asarray(ev.stats, dtype=np.float64)

    def evaluate(self, ious: np.ndarray, det_areas: np.ndarray) -> np.ndarray:
        """Stats ``(12,)`` float64 (pycocotools scale, -1 = undefined) for these IoUs/areas."""
        return self.summarize(*self.accumulate(*self.match(ious, det_areas)))
