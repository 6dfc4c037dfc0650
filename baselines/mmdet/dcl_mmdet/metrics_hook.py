"""mmengine hook appending training scalars to ``train_metrics.json``, as detectron2 runs do."""

from __future__ import annotations

import json
import math
from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

__all__ = ["METRICS_FILE", "TrainMetricsHook"]

METRICS_FILE = "train_metrics.json"


@HOOKS.register_module()
class TrainMetricsHook(Hook):
    """Every ``interval`` iterations, and at the last one, appends one JSON line to
    ``<work_dir>/train_metrics.json`` (main process only), in the format of detectron2's
    ``JSONWriter`` so that a run folder reads the same whatever its framework:
    ``{"iteration": i, "lr": ..., "loss": ..., "loss_mask": ..., "loss_contrast": ...,
    "time": ..., "data_time": ...}``, where ``i`` is the 0-based index of the iteration just
    trained, the losses (float, unitless) and times (seconds per iteration) are means over the
    iterations since the previous line, and ``lr`` is the current learning rate. A resumed run
    appends after the lines of its earlier sessions. mmengine's own logs are unchanged.

    Args:
        interval: iterations between lines (20, detectron2's default period).

    Raises:
        ValueError: ``interval`` < 1.
    """

    priority = "LOW"  # after RuntimeInfoHook and IterTimerHook have logged this iteration

    def __init__(self, interval: int = 20) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self._since = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._since += 1
        last = runner.iter + 1 >= runner.max_iters
        if not (last or (runner.iter + 1) % self.interval == 0) or not is_main_process():
            return
        record = {"iteration": runner.iter}
        for key, buffer in runner.message_hub.log_scalars.items():
            if not key.startswith("train/"):
                continue
            name = key.removeprefix("train/")
            value = buffer.current() if name == "lr" else buffer.mean(self._since)
            value = float(value)
            if math.isfinite(value):
                record[name] = value
            else:  # JSON has no NaN; the line still shows the loss went bad
                record[name] = str(value)
        self._since = 0
        with open(Path(runner.work_dir) / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
