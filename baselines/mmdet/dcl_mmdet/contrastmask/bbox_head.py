"""ContrastMask's box head: a conv box head that also returns class activation maps (CAMs).

Official ``Shared2FCBBoxWithCAMHead`` (huiserwang/ContrastMask
``ilib/model/contrastmask_head/bbox_head.py``, reference A.2 item 1-2): despite its name, 4
shared 3x3 convs, no FC, a 1-conv classification branch and a 2-conv regression branch, each
average-pooled before its linear predictor. The CAM of a RoI is the classification branch's
conv output (``C x 7 x 7``, after ReLU) projected on the classifier's weights, per pixel:
``cam[k, y, x] = fc_cls.weight[k] . feat[:, y, x]`` (no bias), with the weights DETACHED, so a
loss through the CAM trains the branch's convs, never ``fc_cls``.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from mmdet.models.layers import multiclass_nms
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmengine.structures import InstanceData

__all__ = ["CamConvBBoxHead"]


@MODELS.register_module()
class CamConvBBoxHead(ConvFCBBoxHead):
    """Box head of ContrastMask: ``forward`` returns (cls_score, bbox_pred, cam).

    Args:
        num_shared_convs, num_cls_convs, num_reg_convs: the official 4, 1 and 2.
        **kwargs: ``ConvFCBBoxHead``'s (``with_avg_pool`` is forced True, no FCs).

    Shapes: input RoI features float ``[N, C, S, S]`` (S = 7); ``cls_score`` ``[N, K + 1]``,
    ``bbox_pred`` ``[N, 4K]`` (or ``[N, 4]``, class-agnostic), ``cam`` ``[N, K + 1, S, S]``
    (unnormalised; K classes, the last channel background).

    At prediction, each detection also gets ``roi_index`` (long): the RoI of the image it was
    decoded from (``multiclass_nms(return_inds=True)``, the official test path), so the RoI
    head can pick the detection's CAM.
    """

    def __init__(self, num_shared_convs: int = 4, num_cls_convs: int = 1,
                 num_reg_convs: int = 2, **kwargs) -> None:
        for key in ("num_shared_fcs", "num_cls_fcs", "num_reg_fcs"):
            if kwargs.pop(key, 0):
                raise ValueError(f"CamConvBBoxHead has no FC layers ({key} must be 0)")
        kwargs["with_avg_pool"] = True
        super().__init__(num_shared_convs=num_shared_convs, num_shared_fcs=0,
                         num_cls_convs=num_cls_convs, num_cls_fcs=0,
                         num_reg_convs=num_reg_convs, num_reg_fcs=0, **kwargs)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        for conv in self.shared_convs:
            x = conv(x)
        x_cls, x_reg = x, x
        for conv in self.cls_convs:
            x_cls = conv(x_cls)
        # Projected on the detached classifier weights, no bias (bbox_head.py:L52-53, L70-71).
        cam = torch.einsum("nchw,kc->nkhw", x_cls, self.fc_cls.weight.detach())
        x_cls = self.avg_pool(x_cls).flatten(1)
        for conv in self.reg_convs:
            x_reg = conv(x_reg)
        x_reg = self.avg_pool(x_reg).flatten(1)
        return self.fc_cls(x_cls), self.fc_reg(x_reg), cam

    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                                img_meta: dict, rescale: bool = False,
                                rcnn_test_cfg=None) -> InstanceData:
        """mmdet's ``BBoxHead._predict_by_feat_single`` with ``roi_index`` on each detection."""
        results = InstanceData()
        if roi.shape[0] == 0 or rcnn_test_cfg is None:
            results = super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                                      rescale, rcnn_test_cfg)
            if rcnn_test_cfg is not None:
                results.roi_index = roi.new_zeros(0, dtype=torch.long)
            return results
        scores = torch.softmax(cls_score, dim=-1)
        num_classes = 1 if self.reg_class_agnostic else self.num_classes
        rois = roi.repeat_interleave(num_classes, dim=0)
        bbox_pred = bbox_pred.view(-1, self.bbox_coder.encode_size)
        bboxes = self.bbox_coder.decode(rois[..., 1:], bbox_pred, max_shape=img_meta["img_shape"])
        if rescale and bboxes.size(0) > 0:
            bboxes = scale_boxes(bboxes, [1 / s for s in img_meta["scale_factor"]])
        bboxes = get_box_tensor(bboxes)
        box_dim = bboxes.size(-1)
        bboxes = bboxes.view(roi.shape[0], -1)
        dets, labels, inds = multiclass_nms(bboxes, scores, rcnn_test_cfg.score_thr,
                                            rcnn_test_cfg.nms, rcnn_test_cfg.max_per_img,
                                            box_dim=box_dim, return_inds=True)
        results.bboxes = dets[:, :-1]
        results.scores = dets[:, -1]
        results.labels = labels
        # inds index the [num_rois x num_classes] candidates (background excluded).
        results.roi_index = inds // self.num_classes
        return results
