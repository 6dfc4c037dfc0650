"""detectron2 hook writing a run's training cost (paper Table 9) to ``train_cost.json``."""

from __future__ import annotations

from pathlib import Path

from detectron2.engine import HookBase
from detectron2.utils import comm

from analysis.cost import TrainingCost

__all__ = ["TrainingCostHook", "COST_FILE"]

COST_FILE = "train_cost.json"


class TrainingCostHook(HookBase):
    """Times every iteration and writes :class:`analysis.cost.TrainingCost` at the end of
    training, to ``OUTPUT_DIR/train_cost.json`` (main process only; with several GPUs the
    memory is the main process's device, as PyTorch's API counts it per device).

    A resumed run reports the iterations of its last session only, with their own timing.
    """

    def __init__(self, output_dir: str, device: str, ims_per_batch: int, warmup: int = 5):
        self._path = Path(output_dir) / COST_FILE
        self._cost = TrainingCost(device, warmup=warmup)
        self._ims_per_batch = ims_per_batch

    def before_train(self):
        self._cost.start()

    def after_step(self):
        self._cost.iteration_done()

    def after_train(self):
        # detectron2 calls after_train on an exception too (then iter < max_iter): only a
        # finished session is reported. A re-run with nothing left to train keeps an earlier
        # file; without one (killed between the last checkpoint and this hook) it writes what
        # it saw: 0 iterations timed, seconds_per_iter null.
        finished = self.trainer.iter >= self.trainer.max_iter
        if not (comm.is_main_process() and finished):
            return
        if self._cost.iterations_timed or not self._path.exists():
            self._cost.write(self._path, framework="detectron2",
                             ims_per_batch=self._ims_per_batch, max_iter=self.trainer.max_iter)
