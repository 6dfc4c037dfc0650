"""Swin Transformer backbone for detectron2 (paper Table 7: Mask R-CNN Swin-T + DCL).

Source: Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows"
(ICCV 2021), Sec. 3 and its detection setting (Sec. 4.2: the four stage outputs, each
layer-normalised, feed an FPN). The transformer itself is torchvision's
:class:`torchvision.models.SwinTransformer` (``swin_t`` is embed dim 96, depths (2, 2, 6, 2),
heads (3, 6, 12, 24), window 7), built without weights; ImageNet weights come from a config
path (``MODEL.WEIGHTS``) converted by ``tools/convert_torchvision_swin.py``.

Registered in detectron2's ``BACKBONE_REGISTRY`` on import:

- ``build_swin_t_backbone``: the bare transformer, stage outputs ``res2`` .. ``res5``;
- ``build_swin_t_fpn_backbone``: the same with detectron2's FPN and ``LastLevelMaxPool`` on top
  (``p2`` .. ``p6``), as ``build_resnet_fpn_backbone`` does for ResNets.

Stage outputs are named by stride like detectron2's ResNets (``res{k}`` has stride ``2**k``),
so the FPN and head keys of the ResNet configs apply unchanged. Config keys are added by
:func:`add_swin_config`.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import SwinTransformer

from detectron2.config import CfgNode as CN
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool

__all__ = [
    "SwinTransformerBackbone",
    "add_swin_config",
    "build_swin_t_backbone",
    "build_swin_t_fpn_backbone",
]

#: Side of the square patches the stem embeds (4 in every Swin variant): the stride of ``res2``.
PATCH_SIZE = 4


def add_swin_config(cfg: CN) -> CN:
    """Add ``MODEL.SWIN`` (Swin-T defaults) and ``SOLVER.OPTIMIZER`` to ``cfg``; return ``cfg``.

    ``MODEL.SWIN`` keys (Swin paper Table 7 / torchvision ``swin_t``):

    - ``EMBED_DIM`` (C, 96): channels of ``res2``; stage k has ``C * 2**k``.
    - ``DEPTHS`` ([2, 2, 6, 2]): Swin blocks per stage; the number of stages is its length.
    - ``NUM_HEADS`` ([3, 6, 12, 24]): attention heads per stage.
    - ``WINDOW_SIZE`` (7): side of the attention windows, in feature-map cells.
    - ``MLP_RATIO`` (4.0): hidden width of each block's MLP relative to its input.
    - ``DROP_PATH_RATE`` (0.2, the Swin-T Mask R-CNN setting): stochastic depth of the last
      block, rising linearly from 0 at the first.
    - ``OUT_FEATURES`` (["res2", "res3", "res4", "res5"]): stage outputs returned.

    ``MODEL.BACKBONE.FREEZE_AT`` is honoured like ResNet's: 0 trains everything (the Swin
    practice), 1 freezes the patch embedding, k >= 2 also the stages ``res2`` .. ``res{k}``.

    ``SOLVER.OPTIMIZER``: ``"SGD"`` (detectron2's default optimizer, the default here) or
    ``"ADAMW"`` (the Swin practice for Mask R-CNN: AdamW with ``SOLVER.BASE_LR`` and
    ``SOLVER.WEIGHT_DECAY``; no weight decay on normalisation layers (``WEIGHT_DECAY_NORM``)
    and relative position bias tables). ``train_net.py``'s trainer reads it; it is added here
    only if missing, so other plug-ins may share it.
    """
    cfg.MODEL.SWIN = CN()
    node = cfg.MODEL.SWIN
    node.EMBED_DIM = 96
    node.DEPTHS = [2, 2, 6, 2]
    node.NUM_HEADS = [3, 6, 12, 24]
    node.WINDOW_SIZE = 7
    node.MLP_RATIO = 4.0
    node.DROP_PATH_RATE = 0.2
    node.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    if "OPTIMIZER" not in cfg.SOLVER:  # another plug-in's add_*_config may have added it
        cfg.SOLVER.OPTIMIZER = "SGD"
    return cfg


class SwinTransformerBackbone(Backbone):
    """torchvision's Swin Transformer as a detectron2 backbone returning its stage outputs.

    Stage k (0-based) is named ``res{k + 2}``, has stride ``4 * 2**k`` and
    ``embed_dim * 2**k`` channels; Swin-T gives strides 4, 8, 16, 32 and channels 96, 192,
    384, 768. Each returned stage output passes through its own LayerNorm, as in the Swin
    paper's detection backbone (these norms are not part of the ImageNet classifier and start
    fresh).

    Input of any size works: the image is zero-padded at the bottom/right to a multiple of the
    patch size, and torchvision pads odd maps before patch merging and maps that are not a
    multiple of the window. Stage ``res{k}`` is then ``ceil(H / 2**k) x ceil(W / 2**k)``;
    :attr:`size_divisibility` (``4 * 2**(stages - 1)``, 32 for four stages) tells detectron2
    to pad batches so every stride divides exactly, which an FPN needs.

    Args:
        embed_dim, depths, num_heads, window_size, mlp_ratio, drop_path_rate: see
            :func:`add_swin_config`.
        out_features: stage names to return, a non-empty subset of ``res2`` .. ``res{S + 1}``.
        freeze_at: 0 trains all; 1 freezes the patch embedding; k >= 2 also ``res2`` ..
            ``res{k}``.

    Raises:
        ValueError: inconsistent sizes (depths and heads of different lengths, a stage width
            not divisible by its heads, non-positive sizes, fewer than 2 blocks in all (which
            torchvision cannot build)), a drop-path rate outside [0, 1),
            unknown ``out_features`` or ``freeze_at`` outside 0 .. number of stages + 1.
    """

    def __init__(self, *, embed_dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), window_size: int = 7,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.2,
                 out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
                 freeze_at: int = 0):
        super().__init__()
        depths, num_heads = [int(d) for d in depths], [int(h) for h in num_heads]
        _check_sizes(embed_dim, depths, num_heads, window_size, mlp_ratio, drop_path_rate)
        names = [f"res{k + 2}" for k in range(len(depths))]
        unknown = [f for f in out_features if f not in names]
        if not out_features or unknown:
            raise ValueError(f"MODEL.SWIN.OUT_FEATURES must be a non-empty subset of {names}, "
                             f"got {list(out_features)}")
        if not 0 <= freeze_at <= len(depths) + 1:
            raise ValueError(f"MODEL.BACKBONE.FREEZE_AT must be in 0..{len(depths) + 1} for "
                             f"{len(depths)} Swin stages, got {freeze_at}")
        body = SwinTransformer(
            patch_size=[PATCH_SIZE, PATCH_SIZE], embed_dim=embed_dim, depths=depths,
            num_heads=num_heads, window_size=[window_size, window_size], mlp_ratio=mlp_ratio,
            stochastic_depth_prob=drop_path_rate,
        )
        # Only the feature pyramid is kept; the classifier's final norm, pooling and head are
        # not used for detection. Layout of `features`: [patch embedding, stage 1,
        # merging, stage 2, merging, ...], so stage k (0-based) sits at index 2k + 1.
        self.features = body.features
        self._stage_names = names
        self._out_features = [n for n in names if n in out_features]
        self._out_feature_strides = {n: PATCH_SIZE * 2 ** k for k, n in enumerate(names)
                                     if n in out_features}
        self._out_feature_channels = {n: embed_dim * 2 ** k for k, n in enumerate(names)
                                      if n in out_features}
        self.norms = nn.ModuleDict({n: nn.LayerNorm(c)
                                    for n, c in self._out_feature_channels.items()})
        self._size_divisibility = PATCH_SIZE * 2 ** (len(depths) - 1)
        self._freeze(freeze_at)

    def _freeze(self, freeze_at: int) -> None:
        # `features[2k]` builds stage k's input (patch embedding for k = 0, patch merging
        # after): freezing stage res{k+2} freezes that too, as ResNet freezing includes each
        # stage's downsampling. FREEZE_AT 1 is the patch embedding alone.
        self._num_frozen = 0 if freeze_at == 0 else (1 if freeze_at == 1 else 2 * freeze_at - 2)
        for module in list(self.features)[: self._num_frozen]:
            for p in module.parameters():
                p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        """As ``nn.Module.train``, but frozen stages stay in eval mode (no stochastic depth in
        blocks that do not learn)."""
        super().train(mode)
        for module in list(self.features)[: self._num_frozen]:
            module.eval()
        return self

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Stage outputs of a batch.

        Args:
            x: float ``[N, 3, H, W]``, normalised images (any H, W >= 1).

        Returns:
            ``{name: float [N, C_k, ceil(H / s_k), ceil(W / s_k)]}`` for every name in
            ``out_features`` (contiguous NCHW), s_k and C_k as in :meth:`output_shape`.

        Raises:
            ValueError: ``x`` is not 4-D with 3 channels.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"Swin backbone expects images [N, 3, H, W], got {tuple(x.shape)}")
        pad_h, pad_w = (-x.shape[-2]) % PATCH_SIZE, (-x.shape[-1]) % PATCH_SIZE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = {}
        x = self.features[0](x)  # NHWC from here on, as torchvision's blocks expect
        for k, name in enumerate(self._stage_names):
            if k > 0:
                x = self.features[2 * k](x)
            x = self.features[2 * k + 1](x)
            if name in self.norms:
                out[name] = self.norms[name](x).permute(0, 3, 1, 2).contiguous()
        return out


def _check_sizes(embed_dim, depths, num_heads, window_size, mlp_ratio, drop_path_rate) -> None:
    if not depths or len(depths) != len(num_heads):
        raise ValueError(f"MODEL.SWIN.DEPTHS and NUM_HEADS need one entry per stage, got "
                         f"{depths} and {num_heads}")
    if embed_dim < 1 or window_size < 1 or mlp_ratio <= 0 or min(depths) < 1 or min(num_heads) < 1:
        raise ValueError("MODEL.SWIN sizes must be positive: EMBED_DIM "
                         f"{embed_dim}, WINDOW_SIZE {window_size}, MLP_RATIO {mlp_ratio}, "
                         f"DEPTHS {depths}, NUM_HEADS {num_heads}")
    if sum(depths) < 2:
        # torchvision spreads stochastic depth over blocks 0..n-1 and divides by n - 1.
        raise ValueError(f"MODEL.SWIN.DEPTHS must hold at least 2 blocks in all, got {depths}")
    for k, heads in enumerate(num_heads):
        if (embed_dim * 2 ** k) % heads:
            raise ValueError(f"MODEL.SWIN: stage {k + 1} has {embed_dim * 2 ** k} channels, not "
                             f"divisible by its {heads} heads (NUM_HEADS)")
    if not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(f"MODEL.SWIN.DROP_PATH_RATE must be in [0, 1), got {drop_path_rate}")


@BACKBONE_REGISTRY.register()
def build_swin_t_backbone(cfg, input_shape: ShapeSpec) -> SwinTransformerBackbone:
    """The Swin backbone from ``MODEL.SWIN`` and ``MODEL.BACKBONE.FREEZE_AT``.

    Raises:
        ValueError: ``input_shape`` is not 3-channel, or bad ``MODEL.SWIN`` values (see
            :class:`SwinTransformerBackbone`).
    """
    if input_shape.channels != 3:
        raise ValueError(f"Swin backbone expects 3-channel images (MODEL.PIXEL_MEAN), got "
                         f"{input_shape.channels}")
    node = cfg.MODEL.SWIN
    return SwinTransformerBackbone(
        embed_dim=node.EMBED_DIM, depths=node.DEPTHS, num_heads=node.NUM_HEADS,
        window_size=node.WINDOW_SIZE, mlp_ratio=node.MLP_RATIO,
        drop_path_rate=node.DROP_PATH_RATE, out_features=node.OUT_FEATURES,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
    )


@BACKBONE_REGISTRY.register()
def build_swin_t_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """Swin + FPN (``MODEL.FPN.*``) + ``LastLevelMaxPool``: ``p2`` .. ``p6`` for Mask R-CNN.

    Its ``size_divisibility`` is the largest input stride (32 for ``res5``), so detectron2
    pads each batch to a multiple of it.
    """
    bottom_up = build_swin_t_backbone(cfg, input_shape)
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
