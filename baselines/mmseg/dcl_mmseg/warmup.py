"""The CAC loss-weight warm-up as an mmengine hook (official ``loss_weight_warmup_hook.py``).

Official behaviour (mmseg 0.28 hook, configs ``start_iter=5000``; shared/reference/
contrastmask-cac.md B.4): ``before_run`` sets every CAC loss's ``loss_weight`` to 0 **only if
``runner.iter == 0``**, and ``after_iter`` restores the configured weight when the 0-based
``runner.iter == start_iter``. Iterations ``0 .. start_iter`` (start_iter + 1 of them) therefore
train at weight 0; the loss is still computed. A resumed run is never zeroed: resumed past
``start_iter`` it trains at full weight, as it should; resumed *inside* the warm-up it also
trains at full weight from the resume point (the official quirk), unless
``zero_resumed_warmup=True``, which keeps it at 0 until ``start_iter`` as an uninterrupted run
would.
"""

from __future__ import annotations

from typing import Dict

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

__all__ = ["CACWarmupHook"]


@HOOKS.register_module()
class CACWarmupHook(Hook):
    """Hold every :class:`dcl_mmseg.CACLoss` of the model at ``loss_weight`` 0 for the first
    iterations.

    Args:
        start_iter: the 0-based iteration after which the configured weight is restored
            (official 5000).
        zero_resumed_warmup: False (official): a resumed run is never zeroed; True: a run
            resumed at ``runner.iter <= start_iter`` is zeroed like a fresh one.

    Raises:
        ValueError: ``start_iter`` < 0.
        RuntimeError: at ``before_train``, when the model has no CAC loss (the hook would do
            nothing).
    """

    priority = "NORMAL"

    def __init__(self, start_iter: int = 5000, zero_resumed_warmup: bool = False) -> None:
        if start_iter < 0:
            raise ValueError(f"start_iter must be >= 0, got {start_iter}")
        self.start_iter = int(start_iter)
        self.zero_resumed_warmup = bool(zero_resumed_warmup)
        self._weights: Dict[object, float] = {}

    @staticmethod
    def _losses(runner):
        from .loss import CACLoss

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return [m for m in model.modules() if isinstance(m, CACLoss)]

    def before_train(self, runner) -> None:
        losses = self._losses(runner)
        if not losses:
            raise RuntimeError("CACWarmupHook: the model has no CACLoss (a baseline config "
                               "with the CAC warm-up hook?)")
        fresh = runner.iter == 0
        inside = runner.iter <= self.start_iter
        if fresh or (self.zero_resumed_warmup and inside):
            for loss in losses:
                self._weights[loss] = loss.loss_weight
                loss.loss_weight = 0.0
            runner.logger.info(f"CACWarmupHook: CAC loss weight 0 until iteration {self.start_iter}")

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter == self.start_iter and self._weights:
            for loss, weight in self._weights.items():
                loss.loss_weight = weight
            self._weights.clear()
            runner.logger.info(f"CACWarmupHook: CAC loss weight restored after iteration {runner.iter}")
