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
    # Snakemake's own record of the job: wall seconds and peak RSS (max_rss, MB), whatever the
    # framework logs; the preflight's per-job cost table reads it.
    benchmark:
        f"benchmarks/{SCALE}/train/{{dataset}}/{{model}}/{{variant}}.tsv"
    threads: PRESET["threads"]
    resources:
        gpu=PRESET["gpus"],
    params:
        # train_command (common.smk): the framework's script, its --resume, its GPU launch.
        command=train_command,
    conda:
        "../../envs/detectron2.yaml"
    shell:
        # tee: the console shows the trainer's progress lines (iteration, losses, ETA).
        "OMP_NUM_THREADS={threads} {params.command} 2>&1 | tee {log:q}"


use rule train_detectron2 as train_mmdet with:
    wildcard_constraints:
        model=models_of("mmdet"),
    conda:
        "../../envs/mmdet.yaml"


# mmseg (CAC's table): the variant is the model's config file (common.smk: model_config_file).
use rule train_detectron2 as train_mmseg with:
    wildcard_constraints:
        model=models_of("mmseg"),
    conda:
        "../../envs/mmdet.yaml"
