# Evaluation: COCO-format predictions on the val split, scored by pycocotools (and at paper
# scale on Cityscapes by cityscapesScripts too), then the paper's segmentation error analysis
# (Sec. 3) on the same files. `{split}` is "val", or "occ" for the occlusion subset of val.


rule predict_detectron2:
    input:
        data=dataset_inputs,
        config=model_config_file,
        weights=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/model_final.pth",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_val.json",
    wildcard_constraints:
        model=models_of("detectron2"),
    log:
        f"logs/{SCALE}/predict/{{dataset}}/{{model}}/{{variant}}.log",
    threads: PRESET["threads"]
    resources:
        gpu=min(PRESET["gpus"], 1),
    params:
        command=predict_command,  # common.smk: the framework's script and flags
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.command} > {log:q} 2>&1"


use rule predict_detectron2 as predict_mmdet with:
    wildcard_constraints:
        model=models_of("mmdet"),
    conda:
        "../../envs/mmdet.yaml"


# mmseg: mmseg's mIoU over the val split (19 trainId classes on Cityscapes), written by the
# prediction run itself (dcl_mmseg.IoUMetricWriter), with the per-image pixel counts beside it
# (the image bootstrap of the mIoU cells, analysis/miou.py).
use rule predict_detectron2 as predict_mmseg with:
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/metrics_miou.json",
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/metrics_miou_areas.npz",
    wildcard_constraints:
        model=models_of("mmseg"),
    conda:
        "../../envs/mmdet.yaml"


rule predictions_subset:
    """A run's val predictions restricted to the images and categories of a subset of val
    (COCO-OCC; the VOC / non-VOC categories)."""
    input:
        data=dataset_inputs,
        subset=lambda wildcards: split(wildcards.dataset, wildcards.split)["json"],
        predictions=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_val.json",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_{{split}}.json",
    wildcard_constraints:
        split="occ|voc|nonvoc",
    log:
        f"logs/{SCALE}/subset/{{dataset}}/{{model}}/{{variant}}_{{split}}.log",
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "python -m analysis.subset {input.predictions:q} {input.subset:q} -o {output:q} > {log:q} 2>&1"


def split_gt(wildcards):
    return split(wildcards.dataset, wildcards.split)["json"]


rule evaluate:
    input:
        data=dataset_inputs,
        predictions=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_{{split}}.json",
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/metrics_{{split}}.json",
        # per-image matching of the segm and box evaluations: the bootstrap intervals' input
        matches=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/matches_{{split}}.npz",
    log:
        f"logs/{SCALE}/evaluate/{{dataset}}/{{model}}/{{variant}}_{{split}}.log",
    params:
        gt=split_gt,
    conda:
        "../../envs/detectron2.yaml"
    script:
        "../scripts/evaluate.py"


from analysis.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED

# config `bootstrap` over the library's defaults: the resample rule and the tables read this.
BOOTSTRAP = {"resamples": DEFAULT_RESAMPLES, "seed": DEFAULT_SEED, **config.get("bootstrap", {})}


rule resample:
    """The image bootstrap of one matching (evaluate's or the error analysis'): the stats of
    every resample, for the paper tables' intervals (analysis/resample.py)."""
    input:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/{{matching}}.npz",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/resampled_{{matching}}.npz",
    wildcard_constraints:
        matching=r"(seg_errors_)?matches_[a-z]+",
    log:
        f"logs/{SCALE}/resample/{{dataset}}/{{model}}/{{variant}}_{{matching}}.log",
    conda:
        "../../envs/detectron2.yaml"
    params:
        resamples=BOOTSTRAP["resamples"],
        seed=BOOTSTRAP["seed"],
    shell:
        "python -m analysis.resample {input:q} -o {output:q} --resamples {params.resamples}"
        " --seed {params.seed} > {log:q} 2>&1"


rule evaluate_cityscapes:
    """Cityscapes-style AP and per-class AP (cityscapesScripts), as the paper's Table 5 reports."""
    input:
        data=dataset_inputs,
        predictions=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_val.json",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/metrics_cityscapes.json",
    wildcard_constraints:
        dataset="cityscapes",
    log:
        f"logs/{SCALE}/evaluate/{{dataset}}/{{model}}/{{variant}}_cityscapes.log",
    threads: 4
    params:
        gt=lambda wildcards: split(wildcards.dataset, "val")["json"],
        gtfine=config.get("sources", {}).get("cityscapes", "datasets/cityscapes") + "/gtFine/val",
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "python -m analysis.cityscapes_eval {params.gt:q} {params.gtfine:q} {input.predictions:q}"
        " -o {output:q} --jobs {threads} > {log:q} 2>&1"


rule seg_errors:
    input:
        data=dataset_inputs,
        predictions=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_{{split}}.json",
    output:
        json=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/seg_errors_{{split}}.json",
        matches=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/seg_errors_matches_{{split}}.npz",
    log:
        f"logs/{SCALE}/seg_errors/{{dataset}}/{{model}}/{{variant}}_{{split}}.log",
    threads: 1
    params:
        gt=split_gt,
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "dcl-seg-errors {params.gt:q} {input.predictions:q} -o {output.json:q}"
        " --matches-out {output.matches:q} --jobs {threads} > {log:q} 2>&1"


rule features:
    """Mask-head features at fg/bg pixels of the val set's ground-truth boxes (Figure 4)."""
    input:
        data=dataset_inputs,
        config=model_config_file,
        weights=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/model_final.pth",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/features_val.npz",
    wildcard_constraints:
        model=models_of("detectron2"),
    log:
        f"logs/{SCALE}/features/{{dataset}}/{{model}}/{{variant}}.log",
    threads: PRESET["threads"]
    params:
        loss=loss_option,
        datasets=detectron2_datasets,
        opts=detectron2_opts,
        max_pixels=PRESET.get("tsne", {}).get("max_pixels", 4000),
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python {REPO:q}/baselines/detectron2/dump_features.py"
        " {params.loss} --config-file {input.config:q} {params.datasets} --out {output:q}"
        " --max-pixels {params.max_pixels} {params.opts} MODEL.WEIGHTS {input.weights:q} > {log:q} 2>&1"
