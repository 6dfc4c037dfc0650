"""One model's runs at a scale side by side (snakemake ... results/{scale}/compare/{model}.md);
a run scored on several splits has a row per split, labelled ``run [split]``."""

import sys

from analysis.io import read_json, write_text_atomic
from paper_tables.render import render_comparison

sys.stderr = open(snakemake.log[0], "w")
runs = {run: (read_json(m), read_json(c)) for run, m, c in
        zip(snakemake.params.runs, snakemake.input.metrics, snakemake.input.costs)}
write_text_atomic(snakemake.output[0],
                  render_comparison(snakemake.wildcards.model, snakemake.params.scale, runs))
