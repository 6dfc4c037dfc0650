"""Bootstrap intervals for COCO AP: match every image once, re-accumulate for many resamples.

A 95% percentile interval of a COCO statistic comes from resampling the evaluation images with
replacement (B resamples, 1,000 by default, seeded) and recomputing the statistic on each
resample. Matching (``COCOeval.evaluate``) is per image, so it is done once; a resample only
changes how often each image counts. With ``w_i`` the number of times image ``i`` is drawn, the
sums over images in ``COCOeval.accumulate`` become weighted sums:

- the number of non-ignored ground truths of a (category, area range) is ``sum_i w_i npig_i``;
- the cumulative true/false positive counts along the score-sorted detections are cumulative
  sums of ``w_i`` (a detection of an image drawn twice counts twice, once not at all).

Everything else is pycocotools' ``accumulate`` and ``summarize`` (pycocotools 2.0, facts not
code): per (category, area range, maxDets) the detections of all images, each image's cut at
maxDets, stably sorted by descending score (ties in image order, then in the image's own score
order); precision ``tp / (tp + fp + eps)`` made monotone from the right; at each of the 101
recall thresholds ``r`` the precision at the first position whose recall ``tp / npig >= r``
(0 past the last); AP the mean over valid (IoU threshold, recall threshold, category) entries;
AR the mean final recall. A copy of an image ranks right after the original (image order is the
images' sorted ids, copies in a row), so weights ``0``/``1`` reproduce COCOeval exactly,
ties included. With weights >= 2 the copies of one image's tied detections of one category
count as consecutive (``d1 d1 d2 d2`` rather than ``d1 d2 d1 d2``). That changes nothing unless
such a tie mixes true and false positives (a run of true positives only reaches the same
states; false positives alone never raise precision): only an image drawn twice or more
whose detections of one category share a score across a hit and a miss can differ from the
brute-force resample, and only at the recall thresholds inside that tie.

Two evaluations of the same resample:

- :func:`accumulate` (exact, loops like pycocotools): ``precision``/``recall`` arrays for one
  weight vector, whose :func:`summarize` at all-ones weights equals ``COCOeval.stats`` bit for
  bit. Used for point estimates and as the tests' reference.
- :class:`Resampler` (fast): the 12 stats and per-class AP for B weight vectors at once. Only
  true-positive positions matter (the precision envelope at a recall threshold is the largest
  precision over positions with at least that recall, and a false positive never raises it), so
  false positives are folded into per-image counts between consecutive true positives, a sparse
  (positions x images) matrix; one sparse-dense product per chunk of resamples gives all
  weighted counts. Equal to :func:`accumulate` up to float summation order (~1e-15).

The paired bootstrap of a gain (DCL minus its baseline) uses the same weights for both runs:
:func:`resample_weights` depends only on the number of images and the seed, so every run on the
same split gets the same resamples.

Input comes from stock ``COCOeval.evaluate()`` (:meth:`MatchArrays.from_cocoeval`) or the error
analysis' own matching pass (:meth:`MatchArrays.from_layout`); :func:`save_matches` /
:func:`load_matches` keep them in an ``.npz`` beside a run's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping, Optional, Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval, Params

from analysis.coco_eval import STAT_NAMES, quiet

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MatchArrays",
    "Resampler",
    "accumulate",
    "summarize",
    "resample_weights",
    "METHODS",
    "interval",
    "percentile_interval",
    "save_matches",
    "load_matches",
]

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
#: (area label, maxDets index) of the AR stats, in ``STAT_NAMES`` order (pycocotools summarize).
_AR_COMBOS = (("all", 0), ("all", 1), ("all", 2), ("small", 2), ("medium", 2), ("large", 2))
_AREA_LABELS = ("all", "small", "medium", "large")
# Elements of one (positions x resamples) float64 work array; bounds the chunk of resamples.
_CHUNK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class MatchArrays:
    """One evaluation's per-image matching, as COCOeval's ``evalImgs`` hold it, in arrays.

    E = evaluated detections (at most maxDets[-1] per image and category), I images, K
    categories, A area ranges, T IoU thresholds.

    Attributes:
        iou_type: ``"segm"`` or ``"bbox"``.
        image_ids: ``(I,)`` int64 image ids, sorted (pycocotools' image order).
        category_ids: ``(K,)`` int64.
        iou_thrs: ``(T,)`` float64; rec_thrs: ``(R,)`` float64; area_rngs: ``(A, 2)`` float64
            pixel areas; area_labels: A names; max_dets: ``(M,)`` int64 (ascending).
        npig: ``(I, K, A)`` int64 non-ignored ground truths (not crowd, inside the area range).
        det_image, det_category: ``(E,)`` int64 indices into ``image_ids`` / ``category_ids``.
        det_rank: ``(E,)`` int64 position in its (image, category)'s score order.
        det_score: ``(E,)`` float64.
        dtm, dtig: ``(A, T, E)`` bool, matched (``dtMatches != 0``) and ignored (``dtIgnore``).
        category_names: K names (empty if unknown), for per-class AP.
    """

    iou_type: str
    image_ids: np.ndarray
    category_ids: np.ndarray
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    area_rngs: np.ndarray
    area_labels: tuple
    max_dets: np.ndarray
    npig: np.ndarray
    det_image: np.ndarray
    det_category: np.ndarray
    det_rank: np.ndarray
    det_score: np.ndarray
    dtm: np.ndarray
    dtig: np.ndarray
    category_names: tuple = ()

    def __post_init__(self):
        if tuple(self.area_labels) != _AREA_LABELS or len(self.max_dets) != 3:
            raise ValueError("bootstrap needs pycocotools' standard area ranges "
                             f"{_AREA_LABELS} and 3 maxDets, got {tuple(self.area_labels)} "
                             f"and {list(self.max_dets)}")

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    @classmethod
    def from_cocoeval(cls, ev: COCOeval) -> "MatchArrays":
        """From a ``COCOeval`` after ``evaluate()`` (its ``evalImgs``), any ``iouType`` but
        keypoints, with ``useCats`` on.

        Raises:
            ValueError: ``evaluate()`` has not run, or categories are off.
        """
        p = ev.params
        if not isinstance(getattr(ev, "evalImgs", None), list):
            raise ValueError("COCOeval.evaluate() has not run (no evalImgs)")
        if not p.useCats:
            raise ValueError("bootstrap needs COCOeval with useCats=1")
        n_img, n_cat, n_area = len(p.imgIds), len(p.catIds), len(p.areaRng)
        if len(ev.evalImgs) != n_img * n_cat * n_area:
            raise ValueError("COCOeval.evalImgs does not match its params; run evaluate() again")
        n_thr = len(p.iouThrs)
        npig = np.zeros((n_img, n_cat, n_area), np.int64)
        det_image, det_cat, det_rank, scores = [], [], [], []
        dtm = [[] for _ in range(n_area)]
        dtig = [[] for _ in range(n_area)]
        block = n_area * n_img
        for k in range(n_cat):
            for i in range(n_img):
                first = ev.evalImgs[k * block + i]
                if first is None:   # neither ground truth nor detection for (image, category)
                    continue
                n_det = len(first["dtScores"])
                for a in range(n_area):
                    e = ev.evalImgs[k * block + a * n_img + i]
                    npig[i, k, a] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
                    if n_det:
                        dtm[a].append(np.asarray(e["dtMatches"]).reshape(n_thr, n_det) != 0)
                        dtig[a].append(np.asarray(e["dtIgnore"], bool).reshape(n_thr, n_det))
                if n_det:
                    det_image.append(np.full(n_det, i))
                    det_cat.append(np.full(n_det, k))
                    det_rank.append(np.arange(n_det))
                    scores.append(np.asarray(first["dtScores"], np.float64))

        def cat(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        def stack(parts):
            if not parts[0]:
                return np.zeros((n_area, n_thr, 0), bool)
            return np.stack([np.concatenate(pa, axis=1) for pa in parts])

        cats = getattr(getattr(ev, "cocoGt", None), "cats", None) or {}
        names = tuple(str(cats[c].get("name", c)) for c in p.catIds) if cats else ()
        return cls(p.iouType, np.asarray(p.imgIds, np.int64), np.asarray(p.catIds, np.int64),
                   np.asarray(p.iouThrs, np.float64), np.asarray(p.recThrs, np.float64),
                   np.asarray(p.areaRng, np.float64), tuple(p.areaRngLbl),
                   np.asarray(sorted(p.maxDets), np.int64), npig,
                   cat(det_image, np.int64), cat(det_cat, np.int64), cat(det_rank, np.int64),
                   cat(scores, np.float64), stack(dtm), stack(dtig), names)

    @classmethod
    def from_layout(cls, layout, gt, dtm: np.ndarray, dtig: np.ndarray) -> "MatchArrays":
        """From the error analysis' matching (:class:`analysis.seg_errors.fast_eval.EvalLayout`
        and the ``(dtm, dtig)`` of its ``match``), e.g. for corrected predictions.

        Args:
            layout: the ``EvalLayout`` of ``gt`` and the results.
            gt: the :class:`analysis.coco_format.GroundTruth` it was built from.
            dtm, dtig: ``(A, T, E)`` bool from ``layout.match``.
        """
        p = layout.params
        n_img, n_cat, n_area = layout.n_images, layout.n_categories, len(layout.area_rngs)
        gt_img = np.searchsorted(gt.image_ids, gt.ann_image_ids)
        gt_cat = np.searchsorted(gt.category_ids, gt.ann_category_ids)
        lo, hi = layout.area_rngs[:, 0:1], layout.area_rngs[:, 1:2]
        areas = gt.ann_areas[None, :]
        kept = ~(gt.ann_iscrowd[None, :] | (areas < lo) | (areas > hi))     # (A, N)
        npig = np.zeros((n_img, n_cat, n_area), np.int64)
        for a in range(n_area):
            np.add.at(npig[:, :, a], (gt_img[kept[a]], gt_cat[kept[a]]), 1)
        det_pair = layout.det_pair
        return cls("segm", np.asarray(gt.image_ids, np.int64),
                   np.asarray(gt.category_ids, np.int64), layout.iou_thrs, layout.rec_thrs,
                   layout.area_rngs, tuple(p.areaRngLbl), np.asarray(layout.max_dets, np.int64),
                   npig, layout.pair_image[det_pair].astype(np.int64),
                   layout.pair_category[det_pair].astype(np.int64),
                   np.asarray(layout.det_rank, np.int64), np.asarray(layout.scores, np.float64),
                   np.asarray(dtm, bool), np.asarray(dtig, bool),
                   tuple(str({c["id"]: c["name"] for c in gt.categories}[int(c)])
                         for c in gt.category_ids))

    def accumulate_order(self) -> np.ndarray:
        """``(E,)`` detection indices in accumulate's order: category, then descending score,
        then image, then the image's own score order."""
        return np.lexsort((self.det_rank, self.det_image, -self.det_score, self.det_category))


def _params(m: MatchArrays) -> Params:
    p = Params(iouType=m.iou_type)
    p.iouThrs, p.recThrs = m.iou_thrs, m.rec_thrs
    p.areaRng, p.areaRngLbl = m.area_rngs.tolist(), list(m.area_labels)
    p.maxDets = [int(x) for x in m.max_dets]
    p.catIds, p.imgIds = m.category_ids.tolist(), m.image_ids.tolist()
    return p


def accumulate(m: MatchArrays, weights: Optional[np.ndarray] = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """``COCOeval.accumulate`` on the images weighted by ``weights`` (exact reference path).

    Args:
        m: the matching.
        weights: ``(I,)`` non-negative integer counts per image (default all ones).

    Returns:
        ``precision (T, R, K, A, M)`` and ``recall (T, K, A, M)`` float64, -1 where undefined,
        as pycocotools' ``eval["precision"]`` / ``eval["recall"]``.
    """
    n_img, n_cat = m.n_images, len(m.category_ids)
    w = np.ones(n_img, np.int64) if weights is None else np.asarray(weights, np.int64)
    if w.shape != (n_img,) or (w < 0).any():
        raise ValueError(f"weights must be ({n_img},) non-negative integers")
    T, R, A, M = len(m.iou_thrs), len(m.rec_thrs), len(m.area_rngs), len(m.max_dets)
    precision = -np.ones((T, R, n_cat, A, M))
    recall = -np.ones((T, n_cat, A, M))
    npig_w = np.einsum("i,ika->ka", w, m.npig)
    order = m.accumulate_order()
    bounds = np.searchsorted(m.det_category[order], np.arange(n_cat + 1))
    eps = np.spacing(1)
    for k in range(n_cat):
        det_k = order[bounds[k]:bounds[k + 1]]
        for a in range(A):
            npig = npig_w[k, a]
            if npig == 0:
                continue
            for mi, max_det in enumerate(m.max_dets):
                sel = det_k[m.det_rank[det_k] < max_det]
                wd = w[m.det_image[sel]]
                dtm, dtig = m.dtm[a][:, sel], m.dtig[a][:, sel]
                tp_sum = np.cumsum((dtm & ~dtig) * wd, axis=1).astype(np.float64)
                fp_sum = np.cumsum((~dtm & ~dtig) * wd, axis=1).astype(np.float64)
                nd = len(sel)
                for t in range(T):
                    tp, fp = tp_sum[t], fp_sum[t]
                    rc = tp / npig
                    pr = tp / (fp + tp + eps)
                    recall[t, k, a, mi] = rc[-1] if nd else 0
                    q = np.zeros(R)
                    if nd:
                        pr = np.maximum.accumulate(pr[::-1])[::-1]
                        inds = np.searchsorted(rc, m.rec_thrs, side="left")
                        ok = inds < nd
                        q[ok] = pr[inds[ok]]
                    precision[t, :, k, a, mi] = q
    return precision, recall


def summarize(m: MatchArrays, precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """The 12 ``COCOeval.stats`` (fractions, -1 undefined), by pycocotools' own summarize."""
    ev = COCOeval(iouType=m.iou_type)
    ev.params = _params(m)
    ev.eval = {"params": ev.params, "precision": precision, "recall": recall}
    with quiet():
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)


def resample_weights(n_images: int, n_resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> np.ndarray:
    """``(B, I)`` int64 counts: row b says how often each image is drawn in resample b (I draws
    with replacement, ``numpy.random.default_rng(seed)``). Same (I, B, seed), same weights,
    so two runs on one split are paired."""
    if n_images < 1 or n_resamples < 1:
        raise ValueError(f"need >= 1 image and >= 1 resample, got {n_images}, {n_resamples}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(n_resamples, n_images))
    flat = (np.arange(n_resamples)[:, None] * n_images + draws).ravel()
    return np.bincount(flat, minlength=n_resamples * n_images).reshape(n_resamples, n_images)


class Resampler:
    """The 12 stats and per-class AP of one matching for many weight vectors at once.

    Built once per :class:`MatchArrays` (the sparse layout of true-positive positions and the
    false positives between them); :meth:`stats` then takes ``(B, I)`` weights.
    """

    def __init__(self, m: MatchArrays):
        from scipy import sparse  # only the bootstrap needs it

        self.m = m
        A, T, K = len(m.area_rngs), len(m.iou_thrs), len(m.category_ids)
        n_img = m.n_images
        self.shape = (A, T, K)
        if len(m.det_rank) and m.det_rank.max() >= m.max_dets[-1]:
            raise ValueError("detections beyond maxDets[-1] in the matching")
        order = m.accumulate_order()
        img_o, cat_o, rank_o = m.det_image[order], m.det_category[order], m.det_rank[order]
        col_img, col_group, fp_col, fp_img = [], [], [], []
        rec_rows, rec_img = [], []
        n_cols = 0
        a_index = {lbl: i for i, lbl in enumerate(m.area_labels)}
        for a in range(A):
            for t in range(T):
                nonig = ~m.dtig[a, t][order]
                matched = m.dtm[a, t][order]
                tp = matched & nonig
                fp = ~matched & nonig
                tp_idx = np.flatnonzero(tp)
                n_tp = len(tp_idx)
                col_img.append(img_o[tp_idx])
                col_group.append((a * T + t) * K + cat_o[tp_idx])
                # A false positive lowers the precision of the next true positive of its
                # category; those after the category's last true positive change nothing.
                fp_idx = np.flatnonzero(fp)
                nxt = (np.cumsum(tp) - tp)[fp_idx]
                ok = nxt < n_tp
                ok[ok] = cat_o[tp_idx[nxt[ok]]] == cat_o[fp_idx[ok]]
                fp_col.append(n_cols + nxt[ok])
                fp_img.append(img_o[fp_idx[ok]])
                n_cols += n_tp
                for c, (lbl, mi) in enumerate(_AR_COMBOS):
                    if a_index[lbl] != a:
                        continue
                    keep = tp_idx[rank_o[tp_idx] < m.max_dets[mi]]
                    rec_rows.append((c * T + t) * K + cat_o[keep])
                    rec_img.append(img_o[keep])
        self.col_img = np.concatenate(col_img)
        self.col_group = np.concatenate(col_group)
        n_groups = A * T * K
        self.group_start = np.searchsorted(self.col_group, np.arange(n_groups + 1))
        fp_col, fp_img = np.concatenate(fp_col), np.concatenate(fp_img)
        self.fp = sparse.csr_matrix((np.ones(len(fp_col)), (fp_col, fp_img)),
                                    shape=(n_cols, n_img))
        self.fp.sum_duplicates()
        rec_rows, rec_img = np.concatenate(rec_rows), np.concatenate(rec_img)
        self.tp_total = sparse.csr_matrix((np.ones(len(rec_rows)), (rec_rows, rec_img)),
                                          shape=(len(_AR_COMBOS) * T * K, n_img))
        self.tp_total.sum_duplicates()
        self.nonempty = np.flatnonzero(np.diff(self.group_start) > 0)
        starts = self.group_start[self.nonempty]
        self.starts = starts
        is_start = np.zeros(n_cols, bool)
        is_start[starts] = True
        self.is_start = is_start
        # Column -> index of its group's start column minus one (-1: none before).
        self.col_base = np.repeat(starts - 1, np.diff(self.group_start)[self.nonempty])
        self.n_cols = n_cols

    def _chunk(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.m
        A, T, K = self.shape
        R = len(m.rec_thrs)
        wt = np.ascontiguousarray(w.T, dtype=np.float64)               # (I, b)
        b = wt.shape[1]
        npig_w = (m.npig.reshape(m.n_images, K * A).T.astype(np.float64) @ wt)  # (K*A, b)
        npig_w = npig_w.reshape(K, A, b)
        psum = np.zeros((A, T, K, b))
        if self.n_cols:
            tp = np.cumsum(wt[self.col_img], axis=0)
            fp = np.cumsum(self.fp @ wt, axis=0)
            has_base = self.col_base >= 0
            tp[has_base] -= tp[self.col_base[has_base]]
            fp[has_base] -= fp[self.col_base[has_base]]
            pr = tp / (fp + tp + np.spacing(1))
            grp = self.col_group
            a_of, rest = np.divmod(grp, T * K)
            k_of = rest % K
            npig_col = npig_w[k_of, a_of]                              # (n_cols, b)
            with np.errstate(divide="ignore", invalid="ignore"):
                rc = np.where(npig_col > 0, tp / npig_col, 0.0)
            del tp, fp, npig_col
            for s, e in zip(self.starts, self.group_start[self.nonempty + 1]):
                pr[s:e] = np.maximum.accumulate(pr[s:e][::-1], axis=0)[::-1]
            # Recall thresholds a position answers: those in (previous recall, its recall].
            cnt = np.searchsorted(m.rec_thrs, rc, side="right")
            n_thr = np.diff(cnt, axis=0, prepend=0)
            n_thr[self.is_start] = cnt[self.is_start]
            sums = np.add.reduceat(pr * n_thr, self.starts, axis=0)     # (nonempty, b)
            psum.reshape(A * T * K, b)[self.nonempty] = sums
        valid = npig_w > 0                                              # (K, A, b)
        stats = np.full((b, len(STAT_NAMES)), np.nan)
        all_a = 0
        t50 = np.flatnonzero(m.iou_thrs == 0.5)
        t75 = np.flatnonzero(m.iou_thrs == 0.75)
        for j, (a, ts) in enumerate([(all_a, slice(None)), (all_a, t50), (all_a, t75),
                                     (1, slice(None)), (2, slice(None)), (3, slice(None))]):
            v = valid[:, a, :]                                          # (K, b)
            num = (psum[a][ts] * v[None]).sum(axis=(0, 1))
            n_t = psum[a][ts].shape[0]
            den = v.sum(axis=0) * n_t * R
            with np.errstate(invalid="ignore", divide="ignore"):
                stats[:, j] = np.where(den > 0, num / den, np.nan)
        tp_total = (self.tp_total @ wt).reshape(len(_AR_COMBOS), T, K, b)
        a_index = {lbl: i for i, lbl in enumerate(m.area_labels)}
        for c, (lbl, _) in enumerate(_AR_COMBOS):
            a = a_index[lbl]
            v = valid[:, a, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                rc = np.where(v[None], tp_total[c] / npig_w[None, :, a, :], 0.0)
            den = v.sum(axis=0) * T
            with np.errstate(invalid="ignore", divide="ignore"):
                stats[:, 6 + c] = np.where(den > 0, rc.sum(axis=(0, 1)) / den, np.nan)
        v = valid[:, all_a, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(v, psum[all_a].sum(axis=0) / (T * R), np.nan).T   # (b, K)
        return stats * 100.0, per_class * 100.0

    def stats(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stats of the images weighted by each row of ``weights``.

        Args:
            weights: ``(B, I)`` non-negative integer counts (e.g. :func:`resample_weights`).

        Returns:
            ``(B, 12)`` float64 stats in :data:`analysis.coco_eval.STAT_NAMES` order and
            ``(B, K)`` per-class AP (area all, maxDets 100), both x100, ``nan`` where
            undefined (no ground truth drawn for it).
        """
        w = np.asarray(weights)
        if w.ndim != 2 or w.shape[1] != self.m.n_images:
            raise ValueError(f"weights must be (B, {self.m.n_images}), got {w.shape}")
        chunk = max(1, min(len(w), _CHUNK_ELEMENTS // max(self.n_cols, 1)))
        parts = [self._chunk(w[lo:lo + chunk]) for lo in range(0, len(w), chunk)]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


#: Interval methods: ``percentile`` (the resampled values' 2.5th and 97.5th percentiles) and
#: ``basic`` (``2 * estimate`` minus them, reversed: corrects the resampling's bias to first
#: order). COCO AP's resampled values sit above the estimate (the precision envelope takes
#: maxima over a noisier curve): on 300 synthetic images by about 3.6 of their standard
#: deviations, so a percentile interval can exclude its own estimate; a paired gain's bias
#: mostly cancels (-0.03 AP there). See bench/bench_bootstrap.py.
METHODS = ("percentile", "basic")


def interval(samples: np.ndarray, estimate=None, method: str = "percentile",
             level: float = 0.95) -> np.ndarray:
    """``(..., 2)`` interval over axis 0 of ``samples`` by ``method`` (see :data:`METHODS`);
    ``basic`` needs the ``estimate`` (shape ``samples.shape[1:]``)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    ci = percentile_interval(samples, level)
    if method == "percentile":
        return ci
    if estimate is None:
        raise ValueError("the basic interval needs the estimate")
    est = np.asarray(estimate, np.float64)[..., None]
    return 2.0 * est - ci[..., ::-1]


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """``(..., 2)`` percentile interval over axis 0 of ``samples`` (nan-ignoring; nan where
    every resample is undefined)."""
    q = 50.0 * (1.0 - level)
    s = np.asarray(samples, np.float64)
    out = np.full(s.shape[1:] + (2,), np.nan)
    ok = ~np.isnan(s).all(axis=0)
    if ok.any():
        out[ok] = np.moveaxis(np.nanpercentile(s[:, ok], [q, 100.0 - q], axis=0), 0, -1)
    return out


_TEXT_FIELDS = ("iou_type", "area_labels", "category_names")
_ARRAY_FIELDS = [f.name for f in fields(MatchArrays) if f.name not in _TEXT_FIELDS]


def save_matches(path, matches: Mapping[str, MatchArrays]) -> None:
    """Write ``{name: MatchArrays}`` (e.g. ``segm``, ``bbox``) to one compressed ``.npz``,
    atomically."""
    from analysis.io import atomic_path

    arrays = {}
    for name, m in matches.items():
        if "/" in name:
            raise ValueError(f"bad name {name!r}")
        arrays[f"{name}/iou_type"] = np.array(m.iou_type)
        arrays[f"{name}/area_labels"] = np.array(m.area_labels, dtype=str)
        arrays[f"{name}/category_names"] = np.array(m.category_names, dtype=str)
        for f in _ARRAY_FIELDS:
            arrays[f"{name}/{f}"] = getattr(m, f)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_matches(path) -> dict[str, MatchArrays]:
    """Read what :func:`save_matches` wrote."""
    with np.load(path, allow_pickle=False) as z:
        names = sorted({k.split("/", 1)[0] for k in z.files})
        return {n: MatchArrays(iou_type=str(z[f"{n}/iou_type"]),
                               area_labels=tuple(str(x) for x in z[f"{n}/area_labels"]),
                               category_names=tuple(str(x) for x in z[f"{n}/category_names"]),
                               **{f: z[f"{n}/{f}"] for f in _ARRAY_FIELDS})
                for n in names}


def interval_dict(samples: np.ndarray, names: Sequence[str], estimate=None,
                  method: str = "percentile", level: float = 0.95) -> dict:
    """``{name: [lo, hi]}`` (None for undefined) of the columns of ``(B, len(names))``, by
    :func:`interval`."""
    ci = interval(samples, estimate, method, level)
    return {n: (None if np.isnan(ci[j]).any() else [float(ci[j, 0]), float(ci[j, 1])])
            for j, n in enumerate(names)}
