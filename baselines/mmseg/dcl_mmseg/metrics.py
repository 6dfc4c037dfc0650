"""mmseg's mIoU, written to a file: the project's evaluation of semantic segmentation.

:class:`IoUMetricWriter` is mmseg's ``IoUMetric`` (same per-image intersection/union counts,
same ``total_area_to_metrics``) that also writes, atomically:

- ``metrics_miou.json``: ``mIoU``, ``mAcc``, ``aAcc`` (percent, unrounded), ``per_class``
  ``{class: IoU}`` (percent; None for a class with an empty union, which mmseg's mean leaves
  out as NaN), ``classes``, ``num_images``;
- beside it, ``<stem>_areas.npz``: the per-image ``intersect``, ``union``, ``pred``, ``label``
  pixel counts ``[images, classes]`` (float64) and the image paths, for image-bootstrap
  intervals.

mIoU = mean over classes with a non-empty union of intersect / union summed over the whole set
(not a mean of per-image IoUs), as mmseg and cityscapesScripts compute it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from analysis.io import atomic_path, write_json_atomic

__all__ = ["IoUMetricWriter", "miou_from_areas"]


def miou_from_areas(intersect: np.ndarray, union: np.ndarray, pred: np.ndarray,
                    label: np.ndarray, classes: Sequence[str]) -> dict:
    """``metrics_miou.json`` contents from total pixel counts per class (each ``[K]``, any
    array-like), by mmseg's own ``IoUMetric.total_area_to_metrics``."""
    import torch

    areas = [torch.as_tensor(np.asarray(a, np.float64)) for a in (intersect, union, pred, label)]
    ret = IoUMetric.total_area_to_metrics(*areas, ["mIoU"])

    def pct(x) -> Optional[float]:
        x = float(x)
        return None if math.isnan(x) else 100.0 * x

    iou, acc = np.asarray(ret["IoU"], float), np.asarray(ret["Acc"], float)
    return {"mIoU": pct(np.nanmean(iou)) if np.isfinite(iou).any() else None,
            "mAcc": pct(np.nanmean(acc)) if np.isfinite(acc).any() else None,
            "aAcc": pct(ret["aAcc"]),
            "per_class": {c: pct(v) for c, v in zip(classes, iou)},
            "classes": list(classes)}


@METRICS.register_module()
class IoUMetricWriter(IoUMetric):
    """``IoUMetric(iou_metrics=['mIoU'])`` that writes ``outfile`` (module docstring).

    Args:
        outfile: path of ``metrics_miou.json``.
        **kwargs: ``IoUMetric``'s (``ignore_index`` 255 by default).

    Raises:
        ValueError: ``outfile`` is empty.
    """

    def __init__(self, outfile: str, **kwargs) -> None:
        if not outfile:
            raise ValueError("IoUMetricWriter needs an outfile")
        kwargs.setdefault("iou_metrics", ["mIoU"])
        super().__init__(**kwargs)
        self.outfile = Path(outfile)
        self._paths: list = []

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        super().process(data_batch, data_samples)
        self._paths += [str(s.get("img_path", "")) for s in data_samples]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        areas = [np.stack([np.asarray(r[i], np.float64) for r in results]) for i in range(4)]
        out = miou_from_areas(*(a.sum(0) for a in areas), self.dataset_meta["classes"])
        out["num_images"] = len(results)
        if is_main_process():
            self.outfile.parent.mkdir(parents=True, exist_ok=True)
            npz = self.outfile.with_name(self.outfile.stem + "_areas.npz")
            with atomic_path(npz) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, intersect=areas[0], union=areas[1], pred=areas[2],
                             label=areas[3], images=np.asarray(self._paths[:len(results)]))
            write_json_atomic(self.outfile, out, indent=1)
        self._paths = []
        return {**metrics, "mIoU_unrounded": out["mIoU"]}
