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

All masks are pycocotools compressed RLE dicts ``{'size': [h, w], 'counts': bytes|str}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from pycocotools import mask as mask_utils

__all__ = ["Target", "ErrorType", "ForegroundFP", "BackgroundFP", "FalseNegative",
           "CombinedError", "BASE_ERRORS", "DEFAULT_TYPES", "parse_error_types"]


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


class ErrorType:
    """One kind of segmentation error: a short ``name`` and :meth:`fix`."""

    name: str = ""
    description: str = ""

    def fix(self, pred: dict, target: Target) -> dict:
        """The prediction mask (compressed RLE) with this error's pixels corrected."""
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


class BackgroundFP(ErrorType):
    """bFP: remove the predicted pixels lying on background, D := D & G."""

    name = "bFP"
    description = "background false positives: predicted pixels on background"

    def fix(self, pred: dict, target: Target) -> dict:
        return mask_utils.merge([pred, target.union], intersect=True)


class FalseNegative(ErrorType):
    """FN: add the missed pixels of the matched instance, D := D | G*."""

    name = "FN"
    description = "false negatives: missed pixels of the matched instance"

    def fix(self, pred: dict, target: Target) -> dict:
        return mask_utils.merge([pred, target.gt], intersect=False)


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
