"""ContrastMask's RoI head for mmdetection 3 (partially-supervised Mask R-CNN + CAM + CL head).

Official ``StandardRoIHeadPS`` (huiserwang/ContrastMask ``ilib/model/contrastmask_head/
roi_head.py``; reference A.2-A.4):

- box branch: :class:`~dcl_mmdet.contrastmask.CamConvBBoxHead`, whose CAMs (one per RoI and
  class, 7 x 7) reach the mask branch. Training: each positive RoI takes the CAM channel of its
  ground-truth class (novel classes too: every instance has a box label); testing: of its
  predicted class, through the NMS keep indices. Resized bilinearly 7 -> 14;
- contrastive branch: a second RoI extractor (RoIAlign 28 x 28) whose output is DETACHED
  (roi_head.py:L266), encoded and scored by :class:`dcl_core.contrastmask.ContrastMaskLoss`
  (logged ``loss_contrast``), on EVERY positive RoI, base and novel; the encoded features feed
  the mask head at training and test time (:class:`~dcl_mmdet.contrastmask.ContrastMaskHead`);
- mask BCE (``loss_mask``) only on positive RoIs that are ground-truth boxes added as proposals
  (``pos_is_gt``) AND of a base class (roi_head.py:L176-179, L213-215); ``mask_train_rois=
  'base'`` trains every positive base RoI instead (a standard Mask R-CNN restricted to base
  classes). Novel instances never get a mask loss.

Instances need ``is_novel`` (bool), which :class:`~dcl_mmdet.contrastmask.CocoPartialDataset`
with :class:`~dcl_mmdet.contrastmask.PackPartialInputs` provide.

Unlike the official code, the CAMs of the positive RoIs are found from each image's own RoI
count (positives come first in each image's sampled RoIs), not by assuming exactly 512 RoIs per
image (roi_head.py:L183-184, which breaks when the sampler returns fewer).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi

__all__ = ["ContrastMaskRoIHead"]

MASK_TRAIN_ROIS = ("base_gt", "base")


@MODELS.register_module()
class ContrastMaskRoIHead(StandardRoIHead):
    """``StandardRoIHead`` of ContrastMask (see the module docstring).

    Args:
        contrast_roi_extractor: the contrastive branch's RoI extractor config (RoIAlign,
            ``output_size`` = the mask head's ``contrast_size``, 28); needed when the mask head
            builds a contrastive loss, else unused.
        mask_train_rois: ``'base_gt'`` (official) or ``'base'``: which positive RoIs the mask
            BCE trains on.
        **kwargs: ``StandardRoIHead``'s; ``bbox_head`` must return CAMs
            (:class:`~dcl_mmdet.contrastmask.CamConvBBoxHead`).

    Raises:
        ValueError: an unknown ``mask_train_rois``; ``'base_gt'`` with a sampler that does not
            add the ground-truth boxes as proposals (no RoI would ever get a mask loss); a
            contrastive loss without ``contrast_roi_extractor``, or one whose output size
            differs from the mask head's ``contrast_size``.
    """

    def __init__(self, *args, contrast_roi_extractor: Optional[dict] = None,
                 mask_train_rois: str = "base_gt", **kwargs) -> None:
        if mask_train_rois not in MASK_TRAIN_ROIS:
            raise ValueError(f"mask_train_rois must be one of {MASK_TRAIN_ROIS}, "
                             f"got {mask_train_rois!r}")
        self.mask_train_rois = mask_train_rois
        super().__init__(*args, **kwargs)
        sampler = (self.train_cfg or {}).get("sampler") or {}
        if mask_train_rois == "base_gt" and self.train_cfg and \
                not sampler.get("add_gt_as_proposals", True):
            raise ValueError("mask_train_rois='base_gt' needs train_cfg.rcnn.sampler."
                             "add_gt_as_proposals=True (the mask loss trains on gt-box RoIs)")
        self.contrast_roi_extractor = None
        if self.with_mask and self.mask_head.contrast_loss is not None:
            if contrast_roi_extractor is None:
                raise ValueError("ContrastMaskRoIHead: the mask head's contrastive loss needs a "
                                 "contrast_roi_extractor (RoIAlign, output_size=28)")
            self.contrast_roi_extractor = MODELS.build(contrast_roi_extractor)
            size = self.contrast_roi_extractor.roi_layers[0].output_size
            if tuple(size) != (self.mask_head.contrast_size,) * 2:
                raise ValueError(f"contrast_roi_extractor output_size {tuple(size)} differs "
                                 f"from the mask head's contrast_size {self.mask_head.contrast_size}")

    # ------------------------------------------------------------------ box branch
    def _bbox_forward(self, x: Tuple[Tensor], rois: Tensor) -> dict:
        bbox_feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        cls_score, bbox_pred, cam = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats, cam=cam)

    # ------------------------------------------------------------------ training
    def loss(self, x: Tuple[Tensor], rpn_results_list: List, batch_data_samples: List) -> dict:
        """As ``StandardRoIHead.loss``, with the box branch's CAMs handed to the mask branch."""
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop("bboxes")
            assign_result = self.bbox_assigner.assign(rpn_results, batch_gt_instances[i],
                                                      batch_gt_instances_ignore[i])
            sampling_results.append(self.bbox_sampler.sample(
                assign_result, rpn_results, batch_gt_instances[i],
                feats=[lvl_feat[i][None] for lvl_feat in x]))
        losses = {}
        bbox_results = self.bbox_loss(x, sampling_results)
        losses.update(bbox_results["loss_bbox"])
        if self.with_mask:
            losses.update(self.mask_loss(x, sampling_results, bbox_results["cam"],
                                         batch_gt_instances)["loss_mask"])
        return losses

    def mask_loss(self, x: Tuple[Tensor], sampling_results: List, cams: Tensor,
                  batch_gt_instances: List) -> dict:
        """Mask BCE on the base (ground-truth-box) RoIs and the contrastive loss on all
        positive RoIs.

        Args:
            cams: the box branch's CAMs of every sampled RoI, ``[sum N_i, K + 1, 7, 7]``.

        Returns:
            ``{"loss_mask": {"loss_mask": ..., "loss_contrast": ...}, "mask_preds": ...,
            "mask_targets": ...}``.

        Raises:
            KeyError: ground-truth instances without ``is_novel``.
        """
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        # Positives come first among each image's sampled RoIs.
        starts = torch.tensor([0] + [len(res.priors) for res in sampling_results[:-1]],
                              device=labels.device).cumsum(0)
        pos_index = torch.cat([start + torch.arange(len(res.pos_priors), device=labels.device)
                               for start, res in zip(starts, sampling_results)])
        cam = self._roi_cams(cams[pos_index], labels)
        is_novel = []
        for res, gt in zip(sampling_results, batch_gt_instances):
            if "is_novel" not in gt:
                raise KeyError("gt_instances have no 'is_novel': train ContrastMask on "
                               "CocoPartialDataset with PackPartialInputs")
            is_novel.append(gt.is_novel.to(labels.device).bool()[res.pos_assigned_gt_inds])
        is_novel = torch.cat(is_novel)
        mask_targets = self.mask_head.get_targets(sampling_results, batch_gt_instances,
                                                  self.train_cfg)
        results = self._mask_forward(x, pos_rois, cam, mask_targets=mask_targets,
                                     is_novel=is_novel)
        losses = {}
        if results["loss_contrast"] is not None:
            losses["loss_contrast"] = results["loss_contrast"]
        trained = ~is_novel
        if self.mask_train_rois == "base_gt":
            trained &= torch.cat([res.pos_is_gt for res in sampling_results]).bool()
        preds = results["mask_preds"][trained]
        if preds.shape[0] == 0:  # no base gt-box RoI in the batch: a zero that keeps the graph
            losses["loss_mask"] = results["mask_preds"].sum() * 0
        else:
            target_labels = torch.zeros_like(labels[trained]) if self.mask_head.class_agnostic \
                else labels[trained]
            losses["loss_mask"] = self.mask_head.loss_mask(preds, mask_targets[trained],
                                                           target_labels)
        return dict(loss_mask=losses, mask_preds=results["mask_preds"], mask_targets=mask_targets)

    # ------------------------------------------------------------------ mask branch
    @staticmethod
    def _roi_cams(cams: Tensor, labels: Tensor, size: int = 14) -> Tensor:
        """Each RoI's CAM at its class, resized bilinearly (7 -> 14): ``[N, 1, 14, 14]``."""
        cam = cams[torch.arange(len(labels), device=cams.device), labels][:, None]
        return F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)

    def _mask_forward(self, x: Tuple[Tensor], rois: Tensor, cam: Optional[Tensor] = None,
                      mask_targets: Optional[Tensor] = None, is_novel: Optional[Tensor] = None,
                      **unused) -> dict:
        """Mask logits of ``rois`` (``[N, 5]``) with their CAMs (``[N, 1, 14, 14]``; None in
        mmdet's tensor mode, which has no classes), and, in training (``mask_targets`` float
        ``[N, 28, 28]`` and ``is_novel`` bool ``[N]`` given), the contrastive loss.

        The contrastive loss's prior is the CAM detached and resized 14 -> 28
        (mask_head.py:L64); its features are detached inside the loss (``detach_features``).

        Returns:
            ``{"mask_preds": [N, 1, 28, 28], "mask_feats", "loss_contrast" (0-dim, or None
            outside training or without a contrastive branch)}``.
        """
        if unused.get("pos_inds") is not None:
            raise ValueError("ContrastMaskRoIHead needs its own mask_roi_extractor")
        mask_feats = self.mask_roi_extractor(x[:self.mask_roi_extractor.num_inputs], rois)
        encoded = loss = None
        if self.contrast_roi_extractor is not None:
            feats = self.contrast_roi_extractor(x[:self.contrast_roi_extractor.num_inputs], rois)
            contrast = self.mask_head.contrast_loss
            if mask_targets is None:
                encoded = contrast.encode(feats)
            else:
                prior = F.interpolate(cam.detach(), size=feats.shape[-2:], mode="bilinear",
                                      align_corners=False)[:, 0]
                loss, encoded = contrast.loss_and_encoded(feats, mask_targets > 0.5, cam=prior,
                                                          is_novel=is_novel)
        mask_preds = self.mask_head(mask_feats, cam, encoded)
        return dict(mask_preds=mask_preds, mask_feats=mask_feats, loss_contrast=loss)

    # ------------------------------------------------------------------ prediction
    def predict_bbox(self, x: Tuple[Tensor], batch_img_metas: List[dict], rpn_results_list: List,
                     rcnn_test_cfg, rescale: bool = False) -> List:
        """``StandardRoIHead.predict_bbox``; each detection also keeps the proposal it came
        from (``cam_rois``, for its CAM)."""
        proposals = [res.bboxes for res in rpn_results_list]
        results_list = super().predict_bbox(x, batch_img_metas, rpn_results_list, rcnn_test_cfg,
                                            rescale)
        for res, boxes in zip(results_list, proposals):
            if "roi_index" in res:
                res.cam_rois = boxes[res.pop("roi_index")]
        return results_list

    def predict_mask(self, x: Tuple[Tensor], batch_img_metas: List[dict], results_list: List,
                     rescale: bool = False) -> List:
        """Masks of the detections, each with the CAM of its proposal at its predicted class
        (the official test path, bbox_head.py:L137-143, roi_head.py:L407-410)."""
        if sum(len(res) for res in results_list) == 0:
            for res in results_list:
                res.pop("cam_rois", None)
            return empty_instances(batch_img_metas, x[0].device, task_type="mask",
                                   instance_results=results_list,
                                   mask_thr_binary=self.test_cfg.mask_thr_binary)
        rois = bbox2roi([res.bboxes for res in results_list])
        cam_rois = bbox2roi([res.pop("cam_rois") for res in results_list])
        labels = torch.cat([res.labels for res in results_list])
        cam = self._roi_cams(self._bbox_forward(x, cam_rois)["cam"], labels)
        mask_preds = self._mask_forward(x, rois, cam)["mask_preds"]
        mask_preds = mask_preds.split([len(res) for res in results_list], 0)
        return self.mask_head.predict_by_feat(mask_preds=mask_preds, results_list=results_list,
                                              batch_img_metas=batch_img_metas,
                                              rcnn_test_cfg=self.test_cfg, rescale=rescale)
