"""The HTML report: all tables and figures, the runs behind the cells, config and git revision."""

import datetime
import subprocess
import sys
from pathlib import Path

import yaml

from analysis.io import read_json, write_text_atomic
from paper_tables.figures import GAIN_FAMILIES
from paper_tables.render import render_report

sys.stderr = open(snakemake.log[0], "w")
repo = Path(snakemake.params.repo)


def git(*args):
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


scale, results = snakemake.params.scale, Path(snakemake.params.results)
tables = read_json(snakemake.input.tables)["tables"]
preset = snakemake.config["presets"][scale]
runs = []
for run in snakemake.params.runs:
    # a {variant}_seed{s} folder runs its run's config (paper_tables/seeds.py)
    model, variant = run.split("/")[1], snakemake.params.seed_runs.get(run, (run,))[0].split("/")[2]
    entry = next(m for m in preset["models"].values() if m["name"] == model)
    # an mmseg model's variant has a config file of its own (common.smk: model_config_file)
    config_file = entry.get("variants", {}).get(variant, entry["config"])
    runs.append({"run": run, "config": config_file,
                 "train_cost": read_json(results / run / "train_cost.json")})

captions = {
    "sweeps.png": ("Tables 1, 3, 4 as curves", "Mask AP against lambda, tau and K: measured at this "
                   "scale and the paper's (Cityscapes val)."),
    **{f"{stem}.png": (f"Gains with 95% intervals: {title}", "Each DCL-minus-baseline gain "
                       "measured here (dot, 95% paired image-bootstrap interval) beside the "
                       "paper's gain (diamond, where the paper has one), with its verdict (rule "
                       "under each table).")
       for stem, (title, _) in GAIN_FAMILIES.items()},
    "figure2_seg_errors.png": ("Figure 2: segmentation errors", "Delta AP (x100) when each error "
                               "type is corrected, per model, dataset and split (paper Sec. 3)."),
    "figure4_tsne.png": ("Figure 4: t-SNE of mask-head features", "Features at foreground (red) and "
                         "background (blue) pixels of ground-truth boxes on val, baseline vs DCL."),
}
figures = []
for path in snakemake.input.figures:
    title, caption = captions[Path(path).name]
    if Path(path).name == "figure4_tsne.png" and snakemake.input.tsne:
        scores = read_json(snakemake.input.tsne)
        caption += " Silhouette of the fg/bg split in feature space (higher = more compact): " + \
            ", ".join(f"{k} {m['silhouette']:.3f}" for k, m in scores["models"].items()) + "."
    figures.append({"id": Path(path).stem, "title": title, "caption": caption, "path": path})

provenance = {
    "git_revision": git("rev-parse", "HEAD") or "unknown (not a git checkout)",
    "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    "config_yaml": yaml.safe_dump(dict(snakemake.config), sort_keys=False),
    "runs": runs,
}
write_text_atomic(snakemake.output[0], render_report(tables, figures, scale=scale, provenance=provenance))
