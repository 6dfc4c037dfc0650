# Training: one run per (dataset, model, variant); resumes from its last checkpoint when re-run.


rule train_detectron2:
    input:
        data=dataset_inputs,
        config=model_config_file,
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/model_final.pth",
    log:
        f"logs/{SCALE}/train/{{dataset}}/{{model}}/{{variant}}.log",
    threads: PRESET["threads"]
    resources:
        gpu=PRESET["gpus"],
    params:
        outdir=lambda wildcards, output: Path(output[0]).parent,
        datasets=dataset_args,
        opts=train_opts,
        # From the rule's own resource, so `--set-resources train_detectron2:gpu=8` changes
        # both the request and the launch; 0 GPUs (CPU) still runs one process.
        gpus=lambda wildcards, resources: max(resources.gpu, 1),
    shell:
        # --resume: a killed run continues from OUTPUT_DIR/last_checkpoint (checkpoints are
        # written before the tag that points at them, so the tag never names a partial file).
        # tee: the console shows detectron2's progress lines (iteration, losses, ETA).
        "OMP_NUM_THREADS={threads} python {REPO}/baselines/detectron2/train_net.py --resume"
        " --num-gpus {params.gpus} --config-file {input.config} {params.datasets}"
        " OUTPUT_DIR {params.outdir} {params.opts} 2>&1 | tee {log}"
