"""Score a run's COCO-format predictions on a split (pycocotools segm and bbox, x100), and keep
each evaluation's per-image matching for the bootstrap intervals (analysis.bootstrap)."""

import logging
import sys

from analysis.bootstrap import MatchArrays, save_matches
from analysis.coco_eval import evaluate_bbox, evaluate_segm
from analysis.coco_format import load_ground_truth
from analysis.io import read_json, write_json_atomic

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
sys.stderr = open(snakemake.log[0], "a")

gt_file = snakemake.params.gt
gt = load_ground_truth(gt_file)  # loaded once for the segm and the box evaluation
predictions = read_json(snakemake.input.predictions)  # read once: counted and scored
evals = {}
segm = evaluate_segm(gt, predictions, evals=evals)
stats, per_class = segm.stats, segm.per_class
logging.info("segm stats x100: %s", stats)
result = {"segm": stats, "per_class": per_class,
          "num_predictions": len(predictions), "ground_truth": gt_file,
          "predictions": snakemake.input.predictions}
# Box AP (Tables 1-4 report it) when every prediction carries a box, as detectors' do; no
# prediction at all scores as an all-miss box evaluation too.
if all("bbox" in p for p in predictions):
    result["bbox"] = evaluate_bbox(gt, predictions, evals=evals)
save_matches(snakemake.output.matches, {k: MatchArrays.from_cocoeval(ev) for k, ev in evals.items()})
write_json_atomic(snakemake.output.metrics, result, indent=2)
