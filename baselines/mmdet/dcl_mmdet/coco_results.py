"""Write a model's predictions as a COCO-format results file (what evaluation reads).

Scoring is the evaluation step's job (``analysis.coco_eval``); this metric only collects the
predicted instances and writes them, atomically, as the project's other adapters do.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util
from mmengine.evaluator import BaseMetric

from analysis.io import write_json_atomic
from mmdet.registry import METRICS

__all__ = ["CocoResultsWriter", "instances_to_coco"]


def instances_to_coco(image_id: int, bboxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                      masks: np.ndarray, category_ids: Sequence[int]) -> List[dict]:
    """COCO results entries of one image.

    Args:
        image_id: the dataset's image id.
        bboxes: float ``[N, 4]`` (x1, y1, x2, y2) in original-image pixels.
        scores: float ``[N]``.
        labels: int ``[N]`` 0-based class indices.
        masks: bool ``[N, H, W]`` at the original image size.
        category_ids: label -> the dataset's category id.

    Returns:
        list of ``{image_id, category_id, bbox (x, y, w, h), score, segmentation}`` with the
        segmentation as compressed RLE whose ``counts`` is a str.
    """
    if masks.shape[0] == 0:
        return []
    rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    out = []
    for box, score, label, rle in zip(bboxes, scores, labels, rles):
        x1, y1, x2, y2 = (float(v) for v in box)
        out.append({
            "image_id": int(image_id),
            "category_id": int(category_ids[int(label)]),
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(score),
            "segmentation": {"size": [int(s) for s in rle["size"]],
                             "counts": rle["counts"].decode("ascii")},
        })
    return out


@METRICS.register_module()
class CocoResultsWriter(BaseMetric):
    """mmengine metric that writes the predictions of a test run to ``outfile``.

    Args:
        outfile: the COCO results JSON to write.
        category_ids: label -> the dataset's category id (file order of ``categories``;
            :func:`dcl_mmdet.data.load_categories`).
    """

    default_prefix = "predictions"

    def __init__(self, outfile: str, category_ids: Sequence[int],
                 collect_device: str = "cpu", prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.outfile = outfile
        self.category_ids = [int(c) for c in category_ids]

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample["pred_instances"]
            # One entry per image: mmengine's result collection keeps len(dataset) entries.
            self.results.append(instances_to_coco(
                sample["img_id"], pred["bboxes"].cpu().numpy(), pred["scores"].cpu().numpy(),
                pred["labels"].cpu().numpy(), pred["masks"].cpu().numpy().astype(bool),
                self.category_ids))

    def compute_metrics(self, results: List[List[dict]]) -> Dict[str, float]:
        entries = [entry for image in results for entry in image]
        write_json_atomic(self.outfile, entries)
        return {"count": float(len(entries))}
