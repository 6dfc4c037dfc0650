"""``dcl-seg-errors GT.json DT.json -o OUT.json``: the paper's segmentation error analysis.

Also ``python -m analysis.seg_errors``. Prints a summary on stdout, writes OUT.json atomically,
and on bad input exits with status 1 and a one-line ``error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from analysis.coco_format import CocoFormatError
from analysis.seg_errors.analyze import DEFAULT_IOU_THRESHOLD, analyze_errors
from analysis.seg_errors.corrections import MODES
from analysis.seg_errors.error_types import DEFAULT_TYPES
from analysis.io import check_outputs, write_json_atomic
from analysis.seg_errors.report import format_summary

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="dcl-seg-errors",
        description="Segmentation error analysis (Chen et al., BMVC 2022, Sec. 3): Delta AP "
                    "from correcting foreground false positives (fFP), background false "
                    "positives (bFP) and false negatives (FN) of matched predictions.")
    ap.add_argument("gt", help="COCO ground-truth JSON (images, annotations, categories)")
    ap.add_argument("dt", help="COCO results JSON: list of {image_id, category_id, "
                               "segmentation (RLE or polygon), score}")
    ap.add_argument("-o", "--output", help="write the results here (JSON, atomically; never "
                                           "one of the inputs)")
    ap.add_argument("--types", nargs="+", default=list(DEFAULT_TYPES), metavar="TYPE",
                    help="error types to correct: fFP bFP FN and '+' combinations such as "
                         "fFP+bFP (default: fFP bFP FN)")
    ap.add_argument("--mode", choices=MODES, default="paper",
                    help="paper (default): unmatched predictions unchanged; authors: as the "
                         "authors' script (bFP on unmatched predictions, fFP/FN against the "
                         "image's last ground truth)")
    ap.add_argument("--iou-threshold", type=float, default=DEFAULT_IOU_THRESHOLD,
                    help="minimum mask IoU to match a prediction (default: 0.1, the paper's)")
    ap.add_argument("--jobs", "-j", type=int, default=1,
                    help="worker processes for the per-image work (default: 1; capped at "
                         "the number of CPUs this process may use)")
    ap.add_argument("--skip-unknown", action="store_true",
                    help="skip (and count) predictions whose image_id/category_id is not in "
                         "the ground truth instead of failing")
    ap.add_argument("--matches-out", metavar="NPZ",
                    help="also write the per-image matching of the baseline and of each "
                         "corrected evaluation here (analysis.bootstrap, for intervals; NPZ, "
                         "atomically; never one of the inputs nor the -o file)")
    ap.add_argument("--quiet", "-q", action="store_true", help="no summary on stdout")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    try:
        check_outputs([args.output, args.matches_out], [args.gt, args.dt])
        matches = {} if args.matches_out else None
        result = analyze_errors(
            args.gt, args.dt, types=args.types, mode=args.mode,
            iou_threshold=args.iou_threshold, jobs=args.jobs,
            on_unknown="skip" if args.skip_unknown else "error", matches=matches)
        if args.matches_out:
            from analysis.bootstrap import save_matches
            save_matches(args.matches_out, matches)
        if args.output:
            write_json_atomic(args.output, result, indent=2)
    except (CocoFormatError, ValueError, OSError) as e:
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(format_summary(result))
        if args.output:
            print(f"\nwrote {os.path.abspath(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
