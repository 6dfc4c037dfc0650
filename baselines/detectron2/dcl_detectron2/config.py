"""The pixel-contrastive losses' detectron2 keys and their translation.

This module alone knows how dcl_core's neutral loss settings are spelt in a detectron2 config:
DCL's ``CONTRAST_LOSS`` node (the authors' names; declared here, for Mask R-CNN's mask head and
for SparseInst), one node per other registered loss on Mask R-CNN's mask head
(``MODEL.ROI_MASK_HEAD.CONTRASTMASK_LOSS``: ``ENABLED`` and each setting's name upper-cased),
the modules built from them, and the ``--loss`` option of the training CLIs (one loss or
several, :func:`dcl_core.parse_losses`) written into a config.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import nn

from detectron2.config import CfgNode as CN

from dcl_core import ContrastMaskSettings, DCLSettings, build_loss, loss_settings

__all__ = ["EXTRA_LOSS_NODES", "add_dcl_config", "apply_loss_settings", "contrast_loss_from_node",
           "contrast_loss_node", "extra_loss_node", "extra_losses_from_cfg",
           "extra_settings_from_node", "settings_from_node"]

# Registered losses besides DCL that Mask R-CNN's mask head takes: name -> its node under
# MODEL.ROI_MASK_HEAD.
EXTRA_LOSS_NODES = {ContrastMaskSettings.name: "CONTRASTMASK_LOSS"}

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


def extra_loss_node(name: str, settings=None) -> CN:
    """The node of registered loss ``name`` (not DCL) holding ``settings`` (default: dcl_core's
    defaults): ``ENABLED`` (True iff settings are given) and each setting's name upper-cased
    (``CONTRASTMASK_LOSS.EASY_TEMPERATURE``); values: see the settings class (e.g.
    :class:`dcl_core.ContrastMaskSettings`).

    Raises:
        ValueError: a setting of None, which yacs cannot hold.
    """
    enabled = settings is not None
    settings = loss_settings(name) if settings is None else settings
    node = CN()
    node.ENABLED = enabled
    for key, value in settings.to_mapping().items():
        if value is None:
            raise ValueError(f"{name} {key}=None cannot be written as detectron2's "
                             f"{EXTRA_LOSS_NODES[name]}.{key.upper()}: give a value")
        setattr(node, key.upper(), value)
    return node


def extra_settings_from_node(name: str, node: CN):
    """The neutral settings an :func:`extra_loss_node` holds (``ENABLED`` aside).

    Raises:
        TypeError / ValueError: a bad value or an unknown key (the message names it).
    """
    return loss_settings(name, {key.lower(): value for key, value in node.items()
                                if key != "ENABLED"})


def add_dcl_config(cfg: CN) -> CN:
    """Add ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS`` (:func:`contrast_loss_node`, dcl_core's
    defaults, the authors' code's) and, off, one node per other loss of
    :data:`EXTRA_LOSS_NODES` (:func:`extra_loss_node`); return ``cfg``.

    The keys only take effect with ``MODEL.ROI_MASK_HEAD.NAME: ContrastConvUpsampleHead``.
    """
    cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS = contrast_loss_node()
    for name, key in EXTRA_LOSS_NODES.items():
        setattr(cfg.MODEL.ROI_MASK_HEAD, key, extra_loss_node(name))
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


def check_detectron2_settings(settings) -> None:
    """Refuse settings detectron2's training cannot honour: ContrastMask's epoch ramp (detectron2
    trains by iterations, and nothing would advance the ramp past w(0)).

    Raises:
        ValueError: one line naming the setting.
    """
    if isinstance(settings, ContrastMaskSettings) and settings.ramp_epochs != 0:
        raise ValueError(f"contrastmask ramp_epochs={settings.ramp_epochs}: detectron2 trains by "
                         "iterations, so no epoch ramp runs here; set ramp_epochs=0 (w = 1)")


def extra_losses_from_cfg(mask_head_cfg: CN, channels: int) -> dict[str, nn.Module]:
    """The enabled losses of :data:`EXTRA_LOSS_NODES` under ``MODEL.ROI_MASK_HEAD``, by name,
    built for ``channels``-channel RoI features (none with weight 0).

    Raises:
        TypeError / ValueError: a bad setting (one line).
    """
    losses = {}
    for name, key in EXTRA_LOSS_NODES.items():
        node = mask_head_cfg.get(key)
        if node is None or not node.ENABLED:
            continue
        settings = extra_settings_from_node(name, node)
        check_detectron2_settings(settings)
        module = build_loss(settings, channels)
        if module is not None:
            losses[name] = module
    return losses


LossSettings = Union[None, DCLSettings, Sequence]


def apply_loss_settings(cfg: CN, settings: LossSettings) -> CN:
    """Write the ``--loss`` option's settings into ``cfg`` (unfrozen) and return it.

    ``settings``: None or ``()`` (``--loss none``), one settings object, or a sequence of them
    (:func:`dcl_core.parse_losses`). Mask R-CNN (``GeneralizedRCNN``, any backbone): the
    contrast heads (``ContrastRoIHeads``, ``ContrastConvUpsampleHead``),
    ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS`` for DCL (``LOSS_WEIGHT 0.0`` without it) and each
    other loss's node (``ENABLED`` True with its settings, else False); SparseInst:
    ``MODEL.SPARSE_INST.CONTRAST_LOSS`` (DCL only). The baseline writes only the off switches,
    so a config with the contrast heads still trains the baseline.

    Raises:
        ValueError: a meta-architecture without the loss, a loss it does not take, or a setting
            detectron2's keys cannot hold (one line).
    """
    if settings is None:
        losses = []
    elif isinstance(settings, (list, tuple)):
        losses = list(settings)
    else:
        losses = [settings]
    dcl = [s for s in losses if isinstance(s, DCLSettings)]
    others = [s for s in losses if not isinstance(s, DCLSettings)]
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "SparseInst":
        node = cfg.MODEL.SPARSE_INST.CONTRAST_LOSS
        if others:
            raise ValueError(f"{others[0].name}: not wired for SparseInst (Mask R-CNN only)")
    elif arch == "GeneralizedRCNN":
        node = cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
        unknown = [s.name for s in others if s.name not in EXTRA_LOSS_NODES]
        if unknown:
            raise ValueError(f"{unknown[0]}: not wired for detectron2")
        for s in others:
            check_detectron2_settings(s)
        if losses:
            cfg.MODEL.ROI_HEADS.NAME = "ContrastRoIHeads"
            cfg.MODEL.ROI_MASK_HEAD.NAME = "ContrastConvUpsampleHead"
        given = {s.name: s for s in others}
        for name, key in EXTRA_LOSS_NODES.items():
            setattr(cfg.MODEL.ROI_MASK_HEAD, key, extra_loss_node(name, given.get(name)))
    else:
        raise ValueError(f"MODEL.META_ARCHITECTURE {arch!r} has no pixel-contrastive loss "
                         "(GeneralizedRCNN or SparseInst)")
    if dcl:
        _write(node, dcl[0])
    else:
        node.LOSS_WEIGHT = 0.0
    return cfg
