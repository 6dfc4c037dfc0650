"""A warning when the dense contrastive loss stops seeing valid RoIs.

With no valid RoI the loss is exactly 0 (:class:`dcl_core.DenseContrastiveLoss`), so a run can
train the baseline for hours under a DCL name without any error: masks too small or too large
for K at the mask resolution, an empty-mask data bug, or counts that barely fit. The adapters
feed this watch the counts they log anyway (``last_num_rois``, ``last_num_valid``).
"""

from __future__ import annotations

import logging
from typing import Optional

__all__ = ["ValidRoIWatch"]

logger = logging.getLogger(__name__)


class ValidRoIWatch:
    """Counts consecutive iterations whose RoIs are all invalid; warns in one line, rarely.

    An iteration with RoIs but no valid one extends the streak; one with a valid RoI ends it;
    one without RoIs (no foreground in the batch) leaves it as it is. The warning is logged
    (logger ``dcl_core.monitor``, level WARNING) when the streak reaches ``patience``
    iterations and again at each doubling (2x, 4x, ... ``patience``), so a run that stays
    broken says so a logarithmic number of times.

    Args:
        patience: consecutive all-invalid iterations before the first warning (>= 1).
        name: how the warning names the loss (e.g. ``"loss_contrast"``).

    Raises:
        ValueError: ``patience`` < 1.
    """

    def __init__(self, patience: int = 100, name: str = "loss_contrast") -> None:
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = int(patience)
        self.name = name
        self.streak = 0
        self._next_warning = self.patience

    def update(self, num_rois: int, num_valid) -> Optional[str]:
        """Record one iteration; return (and log) the warning line when one is due.

        Args:
            num_rois: RoIs the loss considered (``last_num_rois``).
            num_valid: how many were valid (``last_num_valid``; a 0-dim tensor is read with
                ``int()``, which synchronises a CUDA device: call where the adapter already
                reads it for logging).
        """
        if int(num_rois) == 0:
            return None
        if int(num_valid) > 0:
            self.streak = 0
            self._next_warning = self.patience
            return None
        self.streak += 1
        if self.streak < self._next_warning:
            return None
        self._next_warning *= 2
        message = (f"{self.name}: no valid RoI for {self.streak} iterations in a row, so the "
                   "loss is 0 and the run trains as the baseline (K too large for the masks?)")
        logger.warning(message)
        return message
