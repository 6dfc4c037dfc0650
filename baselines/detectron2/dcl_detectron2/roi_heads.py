"""RoI heads that report how many RoIs the pixel-contrastive losses used."""

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
    iterations in a row (:class:`dcl_core.monitor.ValidRoIWatch`). Each other loss of the mask
    head (``extra_losses``, e.g. ContrastMask's, whose valid RoIs are those it keeps) is logged
    the same way as ``{name}/num_rois`` and ``{name}/num_valid_rois``. Requires a mask head with a
    ``contrast_loss`` attribute (``ContrastConvUpsampleHead``);
    ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT 0`` (and no other loss enabled) makes it the
    baseline.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.mask_on and not hasattr(self.mask_head, "contrast_loss"):
            raise ValueError(
                "MODEL.ROI_HEADS.NAME ContrastRoIHeads needs MODEL.ROI_MASK_HEAD.NAME "
                f"ContrastConvUpsampleHead, got {type(self.mask_head).__name__}"
            )
        self.valid_roi_watch = ValidRoIWatch()
        self.extra_roi_watches: dict[str, ValidRoIWatch] = {}

    def _forward_mask(self, features, instances):
        out = super()._forward_mask(features, instances)
        if not (self.training and self.mask_on):
            return out
        loss = getattr(self.mask_head, "contrast_loss", None)
        watched = [("contrast", loss, self.valid_roi_watch)] if loss is not None else []
        extra = getattr(self.mask_head, "extra_losses", None) or {}
        watched += [(name, module, self.extra_roi_watches.setdefault(
                        name, ValidRoIWatch(name=f"loss_{name}")))
                    for name, module in extra.items() if hasattr(module, "last_num_rois")]
        if watched:
            storage = get_event_storage()
        for prefix, module, watch in watched:
            storage.put_scalar(f"{prefix}/num_rois", module.last_num_rois, smoothing_hint=False)
            storage.put_scalar(f"{prefix}/num_valid_rois", module.last_num_valid,
                               smoothing_hint=False)
            watch.update(module.last_num_rois, module.last_num_valid)
        return out
