# Dataset preparation.
from types import SimpleNamespace

EMBEDDED_ROOT = "resources/embedded"


rule embedded_dataset:
    """The embedded default: a small COCO-format set built from human-annotated images that ship
    inside registry packages (sources, licences and counts in its DATASET_CARD.md). A directory
    output, so the builder's temp-folder-and-rename makes it appear whole or not at all."""
    output:
        directory(EMBEDDED_ROOT),
    log:
        "logs/data/embedded.log",
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "python -m dcl_data.embedded --downloads {DOWNLOADS:q} --out {output:q} > {log:q} 2>&1"


# The paper's datasets: converted or derived from raw trees the user provides (never downloaded).
# Each rule checks the layout it reads first and fails within seconds naming what is missing;
# raw COCO files are plain inputs, so a missing one stops the DAG before any job starts.
SOURCES = config.get("sources", {})


if "cityscapes" in config["datasets"]:

    rule cityscapes_coco_json:
        """Cityscapes fine -> COCO-format instance JSON per split, as mmdetection's converter
        writes it (cityscapesscripts' label definitions; dcl_data/cityscapes_convert.py), then
        validated against the configured image folders. Scored COCO-style by evaluate and
        seg_errors; detectron2 trains from the same JSON."""
        input:
            preflight_sources("cityscapes"),  # workflow/rules/preflight.smk; none otherwise
        output:
            train=split("cityscapes", "train")["json"],
            val=split("cityscapes", "val")["json"],
        log:
            "logs/data/cityscapes_coco_json.log",
        conda:
            "../../envs/detectron2.yaml"
        threads: 4
        params:
            root=SOURCES.get("cityscapes", "datasets/cityscapes"),
            train_images=split("cityscapes", "train")["images"],
            val_images=split("cityscapes", "val")["images"],
        shell:
            "(python -m dcl_data.paper_sets cityscapes {params.root:q}"
            " && python -m dcl_data.cityscapes_convert {params.root:q} --split train --out {output.train:q} --jobs {threads}"
            " && python -m dcl_data.cityscapes_convert {params.root:q} --split val --out {output.val:q} --jobs {threads}"
            " && python -m dcl_data.validate {output.train:q} --image-root {params.train_images:q}"
            " && python -m dcl_data.validate {output.val:q} --image-root {params.val_images:q}"
            ") > {log:q} 2>&1"


def dataset_inputs(wildcards):
    """What a run needs of its dataset: the built folder, the configured annotation files, or
    a semantic set's folder (Cityscapes: its trainId label images' marker)."""
    if wildcards.dataset == "embedded":
        return [EMBEDDED_ROOT]
    if "semantic" in config["datasets"][wildcards.dataset]:
        root = config["datasets"][wildcards.dataset]["semantic"]
        return [root if root == EMBEDDED_SEMANTIC else f"{root}/{TRAIN_IDS_DONE}"]
    return [split(wildcards.dataset, s)["json"] for s in ("train", "val")]


# Semantic segmentation (CAC's table, mmseg): the embedded set's per-pixel classes, and
# Cityscapes' trainId label images.
EMBEDDED_SEMANTIC = config["datasets"].get("embedded_semantic", {}).get("semantic", "resources/embedded_semseg")
TRAIN_IDS_DONE = "gtFine/labelTrainIds.done"  # cityscapesScripts writes the images beside gtFine's


rule embedded_semantic:
    """Per-pixel class labels of the embedded instance set (dcl_data/semantic_labels.py: class 0
    background, category k class k+1, the smaller instance wins an overlap, crowd 255), with
    the images re-encoded as PNG in mmseg's img_dir/ann_dir layout; built under a temporary
    name and renamed, so it appears whole or not at all."""
    input:
        EMBEDDED_ROOT,
    output:
        directory(EMBEDDED_SEMANTIC),
    log:
        "logs/data/embedded_semantic.log",
    conda:
        "../../envs/detectron2.yaml"
    params:
        train=lambda wildcards: f"train={split('embedded', 'train')['json']}:{split('embedded', 'train')['images']}",
        val=lambda wildcards: f"val={split('embedded', 'val')['json']}:{split('embedded', 'val')['images']}",
    shell:
        "python -m dcl_data.semantic_labels --split {params.train:q} --split {params.val:q}"
        " --out {output:q} > {log:q} 2>&1"


if "cityscapes_semantic" in config["datasets"]:

    rule cityscapes_train_ids:
        """cityscapesScripts' trainId label images (*_gtFine_labelTrainIds.png: the 19
        evaluated classes, 255 elsewhere) from gtFine's polygons, the labels mmseg's
        CityscapesDataset reads; written beside them (createTrainIdLabelImgs), then the
        marker. The layout is checked first (dcl_data/paper_sets.py)."""
        output:
            touch(f"{config['datasets']['cityscapes_semantic']['semantic']}/{TRAIN_IDS_DONE}"),
        log:
            "logs/data/cityscapes_train_ids.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            root=config["datasets"]["cityscapes_semantic"]["semantic"],
        shell:
            "(python -m dcl_data.paper_sets cityscapes {params.root:q}"
            " && CITYSCAPES_DATASET={params.root:q} python -m cityscapesscripts.preparation.createTrainIdLabelImgs"
            ") > {log:q} 2>&1"


# Occlusion subsets of val (COCO-OCC; the embedded stand-in): one rule per dataset with `occ`.
for _name, _dataset in config["datasets"].items():
    if "occ" not in _dataset:
        continue

    rule:
        """The images of a val split with occluding instance pairs (criterion and its source in
        dcl_data/coco_subsets.py; threshold coco_occ.min_box_iou)."""
        name:
            f"occ_split_{_name}"
        input:
            # The embedded val JSON lies inside the folder its rule outputs: depend on that.
            dataset_inputs(SimpleNamespace(dataset=_name)),
        output:
            _dataset["occ"]["json"],
        log:
            f"logs/data/occ_split_{_name}.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            val=_dataset["val"]["json"],
            images=_dataset["val"]["images"],
            min_box_iou=config.get("coco_occ", {}).get("min_box_iou", 0.2),
        shell:
            "(python -m dcl_data.paper_sets split {params.val:q} {params.images:q}"
            " && python -m dcl_data.coco_subsets occ {params.val:q} --out {output:q} --min-box-iou {params.min_box_iou}"
            ") > {log:q} 2>&1"


# Novel-category splits of val (partially-supervised scoring: ContrastMask): every image, the
# annotations of the VOC or non-VOC categories (dcl_data/voc_split.py, dcl_data/coco_subsets.py).
for _name, _dataset in config["datasets"].items():
    for _split in ("voc", "nonvoc"):
        if _split not in _dataset:
            continue

        rule:
            """Val restricted to one side of the VOC / non-VOC category split."""
            name:
                f"novel_split_{_name}_{_split}"
            input:
                dataset_inputs(SimpleNamespace(dataset=_name)),
            output:
                _dataset[_split]["json"],
            log:
                f"logs/data/novel_split_{_name}_{_split}.log",
            conda:
                "../../envs/detectron2.yaml"
            params:
                val=_dataset["val"]["json"],
                split=_split,
            shell:
                "python -m dcl_data.coco_subsets novel {params.val:q} --split {params.split}"
                " --out {output:q} > {log:q} 2>&1"


if {"coco", "mini_coco"} <= set(config["datasets"]):

    rule mini_coco:
        """mini-COCO: a fixed random sample of train2017 and the first images of val2017
        (sizes and seed in config mini_coco; definition in dcl_data/coco_subsets.py)."""
        input:
            train=split("coco", "train")["json"],
            val=split("coco", "val")["json"],
        output:
            train=split("mini_coco", "train")["json"],
            val=split("mini_coco", "val")["json"],
        log:
            "logs/data/mini_coco.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            train_images=split("coco", "train")["images"],
            val_images=split("coco", "val")["images"],
            n_train=config.get("mini_coco", {}).get("train_images", 5000),
            n_val=config.get("mini_coco", {}).get("val_images", 500),
            seed=config.get("mini_coco", {}).get("seed", 0),
        shell:
            "(python -m dcl_data.paper_sets split {input.train:q} {params.train_images:q}"
            " && python -m dcl_data.paper_sets split {input.val:q} {params.val_images:q}"
            " && python -m dcl_data.coco_subsets mini {input.train:q} {input.val:q}"
            " --out-train {output.train:q} --out-val {output.val:q} --train-images {params.n_train}"
            " --val-images {params.n_val} --seed {params.seed}) > {log:q} 2>&1"
