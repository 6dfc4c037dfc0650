"""Settings of ContrastMask's pixel-contrastive loss (CVPR 2022, arXiv 2203.09775).

One frozen dataclass, the single home of the loss's defaults, read by the registry
(:mod:`dcl_core.registry`), the adapters and the experiment plan, like :class:`DCLSettings`.
The defaults are the official code's (huiserwang/ContrastMask 45f0a4d; facts and line references
in shared/reference/contrastmask-cac.md, part A).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

from .sampling import _check_count
from .settings import LossSettings, _check_real

__all__ = ["ContrastMaskSettings"]

# The official code's quirks, each a bool that is True for the official behaviour; the suffix
# its variant_name() gets when switched to the paper-described reading.
_QUIRK_SUFFIXES = {
    "shared_query": "roiquery",
    "shift_keys": "noshift",
    "untempered_positive": "tempos",
    "inner_edge_easy": "edgehard",
}


@dataclass(frozen=True)
class ContrastMaskSettings(LossSettings):
    """Settings of ContrastMask's pixel-contrastive loss ``loss_contrastive`` (reference A.3-A.4).

    The loss is ``loss_weight x w(e) x [L(q_fg, E+, E-, tau_e) + L(q_fg, H+, H-, tau_h)
    + L(q_bg, E-, E+, tau_e) + L(q_bg, H-, H+, tau_h)]``; :class:`dcl_core.ContrastMaskLoss`
    documents each term. Defaults follow the official code, quirks included; each quirk is a
    bool, True for the official behaviour and False for the reading the paper's text suggests
    (the equations were not checked against the paper, see the reference's preamble).

    Attributes:
        loss_weight: the constant factor, 0.1 in the code (contrastive_head.py ``* 0.1``);
            0 builds no loss module (the exact baseline).
        easy_temperature: tau of the easy-key terms, 0.3 (roi_head.py:L225).
        hard_temperature: tau of the hard-key terms, 0.7 (roi_head.py:L226).
        sample_ratio: sigma, the share of each key set drawn per RoI, ``ceil(sigma x |set|)``
            pixels without replacement (``percent=0.3``).
        min_pixels: a RoI with fewer pixels than this in any of its four key sets is dropped (5).
        cam_threshold: ``thred_u``, 0.1: a novel RoI's foreground is ``cam > 1 - thred_u`` and
            its background ``cam < thred_u`` (queries and keys).
        num_encoder_convs: the contrastive head's encoder, this many 3x3 conv + ReLU (8).
        num_projector_layers: the projector, this many - 1 times (1x1 conv + BN + ReLU), then a
            Linear (3).
        embed_channels: channels of the encoder and of the embeddings (256).
        detach_features: the official contrastive input is detached (roi_head.py:L266), so the
            loss trains only the contrastive head. False lets the loss reach the features it is
            given (needed when the loss is meant to shape another head's features).
        ramp_start, ramp_epochs: the weight ramp ``w(e) = min(max(ramp_start, e / ramp_epochs),
            1)`` of the 0-based epoch e (tensorboard_utils.py:L24-27: 0.25 and 4);
            ``ramp_epochs=0`` means w = 1 throughout.
        shared_query: True (code): one foreground and one background query, the mean of the
            kept RoIs' queries, against the keys pooled over the batch. False: each RoI's query
            against that RoI's own keys.
        shift_keys: True (code): the similarity is ``cos(q, k - q)``. False: ``cos(q, k)``.
        untempered_positive: True (code): the positive's term in the denominator is
            ``exp(s)``, not divided by tau. False: ``exp(s / tau)`` (plain InfoNCE).
        inner_edge_easy: True (code): the edge band's inner ring (mask pixels on the boundary)
            is an easy positive and its outer ring in no set. False: both rings of the band are
            hard keys (inner ring hard positive, outer ring hard negative).

    Raises:
        TypeError / ValueError: a value of the wrong type or out of range (the message names
            the setting), from the constructor and :meth:`from_mapping`.
    """

    name: ClassVar[str] = "contrastmask"

    loss_weight: float = 0.1
    easy_temperature: float = 0.3
    hard_temperature: float = 0.7
    sample_ratio: float = 0.3
    min_pixels: int = 5
    cam_threshold: float = 0.1
    num_encoder_convs: int = 8
    num_projector_layers: int = 3
    embed_channels: int = 256
    detach_features: bool = True
    ramp_start: float = 0.25
    ramp_epochs: int = 4
    shared_query: bool = True
    shift_keys: bool = True
    untempered_positive: bool = True
    inner_edge_easy: bool = True

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {
            "loss_weight": _check_real("loss_weight", self.loss_weight, positive=False),
            "easy_temperature": _check_real("easy_temperature", self.easy_temperature,
                                            positive=True),
            "hard_temperature": _check_real("hard_temperature", self.hard_temperature,
                                            positive=True),
            "sample_ratio": _check_real("sample_ratio", self.sample_ratio, positive=True),
            "cam_threshold": _check_real("cam_threshold", self.cam_threshold, positive=True),
            "ramp_start": _check_real("ramp_start", self.ramp_start, positive=False),
            "min_pixels": _check_count("min_pixels", self.min_pixels),
            "num_projector_layers": _check_count("num_projector_layers",
                                                 self.num_projector_layers),
            "embed_channels": _check_count("embed_channels", self.embed_channels),
        }
        for key in ("num_encoder_convs", "ramp_epochs"):
            value = getattr(self, key)
            # 0 is meaningful for both: no encoder, no ramp.
            zero = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value == 0
            checked[key] = 0 if zero else _check_count(key, value)
        if checked["sample_ratio"] > 1:
            raise ValueError(f"sample_ratio must be in (0, 1], got {self.sample_ratio}")
        if checked["cam_threshold"] >= 0.5:
            raise ValueError(f"cam_threshold must be in (0, 0.5) so that cam > 1 - t and cam < t "
                             f"are disjoint, got {self.cam_threshold}")
        if not 0 <= checked["ramp_start"] <= 1:
            raise ValueError(f"ramp_start must be in [0, 1], got {self.ramp_start}")
        for key in ("detach_features", *_QUIRK_SUFFIXES):
            if not isinstance(getattr(self, key), bool):
                raise TypeError(f"{key} must be a bool, got {type(getattr(self, key)).__name__}")
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    def epoch_weight(self, epoch: int) -> float:
        """w(e) of the 0-based epoch ``epoch``: ``min(max(ramp_start, e / ramp_epochs), 1)``
        (the official logger hook; 0.25, 0.25, 0.5, 0.75, 1, ... by default); 1 without a ramp.

        Raises:
            ValueError: a negative epoch.
        """
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if self.ramp_epochs == 0:
            return 1.0
        return min(max(self.ramp_start, epoch / self.ramp_epochs), 1.0)

    def variant_name(self) -> str:
        """The run folder's variant: ``contrastmask_w0.1_te0.3_th0.7_s0.3``, plus a suffix per
        setting off the default: ``_min4``, ``_cam0.2``, ``_enc4``, ``_proj2``, ``_c128``,
        ``_grad`` (features not detached), ``_ramp0.5x2`` / ``_noramp``, and ``_roiquery``,
        ``_noshift``, ``_tempos``, ``_edgehard`` for the paper-described variants of the quirks."""
        name = (f"contrastmask_w{self.loss_weight:g}_te{self.easy_temperature:g}"
                f"_th{self.hard_temperature:g}_s{self.sample_ratio:g}")
        default = type(self)()
        for key, fmt in (("min_pixels", "_min{}"), ("cam_threshold", "_cam{:g}"),
                         ("num_encoder_convs", "_enc{}"), ("num_projector_layers", "_proj{}"),
                         ("embed_channels", "_c{}")):
            if getattr(self, key) != getattr(default, key):
                name += fmt.format(getattr(self, key))
        if not self.detach_features:
            name += "_grad"
        if self.ramp_epochs == 0:
            name += "_noramp"
        elif (self.ramp_start, self.ramp_epochs) != (default.ramp_start, default.ramp_epochs):
            name += f"_ramp{self.ramp_start:g}x{self.ramp_epochs}"
        for key, suffix in _QUIRK_SUFFIXES.items():
            if not getattr(self, key):
                name += f"_{suffix}"
        return name

