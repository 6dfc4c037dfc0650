# Dense Contrastive Loss for Instance Segmentation (BMVC 2022): from data to paper tables.
#   snakemake --cores all                 embedded scale (default): real data, CPU, minutes
#   snakemake --cores all --config scale=paper --profile profiles/slurm   the paper's runs on a cluster
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


# A config.yaml in the working directory (--directory DIR) overrides the checkout's, so a
# preflight or test directory can carry its own; otherwise the checkout's is read.
configfile: "config.yaml" if Path("config.yaml").is_file() else f"{workflow.basedir}/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/preflight.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fetch_datasets.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    """Every table and figure of the paper at the chosen scale, and the HTML report."""
    input:
        rules.paper_tables.output,
        FIGURES,
        f"{RESULTS}/report.html",
    default_target: True
