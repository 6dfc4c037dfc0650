"""The segmentation error analysis (paper Section 3, Eq. 1-2): compute, don't report.

:func:`analyze_errors` returns a plain dict (the structure of ``OUT.json``)::

    {"baseline":  {AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl},
     "corrected": {type: {...same 12 stats...}},
     "delta":     {type: {...corrected - baseline...}},
     "counts":    {...}, "settings": {...}}

Stats are x100; ``nan`` marks stats that are undefined (pycocotools' -1); a delta is ``nan`` if
either side is. Deltas are not clipped (a "fix" can lower AP, e.g. FN on a wrong match).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterable

import numpy as np

from analysis.coco_eval import STAT_NAMES, stats_to_dict
from analysis.coco_format import GroundTruth, Results, load_ground_truth, load_results
from analysis.seg_errors.corrections import MODES, Chunk, ChunkResult, process_chunk
from analysis.seg_errors.error_types import DEFAULT_TYPES, ErrorType, parse_error_types
from analysis.seg_errors.fast_eval import EvalLayout
from analysis.workers import cap_jobs

__all__ = ["analyze_errors", "DEFAULT_IOU_THRESHOLD"]

DEFAULT_IOU_THRESHOLD = 0.1
# Chunks per worker: small enough to balance uneven images, large enough to keep the
# per-task pickling overhead low.
_CHUNKS_PER_JOB = 4


def _make_chunks(gt: GroundTruth, res: Results, layout: EvalLayout, types: list[ErrorType],
                 mode: str, thr: float, exact: bool, n_chunks: int) -> tuple[list, list]:
    """Consecutive-image chunks of about equal work; also each chunk's first gt position."""
    n_img = layout.n_images
    det_per_image = np.bincount(layout.pair_image, weights=layout.pair_det_count,
                                minlength=n_img)
    gt_img = np.searchsorted(gt.image_ids, gt.ann_image_ids)
    gt_cat = np.searchsorted(gt.category_ids, gt.ann_category_ids)
    by_image = np.argsort(gt_img, kind="stable")  # file order inside an image
    gt_bounds = np.searchsorted(gt_img[by_image], np.arange(n_img + 1))
    local = np.empty(len(by_image), np.int64)     # position of each gt inside its image
    local[by_image] = np.arange(len(by_image)) - gt_bounds[gt_img[by_image]]
    work = np.cumsum(det_per_image + np.diff(gt_bounds))
    total = work[-1] if n_img else 0
    cuts = sorted({0, n_img} | {int(np.searchsorted(work, total * c / n_chunks, side="right"))
                                for c in range(1, n_chunks)})
    chunks, gt_base = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi <= lo:
            continue
        sizes, g_rles, g_crowd, g_cat, dets, d_cat, pairs = [], [], [], [], [], [], []
        for i in range(lo, hi):
            g_idx = by_image[gt_bounds[i]:gt_bounds[i + 1]]
            sizes.append(gt.image_sizes[int(gt.image_ids[i])])
            g_rles.append([gt.ann_rles[g] for g in g_idx])
            g_crowd.append(gt.ann_iscrowd[g_idx].tolist())
            g_cat.append(gt_cat[g_idx].tolist())
            p_lo, p_hi = layout.image_pair_start[i], layout.image_pair_start[i + 1]
            e_lo = layout.pair_det_start[p_lo] if p_hi > p_lo else 0
            e_hi = e_lo + int(layout.pair_det_count[p_lo:p_hi].sum())
            dets.append([res.rles[j] for j in layout.det_index[e_lo:e_hi]])
            d_cat.append(np.repeat(layout.pair_category[p_lo:p_hi],
                                   layout.pair_det_count[p_lo:p_hi]).tolist())
            img_pairs = []
            for p in range(p_lo, p_hi):
                gs, gc = layout.pair_gt_start[p], layout.pair_gt_count[p]
                img_pairs.append((int(layout.pair_det_count[p]),
                                  local[layout.gt_order[gs:gs + gc]].tolist()))
            pairs.append(img_pairs)
        p_lo, p_hi = layout.image_pair_start[lo], layout.image_pair_start[hi]
        n_iou = int(layout.pair_iou_start[p_hi] - layout.pair_iou_start[p_lo])
        n_det = int(layout.pair_det_count[p_lo:p_hi].sum())
        chunks.append(Chunk(sizes, g_rles, g_crowd, g_cat, dets, d_cat, pairs, n_iou, n_det,
                            types, mode, thr, exact))
        gt_base.append(int(gt_bounds[lo]))
    return chunks, gt_base


# State that forked workers inherit instead of receiving it pickled (the RLE strings of a
# COCO-val-scale result file are hundreds of MB); only set while a fork pool runs.
_SHARED: dict = {}


def _chunk_worker(i: int) -> ChunkResult:
    return process_chunk(_SHARED["chunks"][i])


def _eval_worker(arrays: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return _SHARED["layout"].evaluate(*arrays)


def _fork_context():
    """The 'fork' start method on Linux (cheap copy-on-write sharing), else None."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def _delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in STAT_NAMES}  # nan propagates


def analyze_errors(gt: Any, dt: Any, *, types: Iterable[str | ErrorType] = DEFAULT_TYPES,
                   mode: str = "paper", iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                   jobs: int = 1, on_unknown: str = "error", exact: bool = False,
                   matches: dict | None = None) -> dict:
    """Delta AP of each segmentation error type (paper Eq. 2) for COCO-format results.

    Args:
        gt: COCO ground truth: path, parsed dict, or :class:`analysis.coco_format.GroundTruth`.
        dt: COCO results: path, parsed list, or :class:`analysis.coco_format.Results`.
            Segmentations may be polygons or RLE; ``bbox``/``area`` are optional and ignored.
        types: error types to correct, names such as ``"fFP"``, ``"bFP"``, ``"FN"``,
            ``"fFP+bFP"`` or :class:`~.error_types.ErrorType` objects.
        mode: ``"paper"`` (default, paper Section 3) or ``"authors"`` (the authors' script:
            unmatched predictions corrected too, against the image's last ground truth; see
            :mod:`analysis.seg_errors.corrections`).
        iou_threshold: minimum mask IoU for a prediction to match a ground truth (paper: 0.1).
        jobs: worker processes for the per-image work and the evaluations (1 = in this
            process), at most one per usable CPU (:func:`analysis.workers.cap_jobs`; the
            number used is ``settings["jobs"]``). On Linux they are forked and share the
            inputs without pickling.
        on_unknown: ``"error"`` or ``"skip"`` for results with unknown image/category ids.
        exact: build every corrected mask with RLE operations instead of deriving corrected
            IoUs from pixel counts where that is exact (same numbers, slower; for checking).
        matches: if given, receives the per-image matching of the baseline (``"baseline"``)
            and of each corrected evaluation (by type name) as
            :class:`analysis.bootstrap.MatchArrays`, for bootstrap intervals of Delta AP.

    Returns:
        dict with ``baseline``, ``corrected``, ``delta`` (12 stats x100 each, see module doc),
        ``counts`` and ``settings``.

    Raises:
        analysis.coco_format.CocoFormatError: bad input files (named, with the entry at fault).
        ValueError: bad arguments (unknown type or mode, threshold outside (0, 1], jobs < 1).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not (0.0 < float(iou_threshold) <= 1.0):
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs!r}")
    error_types = parse_error_types(types)
    jobs = cap_jobs(jobs)
    t0 = time.perf_counter()
    g = gt if isinstance(gt, GroundTruth) else load_ground_truth(gt)
    r = dt if isinstance(dt, Results) else load_results(dt, g, on_unknown=on_unknown)
    t_load = time.perf_counter()

    layout = EvalLayout(g, r)
    n_chunks = 1 if jobs == 1 else jobs * _CHUNKS_PER_JOB
    chunks, gt_base = _make_chunks(g, r, layout, error_types, mode, float(iou_threshold),
                                   bool(exact), n_chunks)
    ctx = _fork_context() if jobs > 1 and len(chunks) > 1 else None
    pool = None
    try:
        if jobs == 1 or len(chunks) <= 1:
            parts: list[ChunkResult] = [process_chunk(c) for c in chunks]
        elif ctx is not None:
            _SHARED.update(chunks=chunks, layout=layout)
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=ctx)
            parts = list(pool.map(_chunk_worker, range(len(chunks))))
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(chunks))) as spawn_pool:
                parts = list(spawn_pool.map(process_chunk, chunks))
        t_fix = time.perf_counter()

        def cat(get) -> np.ndarray:
            arrs = [get(p) for p in parts]
            return np.concatenate(arrs).astype(np.float64, copy=False) if arrs else np.zeros(0)

        match = np.concatenate([np.where(p.match >= 0, p.match + b, -1)
                                for p, b in zip(parts, gt_base)] or [np.zeros(0, np.int64)])
        inputs = [(cat(lambda p: p.ious), cat(lambda p: p.areas))]
        inputs += [(cat(lambda p, n=t.name: p.fixed_ious[n]),
                    cat(lambda p, n=t.name: p.fixed_areas[n])) for t in error_types]
        if pool is not None:
            stats = list(pool.map(_eval_worker, inputs))
        else:
            stats = [layout.evaluate(*a) for a in inputs]
    finally:
        if pool is not None:
            pool.shutdown()
        _SHARED.clear()
    if matches is not None:
        from analysis.bootstrap import MatchArrays
        for name, arrays in zip(["baseline"] + [t.name for t in error_types], inputs):
            matches[name] = MatchArrays.from_layout(layout, g, *layout.match(*arrays))
    baseline = stats_to_dict(stats[0])
    corrected = {t.name: stats_to_dict(st) for t, st in zip(error_types, stats[1:])}
    delta = {n: _delta(c, baseline) for n, c in corrected.items()}
    t_eval = time.perf_counter()

    pixels = {k: int(sum(p.pixels[k] for p in parts)) for k in ("fFP", "bFP", "FN")}
    n_matched = int((match >= 0).sum())
    counts = {
        "images": int(layout.n_images),
        "categories": int(layout.n_categories),
        "ground_truths": int(g.num_annotations),
        "crowd_ground_truths": int(g.ann_iscrowd.sum()),
        "ground_truth_area_filled": int(g.n_area_filled),
        "prediction_entries": int(r.n_entries),
        "skipped_unknown_ids": int(r.n_skipped_unknown),
        "predictions": int(len(r)),
        "evaluated_predictions": int(layout.n_evaluated),
        "beyond_max_dets": int(layout.n_beyond_max_dets),
        "matched": n_matched,
        "unmatched": int(layout.n_evaluated - n_matched),
        "matched_ground_truths": int(len(np.unique(match[match >= 0]))),
        "error_pixels": pixels,
        "corrected_with_rle_masks": int(sum(p.n_exact for p in parts)),
    }
    if mode == "authors":
        counts["unmatched_corrected"] = int(sum(p.n_targets_unmatched for p in parts))
        counts["error_pixels_unmatched"] = {
            k: int(sum(p.pixels_unmatched[k] for p in parts)) for k in ("fFP", "bFP", "FN")}
    settings = {
        "mode": mode,
        "iou_threshold": float(iou_threshold),
        "types": [t.name for t in error_types],
        "max_dets": int(layout.max_dets[-1]),
        "exact": bool(exact),
        "jobs": jobs,
        "gt": g.source,
        "dt": r.source,
        "seconds": {"load": round(t_load - t0, 3), "match_and_fix": round(t_fix - t_load, 3),
                    "evaluate": round(t_eval - t_fix, 3), "total": round(t_eval - t0, 3)},
        "cpu_count": os.cpu_count(),
    }
    return {"baseline": baseline, "corrected": corrected, "delta": delta,
            "counts": counts, "settings": settings}
