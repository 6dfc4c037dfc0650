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
