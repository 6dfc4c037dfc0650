# Evaluation: COCO-format predictions on the val split, scored by pycocotools, then the paper's
# segmentation error analysis (Sec. 3) on the same files.


rule predict_detectron2:
    input:
        data=dataset_inputs,
        config=model_config_file,
        weights=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/model_final.pth",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_val.json",
    log:
        f"logs/{SCALE}/predict/{{dataset}}/{{model}}/{{variant}}.log",
    threads: PRESET["threads"]
    resources:
        gpu=min(PRESET["gpus"], 1),
    params:
        outdir=lambda wildcards, output: Path(output[0]).parent / "eval",
        datasets=dataset_args,
        opts=train_opts,
    shell:
        "OMP_NUM_THREADS={threads} python {REPO}/baselines/detectron2/train_net.py --eval-only"
        " --config-file {input.config} {params.datasets} --predictions-out {output}"
        " OUTPUT_DIR {params.outdir} {params.opts} MODEL.WEIGHTS {input.weights} > {log} 2>&1"


rule evaluate:
    input:
        data=dataset_inputs,
        predictions=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_val.json",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/metrics.json",
    log:
        f"logs/{SCALE}/evaluate/{{dataset}}/{{model}}/{{variant}}.log",
    params:
        gt=lambda wildcards: split(wildcards.dataset, "val")["json"],
    script:
        "../scripts/evaluate.py"


rule seg_errors:
    input:
        data=dataset_inputs,
        predictions=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/predictions_val.json",
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/seg_errors.json",
    log:
        f"logs/{SCALE}/seg_errors/{{dataset}}/{{model}}/{{variant}}.log",
    threads: 1
    params:
        gt=lambda wildcards: split(wildcards.dataset, "val")["json"],
    shell:
        "dcl-seg-errors {params.gt} {input.predictions} -o {output} --jobs {threads} > {log} 2>&1"
