"""Settings of the pixel-contrastive losses: defaults, validation and the name of a run folder.

A loss's settings are one frozen dataclass, the single home of its defaults. Everything else
(the detectron2 and mmdet adapters, the experiment plan, the command lines) reads them from
here: a config or a command line that states a value states a setting, never a default.
:mod:`dcl_core.registry` lists the losses by name, so ContrastMask's and CAC's settings can sit
beside :class:`DCLSettings`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Mapping, Optional

from .sampling import _check_count

__all__ = ["DCLSettings", "LossSettings", "ROI_SELECTIONS"]

ROI_SELECTIONS = ("first", "random")


def _check_real(name: str, value, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or (positive and value <= 0):
        bound = "finite and > 0" if positive else "finite"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return float(value)


class LossSettings:
    """What every loss's settings dataclass shares (a frozen dataclass with a ``name``
    ClassVar and a ``loss_weight`` field inherits it): the mapping round trip and ``enabled``."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The setting names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "LossSettings":
        """Settings from a plain mapping; missing keys take the defaults.

        Raises:
            ValueError: an unknown key (``unknown key(s) [...]; known: [...]``), or a bad value.
            TypeError: a value of the wrong type.
        """
        unknown = sorted(set(mapping) - set(cls.keys()))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; known: {sorted(cls.keys())}")
        return cls(**mapping)

    def to_mapping(self) -> dict:
        """The settings as a plain dict (every key, declaration order)."""
        return asdict(self)

    @property
    def enabled(self) -> bool:
        """False for lambda = 0: no loss is built."""
        return self.loss_weight != 0


@dataclass(frozen=True)
class DCLSettings(LossSettings):
    """Settings of the dense contrastive loss (paper Sec. 4.2-4.3, Eq. 3-6).

    Defaults are the authors' code's (shared/reference/official-code.md): lambda 1.2 (their
    config's default, used unchanged by their Cityscapes-from-ImageNet command; they set 0.1
    on COCO, 1.6 for Cityscapes from COCO), K 32, tau 0.07, the learnable similarity, the first
    100 RoIs. They are also the paper's defaults (Sec. 5.1).

    Attributes:
        loss_weight: lambda (Eq. 6), finite; 0 means no loss at all (the exact baseline:
            adapters then build no module, so no projection parameters).
        temperature: tau > 0 (Eq. 3).
        num_samples: K >= 1, anchors = positives = negatives per RoI (Sec. 4.2).
        with_projection: the learnable similarity (Eq. 5); False = plain cosine similarity.
        max_rois: at most this many RoIs per call take part (None = no cap).
        roi_selection: ``"first"`` (the authors) or ``"random"`` when the cap applies.
        num_anchors, num_positives, num_negatives: |A|, |P|, |N| (the paper's supplementary);
            None = K.

    Raises:
        TypeError / ValueError: a value of the wrong type or out of range (the message names
            the setting), from the constructor and :meth:`from_mapping`.
    """

    name: ClassVar[str] = "dcl"

    loss_weight: float = 1.2
    temperature: float = 0.07
    num_samples: int = 32
    with_projection: bool = True
    max_rois: Optional[int] = 100
    roi_selection: str = "first"
    num_anchors: Optional[int] = None
    num_positives: Optional[int] = None
    num_negatives: Optional[int] = None

    def __post_init__(self) -> None:
        checked = {
            "loss_weight": _check_real("loss_weight", self.loss_weight, positive=False),
            "temperature": _check_real("temperature", self.temperature, positive=True),
            "num_samples": _check_count("num_samples", self.num_samples),
        }
        for key in ("max_rois", "num_anchors", "num_positives", "num_negatives"):
            value = getattr(self, key)
            checked[key] = None if value is None else _check_count(key, value)
        if not isinstance(self.with_projection, bool):
            raise TypeError("with_projection must be a bool, got "
                            f"{type(self.with_projection).__name__}")
        if self.roi_selection not in ROI_SELECTIONS:
            raise ValueError(f"roi_selection must be one of {ROI_SELECTIONS}, "
                             f"got {self.roi_selection!r}")
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    @property
    def counts(self) -> tuple[int, int, int]:
        """(|A|, |P|, |N|) with None resolved to K."""
        k = self.num_samples
        return tuple(k if n is None else n
                     for n in (self.num_anchors, self.num_positives, self.num_negatives))

    def variant_name(self) -> str:
        """The run folder's variant: ``dcl_w1.2_t0.07_k32``, plus ``_noproj`` without the
        learnable similarity, ``_a16_p16_n64`` style counts when one differs from K, and
        ``_rois50`` / ``_roisall`` / ``_random`` for a RoI cap or selection off the default."""
        name = f"dcl_w{self.loss_weight:g}_t{self.temperature:g}_k{self.num_samples}"
        if not self.with_projection:
            name += "_noproj"
        if any(n != self.num_samples for n in self.counts):
            name += "_" + "_".join(f"{letter}{n}" for letter, n in zip("apn", self.counts))
        default = type(self)()
        if self.max_rois != default.max_rois:
            name += f"_rois{self.max_rois or 'all'}"
        if self.roi_selection != default.roi_selection:
            name += f"_{self.roi_selection}"
        return name
