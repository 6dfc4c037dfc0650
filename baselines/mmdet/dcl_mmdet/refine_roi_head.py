"""RoI head of RefineMask for mmdetection 3: a ``StandardRoIHead`` whose mask branch also reads
P2 (for the semantic head) and the RoIs' classes (for the class-specific stage predictors)."""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi

__all__ = ["RefineRoIHead"]


@MODELS.register_module()
class RefineRoIHead(StandardRoIHead):
    """Box branch as Mask R-CNN; mask branch :class:`~dcl_mmdet.RefineMaskHead`.

    Training: the mask head sees the positive proposals with their matched gt classes.
    Inference: it sees the detections with their predicted classes; the stages are merged by
    boundary-aware refinement and the 112 x 112 masks pasted into the image.

    Raises:
        ValueError: at construction, when no ``mask_roi_extractor`` is configured (RefineMask
            needs 14 x 14 mask RoIs, unlike the 7 x 7 box RoIs).
    """

    def init_mask_head(self, mask_roi_extractor, mask_head) -> None:
        if mask_roi_extractor is None:
            raise ValueError("RefineRoIHead needs its own mask_roi_extractor (RoIAlign, output_size=14)")
        super().init_mask_head(mask_roi_extractor, mask_head)

    def _mask_forward(self, x: Tuple[Tensor], rois: Tensor, labels: Tensor) -> dict:
        roi_feats = self.mask_roi_extractor(x[:self.mask_roi_extractor.num_inputs], rois)
        return self.mask_head(roi_feats, x[0], rois, labels)

    def mask_loss(self, x: Tuple[Tensor], sampling_results: List, bbox_feats: Tensor,
                  batch_gt_instances: List) -> dict:
        """Mask-branch losses on the positive proposals (``bbox_feats`` is unused)."""
        rois = bbox2roi([res.pos_priors for res in sampling_results])
        labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        results = self._mask_forward(x, rois, labels)
        out = self.mask_head.loss_and_target(results, sampling_results, batch_gt_instances,
                                             self.train_cfg)
        results.update(loss_mask=out["loss_mask"], mask_targets=out["mask_targets"])
        return results

    def predict_mask(self, x: Tuple[Tensor], batch_img_metas: List[dict], results_list: List,
                     rescale: bool = False) -> List:
        bboxes = [res.bboxes for res in results_list]
        rois = bbox2roi(bboxes)
        if rois.shape[0] == 0:
            return empty_instances(batch_img_metas, rois.device, task_type="mask",
                                   instance_results=results_list,
                                   mask_thr_binary=self.test_cfg.mask_thr_binary)
        labels = torch.cat([res.labels for res in results_list])
        results = self._mask_forward(x, rois, labels)
        final = self.mask_head.refine(results["stage_logits"])
        final = final.split([len(res) for res in results_list], 0)
        return self.mask_head.predict_by_feat(final, results_list, batch_img_metas, self.test_cfg,
                                              rescale=rescale)

    def forward(self, x: Tuple[Tensor], rpn_results_list: List, batch_data_samples=None) -> tuple:
        """Tensor mode (``model(..., mode='tensor')``): box outputs and the refined mask logits
        of the first 100 proposals, each taken as class 0."""
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        bbox_results = self._bbox_forward(x, rois)
        outputs = (bbox_results["cls_score"], bbox_results["bbox_pred"])
        if self.with_mask:
            mask_rois = rois[:100]
            labels = mask_rois.new_zeros(mask_rois.shape[0], dtype=torch.long)
            results = self._mask_forward(x, mask_rois, labels)
            outputs = outputs + (self.mask_head.refine(results["stage_logits"]),)
        return outputs
