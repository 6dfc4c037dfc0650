"""SparseInst (Cheng et al., "Sparse Instance Activation for Real-Time Instance Segmentation",
CVPR 2022) as a detectron2 meta-architecture, optionally with the dense contrastive loss."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import BitMasks, ImageList, Instances, PolygonMasks
from detectron2.utils.events import get_event_storage

from .contrast import GTBoxContrast, build_gt_box_contrast
from .decoder import IAMDecoder, InstanceBranch, MaskBranch
from .encoder import InstanceContextEncoder
from .inference import sparseinst_inference
from .loss import SparseInstCriterion
from .matcher import HungarianMatcher

__all__ = ["SparseInst"]


def _bit_masks(masks, height: int, width: int) -> torch.Tensor:
    """An image's ground-truth masks as bool ``[T, height, width]``."""
    if isinstance(masks, PolygonMasks):
        if len(masks) == 0:
            return torch.zeros((0, height, width), dtype=torch.bool)
        return BitMasks.from_polygon_masks(masks, height, width).tensor
    if isinstance(masks, BitMasks):
        return masks.tensor.bool()
    raise TypeError(f"gt_masks must be BitMasks or PolygonMasks, got {type(masks).__name__}")


@META_ARCH_REGISTRY.register()
class SparseInst(nn.Module):
    """SparseInst: backbone (C3-C5) -> instance context encoder -> IAM decoder (Figure 2).

    Training matches the N predictions of each image one-to-one to its ground truths and
    returns SparseInst's losses (``loss_cls``, ``loss_dice``, ``loss_mask``,
    ``loss_objectness``; :class:`SparseInstCriterion`), plus ``loss_contrast`` when a dense
    contrastive loss is configured (``MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT`` > 0):
    DCL on the mask branch's output at the ground-truth boxes (DCL paper Sec. 5.2,
    :class:`GTBoxContrast`). Inference returns detectron2 ``Instances`` (``pred_masks``,
    ``pred_boxes`` from the masks, ``scores``, ``pred_classes``) without NMS.

    Input: detectron2's list of dicts, ``image`` uint8/float ``[3, H, W]`` in
    ``INPUT.FORMAT`` order, optional ``height``/``width`` (output size), and in training
    ``instances`` with ``gt_classes``, ``gt_boxes`` and ``gt_masks``.

    Built from a config by detectron2's ``build_model`` (``MODEL.META_ARCHITECTURE:
    SparseInst``, keys of :func:`add_sparseinst_config`), or from modules directly.

    Raises:
        ValueError: from the config, ``MODEL.MASK_ON`` is False (the data loader would drop
            the masks SparseInst trains on); in training, an input without ``instances`` or
            ``gt_masks``.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        encoder: InstanceContextEncoder,
        decoder: IAMDecoder,
        criterion: SparseInstCriterion,
        pixel_mean: Tuple[float, float, float],
        pixel_std: Tuple[float, float, float],
        contrast: Optional[GTBoxContrast] = None,
        size_divisibility: int = 32,
        cls_threshold: float = 0.005,
        mask_threshold: float = 0.45,
        max_detections: int = 100,
        maskness_rescore: bool = True,
    ):
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.decoder = decoder
        self.criterion = criterion
        # Last child: the projection serves the loss only (no test-time cost).
        self.contrast = contrast
        self.size_divisibility = size_divisibility
        self.cls_threshold = cls_threshold
        self.mask_threshold = mask_threshold
        self.max_detections = max_detections
        self.maskness_rescore = maskness_rescore
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        if not cfg.MODEL.MASK_ON:
            raise ValueError("SparseInst trains on masks: set MODEL.MASK_ON True")
        node = cfg.MODEL.SPARSE_INST
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        encoder = InstanceContextEncoder(shapes, node.IN_FEATURES, node.ENCODER.NUM_CHANNELS,
                                         node.ENCODER.NORM)
        dec = node.DECODER
        in_channels = encoder.out_channels + 2  # + x, y coordinates
        decoder = IAMDecoder(
            InstanceBranch(in_channels, cfg.MODEL.ROI_HEADS.NUM_CLASSES, dec.NUM_MASKS,
                           dec.KERNEL_DIM, dec.INST.DIM, dec.INST.CONVS, dec.GROUPS,
                           dec.IAM_ACTIVATION, dec.NORM),
            MaskBranch(in_channels, dec.KERNEL_DIM, dec.MASK.DIM, dec.MASK.CONVS, dec.NORM),
            dec.SCALE_FACTOR,
        )
        loss = node.LOSS
        criterion = SparseInstCriterion(
            HungarianMatcher(node.MATCHER.ALPHA), loss.CLASS_WEIGHT, loss.MASK_DICE_WEIGHT,
            loss.MASK_PIXEL_WEIGHT, loss.OBJECTNESS_WEIGHT, loss.FOCAL_ALPHA, loss.FOCAL_GAMMA,
        )
        return {
            "backbone": backbone,
            "encoder": encoder,
            "decoder": decoder,
            "criterion": criterion,
            "contrast": build_gt_box_contrast(cfg, dec.KERNEL_DIM,
                                              shapes[node.IN_FEATURES[0]].stride),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            # 32 = the coarsest stride, so every level halves exactly and aligns.
            "size_divisibility": max(32, backbone.size_divisibility),
            "cls_threshold": node.CLS_THRESHOLD,
            "mask_threshold": node.MASK_THRESHOLD,
            "max_detections": cfg.TEST.DETECTIONS_PER_IMAGE,
            "maskness_rescore": node.MASKNESS_RESCORE,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        """Normalise and pad the images into one ``ImageList`` (padding bottom/right)."""
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std
                  for x in batched_inputs]
        return ImageList.from_tensors(images, self.size_divisibility)

    def prepare_targets(self, instances: List[Instances], padded_size: Tuple[int, int],
                        mask_size: Tuple[int, int]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Per image (masks float ``[T, h, w]`` in [0, 1], classes int64 ``[T]``).

        The masks are padded like the images and bilinearly resized to the predicted masks'
        size ``mask_size`` (1/4 of the padded input), as SparseInst's code does.
        """
        out = []
        for inst in instances:
            if not inst.has("gt_masks"):
                raise ValueError("SparseInst training needs gt_masks in every image's instances")
            h, w = inst.image_size
            masks = _bit_masks(inst.gt_masks, h, w).to(self.device)
            padded = masks.new_zeros((len(masks), *padded_size), dtype=torch.float32)
            padded[:, :h, :w] = masks
            if len(masks):
                padded = F.interpolate(padded[:, None], size=mask_size, mode="bilinear",
                                       align_corners=False)[:, 0]
            else:
                padded = padded.new_zeros((0, *mask_size))
            out.append((padded, inst.gt_classes.to(self.device)))
        return out

    def forward(self, batched_inputs: List[Dict]):
        """Losses (dict of 0-dim tensors) in training, else ``[{"instances": Instances}]``."""
        if self.training and any("instances" not in x for x in batched_inputs):
            raise ValueError("SparseInst training needs 'instances' in every input")
        images = self.preprocess_image(batched_inputs)
        outputs = self.decoder(self.encoder(self.backbone(images.tensor)))
        if self.training:
            gt = [x["instances"].to(self.device) for x in batched_inputs]
            targets = self.prepare_targets(gt, images.tensor.shape[-2:],
                                           outputs["masks"].shape[-2:])
            losses, _ = self.criterion(outputs, targets)
            if self.contrast is not None:
                losses["loss_contrast"] = self.contrast(outputs["mask_features"], gt)
                storage = get_event_storage()
                storage.put_scalar("contrast/num_rois", self.contrast.loss.last_num_rois,
                                   smoothing_hint=False)
                storage.put_scalar("contrast/num_valid_rois", self.contrast.loss.last_num_valid,
                                   smoothing_hint=False)
                self.contrast.valid_roi_watch.update(self.contrast.loss.last_num_rois,
                                                     self.contrast.loss.last_num_valid)
            return losses
        output_sizes = [(x.get("height", hw[0]), x.get("width", hw[1]))
                        for x, hw in zip(batched_inputs, images.image_sizes)]
        results = sparseinst_inference(
            outputs, images.image_sizes, output_sizes, tuple(images.tensor.shape[-2:]),
            self.cls_threshold, self.mask_threshold, self.max_detections, self.maskness_rescore,
        )
        return [{"instances": r} for r in results]
