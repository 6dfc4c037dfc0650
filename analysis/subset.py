"""Restrict COCO-format results to the images of a subset of their ground truth (COCO-OCC).

Paper Table 6 scores the same trained model on COCO val and on COCO-OCC, a subset of val's
images. pycocotools refuses results on images its ground truth lacks, so the val predictions
are first restricted to the subset's images; nothing else changes (ids, scores, masks).

CLI: ``python -m analysis.subset PREDICTIONS.json SUBSET_GT.json -o OUT.json``
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from .coco_eval import CocoFormatError, _load_json
from .io import input_overwritten_by, write_json_atomic

__all__ = ["restrict_to_images"]


def restrict_to_images(results: Any, subset_gt: Any) -> list[dict]:
    """The entries of ``results`` whose ``image_id`` is an image of ``subset_gt``.

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
    out = []
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "image_id" not in r:
            raise CocoFormatError(f"{name}: entry {i} is not an object with an image_id")
        if r["image_id"] in keep:
            out.append(r)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.subset", description=__doc__.split("\n")[0])
    parser.add_argument("predictions", help="COCO results JSON on the full split")
    parser.add_argument("subset", help="COCO ground-truth JSON of the subset")
    parser.add_argument("-o", "--out", required=True, help="where to write the restricted results")
    args = parser.parse_args(argv)
    if hit := input_overwritten_by(args.out, [args.predictions, args.subset]):
        print(f"error: -o {args.out} is an input ({hit}); write to another file", file=sys.stderr)
        return 2
    try:
        kept = restrict_to_images(args.predictions, args.subset)
    except CocoFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_json_atomic(args.out, kept)
    print(f"{len(kept)} results on the subset's images -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
