# scale=preflight (config.yaml): generated stand-ins for what the paper scale downloads or is
# given by hand. Tiny datasets in the public Cityscapes and COCO 2017 layouts
# (dcl_data/preflight_sets.py) feed the real data rules, and stand-in weights in each real
# format (dcl_detectron2/synthetic_weights.py) replace the fetched files, so every later rule
# (conversions, strict loading, training, evaluation, tables) runs as at paper scale.

PREFLIGHT = SCALE == "preflight"
if PREFLIGHT and Path.cwd().resolve() == REPO.resolve():
    _fail("scale=preflight writes generated datasets/ and pretrained/ stand-ins into its working "
          "directory; run it elsewhere, e.g. snakemake --directory /tmp/dcl-preflight ...")
PREFLIGHT_CITYSCAPES = config.get("sources", {}).get("cityscapes", "datasets/cityscapes")


def preflight_sources(name):
    """What a data rule needs generated first at scale=preflight (nothing at other scales)."""
    return [f"{PREFLIGHT_CITYSCAPES}/.preflight.json"] if PREFLIGHT and name == "cityscapes" else []


if PREFLIGHT:

    rule preflight_cityscapes:
        """A tiny Cityscapes fine tree at 2048 x 1024 (4 train, 2 val frames)."""
        output:
            f"{PREFLIGHT_CITYSCAPES}/.preflight.json",
        log:
            "logs/preflight/cityscapes.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            root=PREFLIGHT_CITYSCAPES,
        shell:
            "(python -m dcl_data.preflight_sets cityscapes {params.root:q} > {output:q}) 2> {log:q}"

    rule preflight_coco:
        """A tiny COCO 2017 tree (8 train, 4 val images, the 80 categories)."""
        output:
            train=split("coco", "train")["json"],
            val=split("coco", "val")["json"],
        log:
            "logs/preflight/coco.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            root=lambda wildcards, output: Path(output.train).parent.parent,
        shell:
            "python -m dcl_data.preflight_sets coco {params.root:q} > {log:q} 2>&1"

    for _name, _w in config.get("weights", {}).items():
        if "url" not in _w:
            continue  # converted: the real conversion rule runs on the stand-in

        rule:
            """A stand-in for a fetched file, in its format (BN statistics estimated)."""
            name:
                f"standin_weights_{_name}"
            output:
                _w["file"],
            log:
                f"logs/preflight/weights_{_name}.log",
            conda:
                "../../envs/detectron2.yaml"
            params:
                format=_w["format"],
                # torchvision's file names start with the architecture (resnet50-..., swin_t-...)
                arch=(f"--arch {Path(_w['url']).name.split('-')[0]}"
                      if _w["format"] == "torchvision_pth" else ""),
            shell:
                "python -m dcl_detectron2.synthetic_weights {params.format} {output:q}"
                " {params.arch} > {log:q} 2>&1"
