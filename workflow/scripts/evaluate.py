"""Score a run's COCO-format predictions on its val split (pycocotools segm, x100)."""

import logging
import sys

from analysis.coco_eval import evaluate_segm
from analysis.io import read_json, write_json_atomic

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
sys.stderr = open(snakemake.log[0], "a")

predictions = read_json(snakemake.input.predictions)  # read once: counted and scored
stats = evaluate_segm(snakemake.params.gt, predictions)
logging.info("segm stats x100: %s", stats)
write_json_atomic(
    snakemake.output[0],
    {
        "segm": stats,
        "num_predictions": len(predictions),
        "ground_truth": snakemake.params.gt,
        "predictions": snakemake.input.predictions,
    },
    indent=2,
)
