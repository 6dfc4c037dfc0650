"""Every table of the paper beside the measured runs, with bootstrap intervals, seed spread and
verdicts: Markdown, LaTeX, tables.json, sweep curves and gain figures."""

import sys
from pathlib import Path

from analysis.io import write_json_atomic, write_text_atomic
from paper_tables.build import build_tables
from paper_tables.experiments import expand
from paper_tables.figures import plot_gains, plot_sweeps
from paper_tables.render import render_latex, render_markdown
from paper_tables.uncertainty import Bootstrap, add_uncertainty

sys.stderr = open(snakemake.log[0], "w")
config, scale = snakemake.config, snakemake.params.scale
plan = expand(config, scale)


def describe_scale(table_id):
    """What plays the paper's dataset and model roles in this table at this scale."""
    rows = [r for r in plan.tables[table_id] if r.run]
    if not rows:
        return [f"No row of this table runs at scale `{scale}`."]
    roles = sorted({(r.dataset_role, r.dataset, r.model_role, r.model) for r in rows})
    parts = [f"{m_role} → `{m}` on `{d}` (for {d_role})" for d_role, d, m_role, m in roles]
    return [f"Scale `{scale}`: " + "; ".join(parts) + "."]


results = Path(snakemake.params.results)
tables = build_tables(plan, results, describe_scale=describe_scale)
add_uncertainty(tables, Bootstrap(results, **snakemake.params.bootstrap),
                seed_runs=snakemake.params.seed_runs, scale=scale)
by_id = {t["id"]: t for t in tables}
for md in snakemake.output.markdown:
    write_text_atomic(md, render_markdown(by_id[Path(md).stem], scale))
for tex in snakemake.output.latex:
    write_text_atomic(tex, render_latex(by_id[Path(tex).stem], scale))
plot_sweeps(tables, snakemake.output.sweeps, scale)
for path in snakemake.output.gains:
    plot_gains(tables, path, Path(path).stem, scale)
write_json_atomic(snakemake.output.json, {"scale": scale, "tables": tables}, indent=1)
