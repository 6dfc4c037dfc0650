# The paper's tables and figures, measured beside the paper's numbers, and one HTML report.
# Which run answers each row: paper_tables/experiments.py; what each cell reads:
# paper_tables/build.py.

from paper_tables.figures import GAIN_FAMILIES

TABLES_DIR = f"{RESULTS}/paper_tables"


def row_files(table, kinds, seeds=False):
    """Files of the runs behind a table's rows: `kinds` among metrics, seg_errors, cost,
    cityscapes (paper scale on Cityscapes only), features, miou (the mmseg runs'), and bootstrap (the resampled
    matchings beside metrics and seg_errors, for the intervals); with `seeds`, those of the
    rows' runs at every other seed of config `seeds` too."""
    out = []
    rows = [(row.run, row.split, row.dataset, True) for row in PLAN.tables.get(table, []) if row.run]
    if seeds:  # the other seeds' values only: the intervals are the seed-0 run's
        rows += [(s_run, split, dataset, False) for run, split, dataset, _ in list(rows)
                 for s_run, (base, _) in SEED_RUNS.items() if base == run]
    for run, split, dataset, primary in rows:
        d = run_dir(run)
        bootstrap = primary and "bootstrap" in kinds
        if "metrics" in kinds:
            out.append(f"{d}/metrics_{split}.json")
            if bootstrap:
                out.append(f"{d}/resampled_matches_{split}.npz")
        if "seg_errors" in kinds:
            out.append(f"{d}/seg_errors_{split}.json")
            if bootstrap:
                out.append(f"{d}/resampled_seg_errors_matches_{split}.npz")
        if "cost" in kinds:
            out.append(f"{d}/train_cost.json")
        if "cityscapes" in kinds and dataset == "cityscapes":
            out.append(f"{d}/metrics_cityscapes.json")
        if "features" in kinds:
            out.append(f"{d}/features_val.npz")
        if "miou" in kinds:
            out.append(f"{d}/metrics_miou.json")
            if bootstrap:
                out.append(f"{d}/metrics_miou_areas.npz")
    return list(dict.fromkeys(out))


def unique_runs(table):
    """(run, split) pairs of a table's rows, once each (roles can share a run at a scale)."""
    return list(dict.fromkeys((r.run, r.split) for r in PLAN.tables.get(table, []) if r.run))


TABLE_INPUTS = {
    "table5": ("metrics", "cityscapes"),
    "table8": ("metrics", "seg_errors"),
    "table9": ("cost",),
    "same_baseline_errors": ("metrics", "seg_errors"),
    "same_baseline_cost": ("cost",),
    "cac_cityscapes": ("miou",),
}
PAPER_TABLES = [t for t in PLAN.tables if not t.startswith("figure")]


rule paper_tables:
    """Every table: Markdown and LaTeX per table, all cells with their sources in tables.json,
    and the sweep curves (Tables 1, 3, 4)."""
    input:
        [f for t in PAPER_TABLES
         for f in row_files(t, TABLE_INPUTS.get(t, ("metrics",)) + ("bootstrap",), seeds=True)],
        paper=REPO / "paper_tables/paper.yaml",
    output:
        json=f"{TABLES_DIR}/tables.json",
        markdown=[f"{TABLES_DIR}/{t}.md" for t in PAPER_TABLES],
        latex=[f"{TABLES_DIR}/{t}.tex" for t in PAPER_TABLES],
        sweeps=f"{TABLES_DIR}/figures/sweeps.png",
        gains=[f"{TABLES_DIR}/figures/{f}.png" for f in GAIN_FAMILIES],
    log:
        f"logs/{SCALE}/report/paper_tables.log",
    params:
        results=RESULTS,
        scale=SCALE,
        seed_runs=SEED_RUNS,
        bootstrap=BOOTSTRAP,
    conda:
        "../../envs/detectron2.yaml"
    script:
        "../scripts/paper_tables.py"


rule figure2:
    """Paper Figure 2: Delta AP per error type for each model and dataset (and its table)."""
    input:
        row_files("figure2", ("seg_errors",)),
    output:
        figure=f"{TABLES_DIR}/figures/figure2_seg_errors.png",
        table=f"{TABLES_DIR}/figure2_seg_errors.md",
    log:
        f"logs/{SCALE}/report/figure2.log",
    params:
        labels=[f"{run}:{split}".replace("/", ":") for run, split in unique_runs("figure2")],
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "python -m analysis.seg_errors.report {input:q} --labels {params.labels:q}"
        " --figure {output.figure:q} --table {output.table:q} > {log:q} 2>&1"


rule figure4:
    """Paper Figure 4: t-SNE of mask-head features at fg/bg pixels, baseline vs DCL."""
    input:
        row_files("figure4", ("features",)),
    output:
        figure=f"{TABLES_DIR}/figures/figure4_tsne.png",
        json=f"{TABLES_DIR}/figure4_tsne.json",
    log:
        f"logs/{SCALE}/report/figure4.log",
    params:
        labels=[run.split("/")[-1] for run, _ in unique_runs("figure4")],
    conda:
        "../../envs/detectron2.yaml"
    shell:
        "python -m analysis.tsne {input:q} --labels {params.labels:q}"
        " --figure {output.figure:q} --json {output.json:q} > {log:q} 2>&1"


FIGURES = [f"{TABLES_DIR}/figures/sweeps.png"] + [f"{TABLES_DIR}/figures/{f}.png" for f in GAIN_FAMILIES]
if "figure2" in PLAN.tables:
    FIGURES.append(f"{TABLES_DIR}/figures/figure2_seg_errors.png")
if "figure4" in PLAN.tables:
    FIGURES.append(f"{TABLES_DIR}/figures/figure4_tsne.png")


rule report:
    """One HTML page: every table and figure, the run behind each cell, config and revision."""
    input:
        tables=f"{TABLES_DIR}/tables.json",
        figures=FIGURES,
        tsne=f"{TABLES_DIR}/figure4_tsne.json" if "figure4" in PLAN.tables else [],
        costs=[f"{run_dir(r)}/train_cost.json" for r in RUNS],
    output:
        f"{RESULTS}/report.html",
    log:
        f"logs/{SCALE}/report/report.log",
    params:
        scale=SCALE,
        runs=RUNS,
        seed_runs=SEED_RUNS,
        results=RESULTS,
        repo=REPO,
    conda:
        "../../envs/detectron2.yaml"
    script:
        "../scripts/report.py"


def model_runs(wildcards):
    runs = [r for r in RUNS if r.split("/")[1] == wildcards.model]
    if not runs:
        raise WorkflowError(f"no run of model {wildcards.model!r} at scale {SCALE!r}; "
                            f"models: {sorted({r.split('/')[1] for r in RUNS})}")
    return runs


def model_scorings(wildcards):
    """(run, split) of every run of the model: val, then each other split a table scores it on
    (COCO-OCC, a novel-category split)."""
    scored = PLAN.evaluations()
    return [(r, split) for r in model_runs(wildcards)
            for split in ["val"] + [s for run, s in scored if run == r and s != "val"]]


rule compare_model:
    """One model with and without DCL at this scale, e.g.
    `snakemake --cores all results/embedded/compare/sparseinst_r18.md`; a run scored on another
    split too (occ, voc, nonvoc) gets a row per split."""
    input:
        metrics=lambda wildcards: [f"{run_dir(r)}/metrics_{s}.json" for r, s in model_scorings(wildcards)],
        costs=lambda wildcards: [f"{run_dir(r)}/train_cost.json" for r, _ in model_scorings(wildcards)],
    output:
        f"{RESULTS}/compare/{{model}}.md",
    log:
        f"logs/{SCALE}/report/compare_{{model}}.log",
    params:
        runs=lambda wildcards: [r if s == "val" else f"{r} [{s}]" for r, s in model_scorings(wildcards)],
        scale=SCALE,
    conda:
        "../../envs/detectron2.yaml"
    script:
        "../scripts/compare_model.py"
