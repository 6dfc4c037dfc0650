"""Segmentation error analysis of paper Section 3 (Eq. 1-2, Figure 2, Table 8).

Computing (:func:`analyze_errors`, the error types, the fast COCO evaluation) is kept apart
from reporting (:mod:`analysis.seg_errors.report`). Command line: ``dcl-seg-errors`` or
``python -m analysis.seg_errors``; figures/tables: ``python -m analysis.seg_errors.report``.
See ``analysis/README.md``.
"""

from analysis.seg_errors.analyze import DEFAULT_IOU_THRESHOLD, analyze_errors
from analysis.seg_errors.corrections import MODES
from analysis.seg_errors.error_types import (BASE_ERRORS, DEFAULT_TYPES, BackgroundFP,
                                             CombinedError, ErrorType, FalseNegative,
                                             ForegroundFP, Target, parse_error_types)
from analysis.seg_errors.fast_eval import EvalLayout
from analysis.io import write_json_atomic

_REPORT = ("figure2", "format_summary", "load_runs", "table8")


def __getattr__(name: str):
    # Imported lazily so that ``python -m analysis.seg_errors.report`` does not find its own
    # module already imported by the package (runpy warns), and seaborn loads only when used.
    if name in _REPORT:
        from analysis.seg_errors import report
        return getattr(report, name)
    raise AttributeError(f"module 'analysis.seg_errors' has no attribute {name!r}")

__all__ = [
    "analyze_errors", "DEFAULT_IOU_THRESHOLD", "MODES",
    "ErrorType", "ForegroundFP", "BackgroundFP", "FalseNegative", "CombinedError", "Target",
    "BASE_ERRORS", "DEFAULT_TYPES", "parse_error_types",
    "EvalLayout", "write_json_atomic", "format_summary", "load_runs", "figure2", "table8",
]
