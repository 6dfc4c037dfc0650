"""RoI heads that report how many RoIs the dense contrastive loss used."""

from __future__ import annotations

from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.utils.events import get_event_storage

from dcl_core.monitor import ValidRoIWatch


@ROI_HEADS_REGISTRY.register()
class ContrastRoIHeads(StandardROIHeads):
    """``StandardROIHeads`` whose mask branch carries the dense contrastive loss.

    Identical to the standard heads except that, in training, the number of foreground RoIs the
    loss considered and how many of them were valid (``K < |mask| < H*W - K``) are logged to the
    event storage as ``contrast/num_rois`` and ``contrast/num_valid_rois`` each iteration, as the
    authors' code does, and a one-line warning says when none has been valid for many
    iterations in a row (:class:`dcl_core.monitor.ValidRoIWatch`). Requires a mask head with a
    ``contrast_loss`` attribute (``ContrastConvUpsampleHead``);
    ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT 0`` makes it the baseline.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.mask_on and not hasattr(self.mask_head, "contrast_loss"):
            raise ValueError(
                "MODEL.ROI_HEADS.NAME ContrastRoIHeads needs MODEL.ROI_MASK_HEAD.NAME "
                f"ContrastConvUpsampleHead, got {type(self.mask_head).__name__}"
            )
        self.valid_roi_watch = ValidRoIWatch()

    def _forward_mask(self, features, instances):
        out = super()._forward_mask(features, instances)
        loss = getattr(self.mask_head, "contrast_loss", None) if self.mask_on else None
        if self.training and loss is not None:
            storage = get_event_storage()
            storage.put_scalar("contrast/num_rois", loss.last_num_rois, smoothing_hint=False)
            storage.put_scalar("contrast/num_valid_rois", loss.last_num_valid, smoothing_hint=False)
            self.valid_roi_watch.update(loss.last_num_rois, loss.last_num_valid)
        return out
