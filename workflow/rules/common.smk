# Expands config.yaml's experiment matrix (paper_tables/experiments.py) into runs named by what
# they vary: {dataset}/{model}/{variant}.
import re
from shlex import quote

from dcl_core import format_loss_option
from paper_tables.experiments import ConfigError, expand, run_losses
from paper_tables.seeds import DEFAULT_SEED, check_seeds, seed_option, seeded_runs


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
    """The framework config of a run's model (an mmseg model's variant has a file of its own);
    a relative path is relative to the repository."""
    m = model_cfg(wildcards)
    variant = run_and_seed(wildcards)[0].split("/")[2]  # a seed's folder runs its run's config
    return str(REPO / m.get("variants", {}).get(variant, m["config"]))


def run_and_seed(wildcards):
    """(planned run, seed) of a run folder: a `{variant}_seed{s}` folder is its run at seed s,
    any other folder its own run at the default seed (paper_tables/seeds.py)."""
    run = f"{wildcards.dataset}/{wildcards.model}/{wildcards.variant}"
    run, seed = SEED_RUNS.get(run, (run, DEFAULT_SEED))
    if run not in PLAN.runs:
        raise WorkflowError(f"{run} is not a run of scale {SCALE!r} (see config.yaml experiments)")
    return run, seed


def seed_words(wildcards):
    """` --seed s` of a run folder at seed s, shell-quoted; empty at the default seed, so those
    runs keep their commands (paper_tables.seeds.seed_option)."""
    return "".join(f" {quote(w)}" for w in seed_option(run_and_seed(wildcards)[1]))


def loss_option(wildcards):
    """`--loss ...` of a run's variant, shell-quoted: neutral words that each framework's
    adapter translates into its own config keys (dcl_core.registry)."""
    words = format_loss_option(run_losses(PLAN.runs[run_and_seed(wildcards)[0]]))
    return "--loss " + " ".join(quote(w) for w in words)


def detectron2_opts(wildcards):
    """The KEY VALUE overrides of a detectron2 run (data, weights, the preset's), shell-quoted."""
    m = model_cfg(wildcards)
    d = wildcards.dataset
    opts = ["DATASETS.TRAIN", f"('{d}_train',)", "DATASETS.TEST", f"('{d}_val',)"]
    if m.get("weights"):
        opts += ["MODEL.WEIGHTS", weights_file(m["weights"])]  # workflow/rules/weights.smk
    opts += PRESET.get("opts", {}).get("detectron2", [])
    return " ".join(quote(str(o)) for o in opts)


def detectron2_datasets(wildcards):
    d = wildcards.dataset
    specs = (f"--dataset={d}_{s}={split(d, s)['json']}:{split(d, s)['images']}" for s in ("train", "val"))
    return " ".join(quote(spec) for spec in specs)


def mmdet_args(wildcards, train=True):
    """Data paths and --cfg-options (weights, the preset's) of an mmdetection run
    (training or prediction), shell-quoted."""
    m = model_cfg(wildcards)
    d = wildcards.dataset
    args = [f"--val-data={split(d, 'val')['json']}:{split(d, 'val')['images']}"]
    if train:
        args.insert(0, f"--train-data={split(d, 'train')['json']}:{split(d, 'train')['images']}")
    options = list(PRESET.get("opts", {}).get("mmdet", []))
    if m.get("weights"):
        options.append(mmdet_weights_option(m["weights"]))  # workflow/rules/weights.smk
    if options:
        args += ["--cfg-options", *options]
    return " ".join(quote(a) for a in args)


def semantic_root(dataset):
    """The folder an mmseg run reads (--data): a semantic set or a Cityscapes root."""
    return config["datasets"][dataset]["semantic"]


def mmseg_args(wildcards):
    """--data and --cfg-options (weights, the preset's) of an mmseg run, shell-quoted."""
    args = [f"--data={semantic_root(wildcards.dataset)}"]
    options = list(PRESET.get("opts", {}).get("mmseg", []))
    if model_cfg(wildcards).get("weights"):
        options.append(mmseg_weights_option(model_cfg(wildcards)["weights"]))  # weights.smk
    if options:
        args += ["--cfg-options", *options]
    return " ".join(quote(a) for a in args)


def _launch(gpus):
    """(launcher, extra flag) of an mmengine script: one process per GPU through torch's
    launcher, as mmdet's and mmseg's dist_train.sh do."""
    if gpus > 1:
        return f"python -m torch.distributed.run --nproc_per_node={gpus}", " --launcher pytorch"
    return "python", ""


def train_command(wildcards, output, input, resources):
    """A run's training command, by its model's framework (the train rules' one body).

    detectron2: `train_net.py --num-gpus N` launches one process per GPU itself. --resume: a
    killed run continues from OUTPUT_DIR/last_checkpoint (checkpoints are written before the
    tag that points at them, so the tag never names a partial file). mmdetection: one process
    per GPU through torch's launcher, as its dist_train.sh does; --resume likewise. The GPU
    count comes from the rule's own resource, so `--set-resources train_detectron2:gpu=8`
    changes both the request and the launch; 0 GPUs (CPU) still runs one process.
    """
    gpus = max(resources.gpu, 1)
    repo, config = quote(str(REPO)), quote(str(input.config))
    outdir = quote(str(Path(output.weights).parent))
    if model_cfg(wildcards)["framework"] == "detectron2":
        return (f"python {repo}/baselines/detectron2/train_net.py --resume --num-gpus {gpus}"
                f" {loss_option(wildcards)}{seed_words(wildcards)} --config-file {config}"
                f" {detectron2_datasets(wildcards)} OUTPUT_DIR {outdir} {detectron2_opts(wildcards)}")
    launch, extra = _launch(gpus)
    if model_cfg(wildcards)["framework"] == "mmseg":  # the variant is the config file
        return (f"{launch} {repo}/baselines/mmseg/train.py {config}{seed_words(wildcards)}"
                f" --work-dir {outdir} --resume{extra} {mmseg_args(wildcards)}")
    return (f"{launch} {repo}/baselines/mmdet/train.py {config} {loss_option(wildcards)}"
            f"{seed_words(wildcards)} --work-dir {outdir} --resume{extra} {mmdet_args(wildcards)}")


def predict_command(wildcards, output, input):
    """A run's command writing its COCO-format predictions on val (mmseg: its mIoU on val), by
    its model's framework (the predict rules' one body)."""
    repo, config, weights = quote(str(REPO)), quote(str(input.config)), quote(str(input.weights))
    out = quote(output[0])
    if model_cfg(wildcards)["framework"] == "detectron2":
        eval_dir = quote(str(Path(output[0]).parent / "eval"))
        return (f"python {repo}/baselines/detectron2/train_net.py --eval-only"
                f" {loss_option(wildcards)}{seed_words(wildcards)} --config-file {config}"
                f" {detectron2_datasets(wildcards)} --predictions-out {out} OUTPUT_DIR {eval_dir}"
                f" {detectron2_opts(wildcards)} MODEL.WEIGHTS {weights}")
    if model_cfg(wildcards)["framework"] == "mmseg":  # mmseg's mIoU, written by the run itself
        return (f"python {repo}/baselines/mmseg/predict.py {config} {weights}"
                f" --metrics-out {out} {mmseg_args(wildcards)}")
    return (f"python {repo}/baselines/mmdet/predict.py {config} {weights}"
            f" {loss_option(wildcards)}{seed_words(wildcards)} --predictions-out {out} {mmdet_args(wildcards, train=False)}")


def run_dir(run):
    return f"{RESULTS}/{run}"
