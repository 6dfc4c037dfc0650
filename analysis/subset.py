"""Restrict COCO-format results to a subset of their ground truth: its images and categories.

Paper Table 6 scores the same trained model on COCO val and on COCO-OCC, a subset of val's
images; partially-supervised models (ContrastMask) are scored on val's novel categories only
(``dcl_data.coco_subsets novel``). pycocotools refuses results on images or categories its
ground truth lacks, so the val predictions are first restricted to the subset's images and
categories; nothing else changes (ids, scores, masks). A subset with every category (COCO-OCC)
keeps every category's results.

CLI: ``python -m analysis.subset PREDICTIONS.json SUBSET_GT.json -o OUT.json``
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from .coco_format import CocoFormatError, _load_json
from .io import check_outputs, write_json_atomic

__all__ = ["restrict_to_subset"]


def restrict_to_subset(results: Any, subset_gt: Any) -> list[dict]:
    """The entries of ``results`` whose ``image_id`` is an image of ``subset_gt`` and whose
    ``category_id`` is one of its categories (all categories where it has no ``categories``).

    Args:
        results: a COCO results list, or a path to one.
        subset_gt: a COCO ground-truth dict (with ``images``), or a path to one.

    Returns:
        The kept entries, in their original order (possibly empty: a model may predict
        nothing on the subset, which the evaluation then scores as such).

    Raises:
        CocoFormatError: unreadable files, results that are not a list of objects with an
            ``image_id``, or a ground truth without an ``images`` list.
    """
    data, name = _load_json(results, "results")
    gt, gt_name = _load_json(subset_gt, "ground truth")
    if not isinstance(data, list):
        raise CocoFormatError(f"{name}: results must be a JSON list, got {type(data).__name__}")
    if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
        raise CocoFormatError(f"{gt_name}: ground truth has no 'images' list")
    keep = {img.get("id") for img in gt["images"] if isinstance(img, dict)}
    categories = gt.get("categories")
    kept_categories = ({c.get("id") for c in categories if isinstance(c, dict)}
                       if isinstance(categories, list) else None)
    out = []
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "image_id" not in r:
            raise CocoFormatError(f"{name}: entry {i} is not an object with an image_id")
        if r["image_id"] in keep and (kept_categories is None
                                      or r.get("category_id") in kept_categories):
            out.append(r)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.subset", description=__doc__.split("\n")[0])
    parser.add_argument("predictions", help="COCO results JSON on the full split")
    parser.add_argument("subset", help="COCO ground-truth JSON of the subset")
    parser.add_argument("-o", "--out", required=True, help="where to write the restricted results")
    args = parser.parse_args(argv)
    try:
        check_outputs([args.out], [args.predictions, args.subset])
        kept = restrict_to_subset(args.predictions, args.subset)
        write_json_atomic(args.out, kept)
    except (ValueError, OSError) as e:   # CocoFormatError is a ValueError
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"{len(kept)} results on the subset's images and categories -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
