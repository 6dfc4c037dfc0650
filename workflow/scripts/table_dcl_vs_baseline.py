"""Markdown table: measured Mask R-CNN vs Mask R-CNN + DCL beside the paper's Table 1 rows."""

import sys
from pathlib import Path

import yaml

from analysis.io import read_json, write_text_atomic
from paper_tables import render_dcl_vs_baseline

sys.stderr = open(snakemake.log[0], "w")

sections = []
by_model = {}
for run, path in zip(snakemake.params.runs, snakemake.input):
    dataset, model, variant = run.split("/")
    by_model.setdefault((dataset, model), {})[variant] = path

for (dataset, model), variants in by_model.items():
    measured = {v: read_json(path)["segm"] for v, path in variants.items()}
    dcl_runs = [v for v in variants if v != "baseline"]
    if "baseline" not in variants or not dcl_runs:
        raise SystemExit(f"{dataset}/{model}: needs a baseline and a DCL variant, got {sorted(variants)}")
    # The schedule is the same for every variant of a model: read it from the baseline run.
    baseline = Path(variants["baseline"])
    cfg = yaml.safe_load((baseline.parent / "config.yaml").read_text())
    n_val = len(read_json(read_json(baseline)["ground_truth"])["images"])
    setting = (
        f"{dataset} val ({n_val} images), `{model}` "
        f"({snakemake.params.preset['models'][model]['config']}), "
        f"{cfg['SOLVER']['MAX_ITER']} iterations x {cfg['SOLVER']['IMS_PER_BATCH']} images, "
        f"scale `{snakemake.params.scale}`."
    )
    for dcl in dcl_runs:
        sections.append(render_dcl_vs_baseline(measured, baseline="baseline", dcl=dcl, setting=setting))

write_text_atomic(snakemake.output[0], "\n".join(sections))
