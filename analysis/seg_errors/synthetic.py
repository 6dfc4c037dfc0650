"""Synthetic COCO-format ground truth and results, for tests and the benchmark.

Ground truths are random star-shaped polygons (irregular blobs, COCO-like polygon
annotations) with a long-tailed category distribution and about 1 % crowd regions stored as
uncompressed RLE, as in COCO. Predictions perturb the ground-truth shapes (shifted, scaled,
re-jittered outlines; sometimes the wrong category) the way a detector's masks miss and spill
over, plus background false positives, as compressed RLE with scores. Deterministic in ``seed``.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["make_synthetic_coco"]


def _blob(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float,
          n_vertices: int, jitter: float) -> list[float]:
    ang = np.sort(rng.uniform(0.0, 2 * np.pi, n_vertices))
    rad = np.clip(1.0 + jitter * rng.standard_normal(n_vertices), 0.3, 2.0)
    xy = np.stack([cx + rx * rad * np.cos(ang), cy + ry * rad * np.sin(ang)], axis=1)
    return np.round(xy, 2).ravel().tolist()


def _uncompressed(rle: dict) -> dict:
    m = mask_utils.decode(rle).ravel(order="F")
    change = np.flatnonzero(np.diff(m.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], change, [m.size]])).tolist()
    if m[0]:
        runs = [0] + runs
    return {"size": list(rle["size"]), "counts": [int(r) for r in runs]}


def make_synthetic_coco(n_images: int, *, seed: int = 0, n_categories: int = 80,
                        gts_per_image: float = 7.0, dets_per_image: int = 100,
                        sizes: tuple[tuple[int, int], ...] = ((480, 640), (640, 480)),
                        radius: tuple[float, float] = (6.0, 180.0), crowd_fraction: float = 0.01,
                        true_fraction: float = 0.85) -> tuple[dict, list[dict]]:
    """Build ``(ground_truth_dict, results_list)`` in COCO format.

    Args:
        n_images: number of images (ids 1..n).
        seed: random seed; same seed, same data.
        n_categories: categories 1..n, drawn with probability ~ 1/rank.
        gts_per_image: mean (Poisson) number of ground truths per image (at least 1).
        dets_per_image: predictions per image.
        sizes: image (height, width) choices, pixels.
        radius: log-uniform range of object radii, pixels.
        crowd_fraction: probability that a ground truth is a crowd region.
        true_fraction: share of predictions that perturb a ground truth (others: background).

    Returns:
        The ground truth (``images``, ``annotations`` with polygon or uncompressed-RLE
        ``segmentation``, ``area`` = mask area, ``bbox``, ``iscrowd``; ``categories``) and the
        results (``image_id``, ``category_id``, compressed-RLE ``segmentation`` with str
        counts, ``score``).
    """
    rng = np.random.default_rng(seed)
    cat_p = 1.0 / np.arange(1, n_categories + 1)
    cat_p /= cat_p.sum()
    lo, hi = np.log(radius[0]), np.log(radius[1])
    images, anns, results = [], [], []
    ann_id = 1
    for img_id in range(1, n_images + 1):
        h, w = sizes[int(rng.integers(len(sizes)))]
        images.append({"id": img_id, "height": h, "width": w, "file_name": f"{img_id:06d}.jpg"})
        objects = []
        for _ in range(max(1, int(rng.poisson(gts_per_image)))):
            r = float(np.exp(rng.uniform(lo, hi)))
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            ry = r * rng.uniform(0.5, 1.5)
            poly = _blob(rng, cx, cy, r, ry, 24, 0.1)
            cat = int(rng.choice(n_categories, p=cat_p)) + 1
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
            area = float(mask_utils.area(rle))
            if area < 1:
                continue
            crowd = bool(rng.random() < crowd_fraction)
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat,
                         "segmentation": _uncompressed(rle) if crowd else [poly],
                         "area": area, "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                         "iscrowd": int(crowd)})
            ann_id += 1
            objects.append((cx, cy, r, ry, cat))
        for _ in range(dets_per_image):
            if objects and rng.random() < true_fraction:
                cx, cy, r, ry, cat = objects[int(rng.integers(len(objects)))]
                s = rng.normal(1.0, 0.2)
                poly = _blob(rng, cx + rng.normal(0, 0.15 * r), cy + rng.normal(0, 0.15 * ry),
                             r * s, ry * s, 20, 0.15)
                if rng.random() < 0.1:
                    cat = int(rng.choice(n_categories, p=cat_p)) + 1
                score = float(rng.beta(2, 2))
            else:
                r = float(np.exp(rng.uniform(lo, np.log(max(radius[0] + 1, radius[1] * 2 / 3)))))
                poly = _blob(rng, rng.uniform(0, w), rng.uniform(0, h), r,
                             r * rng.uniform(0.5, 1.5), 20, 0.15)
                cat = int(rng.choice(n_categories, p=cat_p)) + 1
                score = float(rng.beta(1, 4))
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
            results.append({"image_id": img_id, "category_id": cat,
                            "segmentation": {"size": [h, w],
                                             "counts": rle["counts"].decode("ascii")},
                            "score": round(score, 4)})
    gt = {"info": {"description": f"synthetic COCO-format data, seed {seed}"},
          "images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"class{c}", "supercategory": "synthetic"}
                         for c in range(1, n_categories + 1)]}
    return gt, results
