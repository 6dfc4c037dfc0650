"""Write a model's predictions as a COCO-format results file (what evaluation reads)."""

from __future__ import annotations

from pathlib import Path

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.evaluation.coco_evaluation import instances_to_coco_json

from analysis.io import write_json_atomic


class CocoResultsWriter(DatasetEvaluator):
    """Collect predicted instances and write them as COCO results (RLE segmentations).

    Category ids are mapped back from detectron2's contiguous ids to the dataset's own ids, so
    the file scores against the dataset's annotation JSON with plain pycocotools.
    """

    def __init__(self, dataset_name: str, output_file: Path):
        meta = MetadataCatalog.get(dataset_name)
        mapping = getattr(meta, "thing_dataset_id_to_contiguous_id", None)
        self._to_dataset_id = {v: k for k, v in mapping.items()} if mapping else None
        self._output_file = Path(output_file)
        self._results: list[dict] = []

    def reset(self):
        self._results = []

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            instances = out["instances"].to("cpu")
            for result in instances_to_coco_json(instances, inp["image_id"]):
                if self._to_dataset_id is not None:
                    result["category_id"] = self._to_dataset_id[result["category_id"]]
                self._results.append(result)

    def evaluate(self):
        write_json_atomic(self._output_file, self._results)
        return {"predictions": {"count": len(self._results)}}
