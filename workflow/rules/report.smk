# Tables: measured runs beside the paper's numbers.


rule table_dcl_vs_baseline:
    input:
        expand(f"{RESULTS}/{{run}}/metrics.json", run=RUNS),
    output:
        f"{RESULTS}/tables/dcl_vs_baseline.md",
    log:
        f"logs/{SCALE}/report/dcl_vs_baseline.log",
    params:
        runs=RUNS,
        preset=PRESET,
        scale=SCALE,
    script:
        "../scripts/table_dcl_vs_baseline.py"


rule seg_errors_report:
    """Paper Figure 2 (Delta AP per error type) and Table 8 rows for every run of the scale."""
    input:
        expand(f"{RESULTS}/{{run}}/seg_errors.json", run=RUNS),
    output:
        figure=f"{RESULTS}/figures/seg_errors.png",
        table=f"{RESULTS}/tables/seg_errors.md",
    log:
        f"logs/{SCALE}/report/seg_errors.log",
    params:
        labels=[run.replace("/", ":") for run in RUNS],
    shell:
        "python -m analysis.seg_errors.report {input} --labels {params.labels}"
        " --figure {output.figure} --table {output.table} > {log} 2>&1"
