"""mmengine hook writing a run's training cost (paper Table 9) to ``train_cost.json``."""

from __future__ import annotations

from pathlib import Path

from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook

from analysis.cost import TrainingCost
from mmdet.registry import HOOKS

__all__ = ["TrainingCostHook", "COST_FILE"]

COST_FILE = "train_cost.json"


@HOOKS.register_module()
class TrainingCostHook(Hook):
    """Times every training iteration with :class:`analysis.cost.TrainingCost` and, when the
    training has reached its last iteration (or epoch), writes ``<work_dir>/train_cost.json``
    (main process only; on GPUs the memory is the main process's device).

    A resumed run reports the iterations of its last session only. A session that trains
    nothing (already finished) or stops early keeps any earlier file.

    Args:
        warmup: intervals left out of the statistics (5).
    """

    priority = "VERY_LOW"

    def __init__(self, warmup: int = 5) -> None:
        self.warmup = warmup
        self._cost = None

    def before_train(self, runner) -> None:
        device = next(runner.model.parameters()).device
        self._cost = TrainingCost(device, warmup=self.warmup)
        self._cost.start()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._cost.iteration_done()

    def after_train(self, runner) -> None:
        # Both mmengine train loops count iterations across resumed sessions.
        finished = runner.iter >= runner.max_iters
        path = Path(runner.work_dir) / COST_FILE
        # Without an earlier file (killed between the last checkpoint and this hook) a session
        # with nothing left to train writes what it saw: 0 iterations timed.
        if not (finished and is_main_process() and (self._cost.iterations_timed or not path.exists())):
            return
        # With a batch_sampler (mmdet's AspectRatioBatchSampler) the loader's own batch_size
        # is None; the config has the per-process value.
        per_process = runner.cfg.get("train_dataloader", {}).get("batch_size")
        batch = per_process * get_world_size() if per_process else None
        self._cost.write(path, framework="mmdetection",
                         ims_per_batch=batch, max_iter=runner.max_iters)
