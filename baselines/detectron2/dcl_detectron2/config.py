"""The dense contrastive loss's detectron2 keys (the authors' names) and their translation.

This module alone knows how dcl_core's neutral loss settings (:class:`dcl_core.DCLSettings`)
are spelt in a detectron2 config: the ``CONTRAST_LOSS`` node (declared here, for Mask R-CNN's
mask head and for SparseInst), the module built from it, and the ``--loss`` option of the
training CLIs written into a config.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from detectron2.config import CfgNode as CN

from dcl_core import DCLSettings, build_loss

__all__ = ["add_dcl_config", "apply_loss_settings", "contrast_loss_from_node",
           "contrast_loss_node", "settings_from_node"]

# dcl_core setting -> CONTRAST_LOSS key (the authors' names).
_KEYS = {
    "loss_weight": "LOSS_WEIGHT",
    "num_samples": "NUM_SAMPLES",
    "temperature": "TEMPERATURE",
    "with_projection": "WITH_PROJ",
    "max_rois": "MAX_INSTANCES",
    "roi_selection": "ROI_SELECTION",
    "num_anchors": "NUM_ANCHORS",
    "num_positives": "NUM_POSITIVES",
    "num_negatives": "NUM_NEGATIVES",
}
# yacs keys cannot hold None: 0 stands for "K" in the three count keys.
_COUNT_KEYS = ("num_anchors", "num_positives", "num_negatives")


def _write(node: CN, settings: DCLSettings) -> CN:
    for key, name in _KEYS.items():
        value = getattr(settings, key)
        if value is None and key not in _COUNT_KEYS:
            raise ValueError(f"{key}=None cannot be written as detectron2's "
                             f"CONTRAST_LOSS.{name}: give a number")
        setattr(node, name, 0 if value is None else value)
    return node


def contrast_loss_node(settings: DCLSettings = DCLSettings()) -> CN:
    """A ``CONTRAST_LOSS`` node holding ``settings`` (default: dcl_core's defaults).

    Keys (paper symbols in brackets): ``LOSS_WEIGHT`` (lambda, Eq. 6; 0 builds no loss module at
    all, so lambda = 0 is exactly the baseline), ``NUM_SAMPLES`` (K, Sec. 4.2), ``TEMPERATURE``
    (tau, Eq. 3), ``WITH_PROJ`` (learnable similarity, Eq. 5), ``MAX_INSTANCES`` (at most this
    many RoIs per batch take part), ``ROI_SELECTION`` ("first", the authors, or "random"),
    ``NUM_ANCHORS``/``NUM_POSITIVES``/``NUM_NEGATIVES`` (|A|, |P|, |N| of the paper's
    supplementary; 0 means K). Values: see :class:`dcl_core.DCLSettings`.
    """
    return _write(CN(), settings)


def add_dcl_config(cfg: CN) -> CN:
    """Add ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS`` (:func:`contrast_loss_node`, dcl_core's
    defaults, the authors' code's) and return ``cfg``.

    The keys only take effect with ``MODEL.ROI_MASK_HEAD.NAME: ContrastConvUpsampleHead``.
    """
    cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS = contrast_loss_node()
    return cfg


def settings_from_node(node: CN) -> DCLSettings:
    """The neutral settings a ``CONTRAST_LOSS`` node holds.

    Raises:
        TypeError / ValueError: a bad value (the message names the setting).
    """
    values = {key: node[name] for key, name in _KEYS.items()}
    for key in _COUNT_KEYS:
        values[key] = values[key] or None
    return DCLSettings(**values)


def contrast_loss_from_node(node: CN, channels: int) -> Optional[nn.Module]:
    """The loss module from a ``CONTRAST_LOSS`` node (Mask R-CNN's mask head's or SparseInst's);
    None when ``LOSS_WEIGHT`` (lambda) is 0."""
    if node.LOSS_WEIGHT == 0:
        return None
    return build_loss(settings_from_node(node), channels)


def apply_loss_settings(cfg: CN, settings: Optional[DCLSettings]) -> CN:
    """Write the ``--loss`` option's settings into ``cfg`` (unfrozen) and return it.

    Mask R-CNN (``GeneralizedRCNN``, any backbone): the contrast heads (``ContrastRoIHeads``,
    ``ContrastConvUpsampleHead``) and ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS``; SparseInst:
    ``MODEL.SPARSE_INST.CONTRAST_LOSS``. ``settings`` None (``--loss none``) writes only
    ``LOSS_WEIGHT 0.0``, so a config with the contrast heads still trains the baseline.

    Raises:
        ValueError: a meta-architecture without the loss, or a setting detectron2's keys
            cannot hold (one line).
    """
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "SparseInst":
        node = cfg.MODEL.SPARSE_INST.CONTRAST_LOSS
    elif arch == "GeneralizedRCNN":
        node = cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
        if settings is not None:
            cfg.MODEL.ROI_HEADS.NAME = "ContrastRoIHeads"
            cfg.MODEL.ROI_MASK_HEAD.NAME = "ContrastConvUpsampleHead"
    else:
        raise ValueError(f"MODEL.META_ARCHITECTURE {arch!r} has no pixel-contrastive loss "
                         "(GeneralizedRCNN or SparseInst)")
    if settings is None:
        node.LOSS_WEIGHT = 0.0
    elif isinstance(settings, DCLSettings):
        _write(node, settings)
    else:
        raise ValueError(f"{settings.name}: not wired for detectron2")
    return cfg
