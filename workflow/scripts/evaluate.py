"""Score a run's COCO-format predictions on its val split (pycocotools segm, x100)."""

import json
import logging
import math
import sys

from analysis.coco_eval import evaluate_segm
from dcl_detectron2.predictions import write_json_atomic

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
sys.stderr = open(snakemake.log[0], "a")

with open(snakemake.input.predictions) as f:
    num_predictions = len(json.load(f))
stats = evaluate_segm(snakemake.params.gt, snakemake.input.predictions)
# pycocotools' -1 (no ground truth in that area range) arrives as NaN: JSON has no NaN.
stats = {k: (None if math.isnan(v) else v) for k, v in stats.items()}
logging.info("segm stats x100: %s", stats)
write_json_atomic(
    {
        "segm": stats,
        "num_predictions": num_predictions,
        "ground_truth": snakemake.params.gt,
        "predictions": snakemake.input.predictions,
    },
    snakemake.output[0],
)
