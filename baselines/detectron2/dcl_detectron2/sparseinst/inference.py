"""SparseInst's post-processing into detectron2 ``Instances`` (Cheng et al., Sec. 3.6)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from detectron2.structures import Boxes, Instances

__all__ = ["mask_boxes", "sparseinst_inference"]


def mask_boxes(masks: torch.Tensor) -> Boxes:
    """Tight XYXY boxes of bool ``[n, H, W]`` masks, in pixels (x1, y1 exclusive); empty -> 0.

    Same convention as ``BitMasks.get_bounding_boxes``, vectorised (no per-mask loop or sync).
    """
    n, h, w = masks.shape
    cols, rows = masks.any(dim=1), masks.any(dim=2)  # [n, W], [n, H]
    # argmax of a 0/1 row finds its first 1; on the flipped row, the last 1 counted from the end.
    x0 = cols.float().argmax(dim=1)
    x1 = w - cols.flip(1).float().argmax(dim=1)
    y0 = rows.float().argmax(dim=1)
    y1 = h - rows.flip(1).float().argmax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return Boxes(torch.where(cols.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes)))


def sparseinst_inference(
    outputs: Dict[str, torch.Tensor],
    image_sizes: List[Tuple[int, int]],
    output_sizes: List[Tuple[int, int]],
    padded_size: Tuple[int, int],
    cls_threshold: float = 0.005,
    mask_threshold: float = 0.45,
    max_detections: int = 100,
    maskness_rescore: bool = True,
) -> List[Instances]:
    """Turn the decoder's outputs into per-image detections, without NMS or boxes regression.

    Per prediction the score is sqrt(p_class x objectness) (SparseInst Sec. 3.6) for its best
    class; predictions scoring at most ``cls_threshold`` are dropped and the
    ``max_detections`` best are kept. With ``maskness_rescore`` the score is multiplied by the
    mean probability over the predicted mask's pixels (the authors' code). Masks are upsampled
    to the padded input, cropped to the image, resized to the output size and binarised at
    ``mask_threshold``; boxes are the masks' tight boxes (all zero for an empty mask).

    Args:
        outputs: the decoder's ``logits`` [B, N, K], ``objectness`` [B, N, 1] and ``masks``
            [B, N, h, w] (logits).
        image_sizes: per image, (height, width) of the resized input before padding.
        output_sizes: per image, (height, width) of the requested output (the original image).
        padded_size: (height, width) of the padded batch tensor.
        cls_threshold, mask_threshold, max_detections, maskness_rescore: as above.

    Returns:
        per image, ``Instances`` of the output size with ``pred_masks`` bool [n, H, W],
        ``pred_boxes`` (``Boxes``, XYXY pixels), ``scores`` float [n] (descending) and
        ``pred_classes`` int64 [n] (contiguous ids).
    """
    scores_all = torch.sqrt(outputs["logits"].sigmoid() * outputs["objectness"].sigmoid())
    results = []
    for scores, masks, (h, w), out_size in zip(scores_all, outputs["masks"], image_sizes,
                                                output_sizes):
        scores, labels = scores.max(dim=-1)
        keep = torch.nonzero(scores > cls_threshold).squeeze(1)
        if len(keep) > max_detections:
            keep = keep[scores[keep].topk(max_detections).indices]
        scores, labels, probs = scores[keep], labels[keep], masks[keep].sigmoid()
        if maskness_rescore and len(keep):
            binary = (probs > mask_threshold).float()
            scores = scores * (probs * binary).sum((1, 2)) / (binary.sum((1, 2)) + 1e-6)
        order = scores.argsort(descending=True)
        scores, labels, probs = scores[order], labels[order], probs[order]

        result = Instances(tuple(out_size))
        if len(probs):
            probs = F.interpolate(probs[:, None], size=padded_size, mode="bilinear",
                                  align_corners=False)[:, :, :h, :w]
            probs = F.interpolate(probs, size=tuple(out_size), mode="bilinear",
                                  align_corners=False)[:, 0]
            binary = probs > mask_threshold
        else:
            binary = torch.zeros((0, *out_size), dtype=torch.bool, device=probs.device)
        result.pred_masks = binary
        result.pred_boxes = mask_boxes(binary)
        result.scores = scores
        result.pred_classes = labels
        results.append(result)
    return results
