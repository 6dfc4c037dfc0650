# Training: one run per (dataset, model, variant), by the model's framework; a re-run resumes
# from the run's last checkpoint. Every run writes model_final.pth when finished and
# train_cost.json (time per iteration, peak memory: Table 9).


rule train_detectron2:
    input:
        data=dataset_inputs,
        config=model_config_file,
        pretrained=model_weights,
    output:
        weights=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/model_final.pth",
        cost=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/train_cost.json",
    wildcard_constraints:
        model=models_of("detectron2"),
    log:
        f"logs/{SCALE}/train/{{dataset}}/{{model}}/{{variant}}.log",
    threads: PRESET["threads"]
    resources:
        gpu=PRESET["gpus"],
    params:
        outdir=lambda wildcards, output: Path(output.weights).parent,
        datasets=detectron2_datasets,
        opts=detectron2_opts,
        # From the rule's own resource, so `--set-resources train_detectron2:gpu=8` changes
        # both the request and the launch; 0 GPUs (CPU) still runs one process.
        gpus=lambda wildcards, resources: max(resources.gpu, 1),
    conda:
        "../../envs/detectron2.yaml"
    shell:
        # --resume: a killed run continues from OUTPUT_DIR/last_checkpoint (checkpoints are
        # written before the tag that points at them, so the tag never names a partial file).
        # tee: the console shows detectron2's progress lines (iteration, losses, ETA).
        "OMP_NUM_THREADS={threads} python {REPO}/baselines/detectron2/train_net.py --resume"
        " --num-gpus {params.gpus} --config-file {input.config} {params.datasets}"
        " OUTPUT_DIR {params.outdir} {params.opts} 2>&1 | tee {log}"


rule train_mmdet:
    input:
        data=dataset_inputs,
        config=model_config_file,
        pretrained=model_weights,
    output:
        weights=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/model_final.pth",
        cost=f"{RESULTS}/{{dataset}}/{{model}}/{{variant}}/train_cost.json",
    wildcard_constraints:
        model=models_of("mmdet"),
    log:
        f"logs/{SCALE}/train/{{dataset}}/{{model}}/{{variant}}.log",
    threads: PRESET["threads"]
    resources:
        gpu=PRESET["gpus"],
    params:
        outdir=lambda wildcards, output: Path(output.weights).parent,
        args=mmdet_args,
        gpus=lambda wildcards, resources: max(resources.gpu, 1),
    conda:
        "../../envs/mmdet.yaml"
    shell:
        # One process per GPU through torch's launcher, as mmdetection's dist_train.sh does.
        "if [ {params.gpus} -gt 1 ]; then"
        "  launch='python -m torch.distributed.run --nproc_per_node={params.gpus}'; extra='--launcher pytorch';"
        " else launch=python; extra=''; fi;"
        " OMP_NUM_THREADS={threads} $launch {REPO}/baselines/mmdet/train.py {input.config}"
        " --work-dir {params.outdir} --resume $extra {params.args} 2>&1 | tee {log}"
