# Expands config.yaml's experiment matrix (paper_tables/experiments.py) into runs named by what
# they vary: {dataset}/{model}/{variant}.
import re
from shlex import quote

from paper_tables.experiments import ConfigError, expand, framework_overrides
from paper_tables.seeds import DEFAULT_SEED, check_seeds, seed_overrides, seeded_runs


def _fail(message):
    raise WorkflowError(f"config.yaml: {message}")


# Code and framework configs live beside the Snakefile; data and results in the working
# directory (`--directory` runs the same workflow elsewhere, as the tests do).
REPO = Path(workflow.basedir)
DOWNLOADS = config.get("downloads", "resources/downloads")
SCALE = config["scale"]
RESULTS = f"results/{SCALE}"
try:
    PLAN = expand(config, SCALE)
except ConfigError as e:
    _fail(str(e))
PRESET = config["presets"][SCALE]
# `seeds` repeats every run; the default seed keeps the run's own folder (paper_tables/seeds.py).
try:
    SEED_RUNS = seeded_runs(PLAN.runs, check_seeds(config.get("seeds", [DEFAULT_SEED])))
except ConfigError as e:
    _fail(str(e))
RUNS = list(PLAN.runs) + list(SEED_RUNS)
if not RUNS:
    _fail(f"no experiment row runs at scale {SCALE!r}")


def models_of(framework):
    """Regex of the model names trained by `framework` (keeps the train rules apart)."""
    names = sorted(n for n, m in PLAN.models.items() if m["framework"] == framework)
    return "|".join(map(re.escape, names)) or "(?!)"


def split(dataset, name):
    return config["datasets"][dataset][name]


def model_cfg(wildcards):
    return PLAN.models[wildcards.model]


def model_config_file(wildcards):
    """The framework config of a run's model; a relative path is relative to the repository."""
    return str(REPO / model_cfg(wildcards)["config"])


def run_overrides(wildcards):
    """The framework overrides of a run's variant (paper_tables.experiments.framework_overrides)."""
    run = f"{wildcards.dataset}/{wildcards.model}/{wildcards.variant}"
    run, seed = SEED_RUNS.get(run, (run, DEFAULT_SEED))
    if run not in PLAN.runs:
        raise WorkflowError(f"{run} is not a run of scale {SCALE!r} (see config.yaml experiments)")
    return (framework_overrides(model_cfg(wildcards), PLAN.runs[run])
            + seed_overrides(model_cfg(wildcards), seed))


def detectron2_opts(wildcards):
    """Every KEY VALUE override of a detectron2 run, as one shell-quoted string."""
    m = model_cfg(wildcards)
    d = wildcards.dataset
    opts = ["DATASETS.TRAIN", f"('{d}_train',)", "DATASETS.TEST", f"('{d}_val',)"]
    if m.get("weights"):
        opts += ["MODEL.WEIGHTS", m["weights"]]
    opts += PRESET.get("opts", {}).get("detectron2", []) + run_overrides(wildcards)
    return " ".join(quote(str(o)) for o in opts)


def detectron2_datasets(wildcards):
    d = wildcards.dataset
    specs = (f"--dataset={d}_{s}={split(d, s)['json']}:{split(d, s)['images']}" for s in ("train", "val"))
    return " ".join(quote(spec) for spec in specs)


def mmdet_args(wildcards, train=True):
    """Data paths and --cfg-options of an mmdetection run (training or prediction), shell-quoted."""
    m = model_cfg(wildcards)
    d = wildcards.dataset
    args = [f"--val-data={split(d, 'val')['json']}:{split(d, 'val')['images']}"]
    if train:
        args.insert(0, f"--train-data={split(d, 'train')['json']}:{split(d, 'train')['images']}")
    options = list(PRESET.get("opts", {}).get("mmdet", []))
    if m.get("weights"):
        options.append(f"load_from={m['weights']}")
    options += run_overrides(wildcards)
    if options:
        args += ["--cfg-options", *options]
    return " ".join(quote(a) for a in args)


def run_dir(run):
    return f"{RESULTS}/{run}"
