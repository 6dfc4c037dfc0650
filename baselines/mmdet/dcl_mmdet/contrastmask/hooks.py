"""The epoch ramp of ContrastMask's loss weight as an mmengine hook.

Official: ``SelfTensorboardLoggerHook`` (huiserwang/ContrastMask
``ilib/utils/tensorboard_utils.py:L24-27``) sets the contrastive weight in ``before_epoch`` to
``w(e) = min(max(0.25, e / 4), 1)`` of mmcv's 0-based ``runner.epoch``
(:meth:`dcl_core.contrastmask.ContrastMaskSettings.epoch_weight`). Its 3x configs wrap the
data in ``RepeatDataset(times=3)``, so one runner epoch there is 3 COCO epochs and the ramp
spans 12 COCO epochs; mmdet 3's 3x recipe is 36 plain epochs, hence ``period=3`` in our 3x
configs (the ramp's epoch is ``runner.epoch // period``).

The weight is recomputed from the runner's counters before EVERY iteration, never stored, so a
resumed run continues on the ramp where it stopped (the hook holds no state to checkpoint).
Iteration-based schedules (the embedded config) use ``by_epoch=False``: the ramp's epoch is
then ``runner.iter // period`` (``period`` iterations stand for one epoch).
"""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

__all__ = ["ContrastRampHook"]


@HOOKS.register_module()
class ContrastRampHook(Hook):
    """Sets the ramp epoch of ContrastMask's loss before each training iteration.

    Args:
        period: runner epochs (``by_epoch``) or iterations per ramp epoch; >= 1.
        by_epoch: count epochs (True) or iterations (False).

    The model's ``roi_head.mask_head`` must have ``set_ramp_epoch(e)``
    (:class:`~dcl_mmdet.contrastmask.ContrastMaskHead`); a head without a contrastive loss
    ignores it.

    Raises:
        ValueError: ``period`` < 1.
        AttributeError: at the first iteration, a model without such a mask head.
    """

    priority = "NORMAL"

    def __init__(self, period: int = 1, by_epoch: bool = True) -> None:
        if int(period) != period or period < 1:
            raise ValueError(f"period must be an integer >= 1, got {period}")
        self.period = int(period)
        self.by_epoch = bool(by_epoch)

    def ramp_epoch(self, runner) -> int:
        """The 0-based ramp epoch of the runner's current position."""
        return (runner.epoch if self.by_epoch else runner.iter) // self.period

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = getattr(getattr(model, "roi_head", None), "mask_head", None)
        if not hasattr(head, "set_ramp_epoch"):
            raise AttributeError("ContrastRampHook: the model's roi_head.mask_head has no "
                                 "set_ramp_epoch (not a ContrastMaskHead)")
        head.set_ramp_epoch(self.ramp_epoch(runner))
