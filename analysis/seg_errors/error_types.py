"""The segmentation error types of paper Section 3 (Eq. 1), each a short name and its fix.

For a prediction D matched to ground truth G* (same category, largest mask IoU >= 0.1), with
G the union of all (non-crowd) ground truths of the image, Eq. 1 splits the symmetric
difference of D and G* into three disjoint pixel sets:

- fFP, foreground false positive: D & (G - G*)  -- pixels on other instances;
- bFP, background false positive: D - G          -- pixels on background;
- FN,  false negative:            G* - D         -- missed pixels of the instance.

Fixing an error type removes (fFP, bFP) or adds (FN) its pixels; scores stay unchanged.
Delta AP of a type (Eq. 2) is the COCO AP after fixing it minus the AP before. A
:class:`CombinedError` applies several fixes (they commute, since the three sets are disjoint).

Each type states its meaning twice, side by side: on masks (:meth:`ErrorType.fix`, pycocotools
compressed RLE dicts ``{'size': [h, w], 'counts': bytes|str}``) and on pixel counts
(:meth:`ErrorType.error_pixels`, :meth:`ErrorType.fix_counts` on :class:`PixelCounts`), which
:mod:`analysis.seg_errors.corrections` uses where the counts are exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["Target", "PixelCounts", "ErrorType", "ForegroundFP", "BackgroundFP",
           "FalseNegative", "CombinedError", "BASE_ERRORS", "DEFAULT_TYPES",
           "parse_error_types"]


@dataclass(frozen=True)
class Target:
    """What a prediction is corrected against (compressed RLEs of the image's size).

    Attributes:
        gt: G*, the matched ground-truth mask.
        union: G, the union of the image's non-crowd ground truths.
        keep: the complement of (G - G*), i.e. background plus G*; ``D & keep`` is the fFP fix
            (pycocotools RLEs have no set difference, only union and intersection).
    """

    gt: dict
    union: dict
    keep: dict


@dataclass(frozen=True)
class PixelCounts:
    """R predictions D split into disjoint pixel sets relative to their targets.

    All arrays are float64 holding integer pixel counts (exact below 2**53). With G* the
    target, G the union of the image's non-crowd ground truths and G_j its ground truths:

    Attributes:
        on_target: ``(R,)`` ``|D & G*|``.
        on_others: ``(R,)`` ``|D & (G - G*)|``, pixels on other instances.
        on_background: ``(R,)`` ``|D - G|``.
        missing: ``(R,)`` ``|G* - D|``.
        per_gt: ``(R, N)`` ``|D & G_j|`` for the image's N ground truths; the target's own
            column is :attr:`on_target` (see :meth:`intersections`).
        target: ``(R,)`` int64 column of G* in :attr:`per_gt`.
        crowd: ``(N,)`` bool, crowd ground truths.

    The per-ground-truth counts stay consistent under a fix only where the ground truths that
    D touches, and G*, do not overlap; :mod:`analysis.seg_errors.corrections` checks that.
    """

    on_target: np.ndarray
    on_others: np.ndarray
    on_background: np.ndarray
    missing: np.ndarray
    per_gt: np.ndarray
    target: np.ndarray
    crowd: np.ndarray

    @property
    def area(self) -> np.ndarray:
        """``(R,)`` ``|D|``."""
        return self.on_target + self.on_others + self.on_background

    def intersections(self) -> np.ndarray:
        """``(R, N)`` ``|D & G_j|``, the target's column set to :attr:`on_target`."""
        out = self.per_gt.copy()
        out[np.arange(len(self.target)), self.target] = self.on_target
        return out

    def take(self, rows: np.ndarray) -> "PixelCounts":
        """The counts of the predictions ``rows`` only."""
        return PixelCounts(self.on_target[rows], self.on_others[rows], self.on_background[rows],
                           self.missing[rows], self.per_gt[rows], self.target[rows], self.crowd)


class ErrorType:
    """One kind of segmentation error: a short ``name``, its pixels and its fix."""

    name: str = ""
    description: str = ""

    def fix(self, pred: dict, target: Target) -> dict:
        """The prediction mask (compressed RLE) with this error's pixels corrected."""
        raise NotImplementedError

    def error_pixels(self, counts: PixelCounts) -> np.ndarray:
        """``(R,)`` this error's pixels per prediction (Eq. 1), from ``counts``."""
        raise NotImplementedError

    def fix_counts(self, counts: PixelCounts) -> PixelCounts:
        """``counts`` after :meth:`fix`: the same correction, on pixel counts."""
        raise NotImplementedError

    @property
    def parts(self) -> tuple["ErrorType", ...]:
        """The base types this type corrects (itself for a base type)."""
        return (self,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ErrorType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class ForegroundFP(ErrorType):
    """fFP: remove the predicted pixels lying on other instances, D := D - (G - G*)."""

    name = "fFP"
    description = "foreground false positives: predicted pixels on other instances"

    def fix(self, pred: dict, target: Target) -> dict:
        return mask_utils.merge([pred, target.keep], intersect=True)

    def error_pixels(self, counts: PixelCounts) -> np.ndarray:
        return counts.on_others

    def fix_counts(self, counts: PixelCounts) -> PixelCounts:
        per_gt = counts.per_gt.copy()
        per_gt[:, ~counts.crowd] = 0   # the target's column is on_target, kept
        return dataclasses.replace(counts, on_others=np.zeros_like(counts.on_others),
                                   per_gt=per_gt)


class BackgroundFP(ErrorType):
    """bFP: remove the predicted pixels lying on background, D := D & G."""

    name = "bFP"
    description = "background false positives: predicted pixels on background"

    def fix(self, pred: dict, target: Target) -> dict:
        return mask_utils.merge([pred, target.union], intersect=True)

    def error_pixels(self, counts: PixelCounts) -> np.ndarray:
        return counts.on_background

    def fix_counts(self, counts: PixelCounts) -> PixelCounts:
        per_gt = counts.per_gt.copy()
        per_gt[:, counts.crowd] = 0    # crowd regions lie outside G (non-crowd only)
        return dataclasses.replace(counts, on_background=np.zeros_like(counts.on_background),
                                   per_gt=per_gt)


class FalseNegative(ErrorType):
    """FN: add the missed pixels of the matched instance, D := D | G*."""

    name = "FN"
    description = "false negatives: missed pixels of the matched instance"

    def fix(self, pred: dict, target: Target) -> dict:
        return mask_utils.merge([pred, target.gt], intersect=False)

    def error_pixels(self, counts: PixelCounts) -> np.ndarray:
        return counts.missing

    def fix_counts(self, counts: PixelCounts) -> PixelCounts:
        return dataclasses.replace(counts, on_target=counts.on_target + counts.missing,
                                   missing=np.zeros_like(counts.missing))


class CombinedError(ErrorType):
    """Several base types fixed together, e.g. ``fFP+bFP`` (D := D & G*)."""

    def __init__(self, parts: Sequence[ErrorType]):
        flat: list[ErrorType] = []
        for p in parts:
            for q in p.parts:
                if q not in flat:
                    flat.append(q)
        order = {t.name: i for i, t in enumerate(BASE_ERRORS)}
        self._parts = tuple(sorted(flat, key=lambda t: order[t.name]))
        self.name = "+".join(t.name for t in self._parts)
        self.description = " and ".join(t.name for t in self._parts) + " corrected together"

    @property
    def parts(self) -> tuple[ErrorType, ...]:
        return self._parts

    def fix(self, pred: dict, target: Target) -> dict:
        for p in self._parts:
            pred = p.fix(pred, target)
        return pred

    def error_pixels(self, counts: PixelCounts) -> np.ndarray:
        return sum(p.error_pixels(counts) for p in self._parts)

    def fix_counts(self, counts: PixelCounts) -> PixelCounts:
        for p in self._parts:
            counts = p.fix_counts(counts)
        return counts


BASE_ERRORS: tuple[ErrorType, ...] = (ForegroundFP(), BackgroundFP(), FalseNegative())
DEFAULT_TYPES: tuple[str, ...] = ("fFP", "bFP", "FN")
_BY_NAME = {t.name.lower(): t for t in BASE_ERRORS}


def parse_error_types(names: Iterable[str | ErrorType]) -> list[ErrorType]:
    """Error types from names like ``["fFP", "bFP", "FN", "fFP+bFP"]`` (case-insensitive).

    Raises:
        ValueError: an unknown name, or the same type twice.
    """
    out: list[ErrorType] = []
    for n in names:
        if isinstance(n, ErrorType):
            t = n
        else:
            parts = []
            for piece in str(n).split("+"):
                key = piece.strip().lower()
                if key not in _BY_NAME:
                    raise ValueError(f"unknown error type {piece.strip()!r} in {n!r}; "
                                     f"known: {', '.join(t.name for t in BASE_ERRORS)} "
                                     "and '+' combinations such as fFP+bFP")
                parts.append(_BY_NAME[key])
            t = parts[0] if len(parts) == 1 else CombinedError(parts)
            if len(t.parts) == 1:
                t = t.parts[0]
        if t in out:
            raise ValueError(f"error type {t.name!r} given twice")
        out.append(t)
    if not out:
        raise ValueError("no error types given")
    return out
