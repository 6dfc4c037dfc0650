# Dataset preparation.

EMBEDDED_ROOT = "resources/embedded"


rule embedded_dataset:
    """The embedded default: a small COCO-format set built from human-annotated images that ship
    inside registry packages (sources, licences and counts in its DATASET_CARD.md). A directory
    output, so the builder's temp-folder-and-rename makes it appear whole or not at all."""
    output:
        directory(EMBEDDED_ROOT),
    log:
        "logs/data/embedded.log",
    shell:
        "python -m dcl_data.embedded --downloads {DOWNLOADS} --out {output} > {log} 2>&1"


def dataset_inputs(wildcards):
    """What a run needs of its dataset: the built folder, or the configured annotation files."""
    if wildcards.dataset == "embedded":
        return [EMBEDDED_ROOT]
    return [split(wildcards.dataset, s)["json"] for s in ("train", "val")]
