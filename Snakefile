# Dense Contrastive Loss for Instance Segmentation (BMVC 2022): from data to paper tables.
#   snakemake --cores all                 embedded scale (default): real data, CPU, minutes
#   snakemake --cores all --config scale=paper --profile profiles/slurm   the paper's runs on a cluster
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/preflight.smk"
include: "workflow/rules/data.smk"
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
