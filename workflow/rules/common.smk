# Expands config.yaml into runs named by what they vary: {dataset}/{model}/{variant}.


def _fail(message):
    raise WorkflowError(f"config.yaml: {message}")


# Code and framework configs live beside the Snakefile; data and results in the working
# directory (`--directory` runs the same workflow elsewhere, as the tests do).
REPO = Path(workflow.basedir)
DOWNLOADS = config.get("downloads", "resources/downloads")
SCALE = config["scale"]
RESULTS = f"results/{SCALE}"
if SCALE not in config["presets"]:
    _fail(f"scale {SCALE!r} is not one of the presets {sorted(config['presets'])}")
PRESET = config["presets"][SCALE]
DATASET = PRESET["dataset"]
if DATASET not in config["datasets"]:
    _fail(f"presets.{SCALE}.dataset {DATASET!r} is not one of the datasets {sorted(config['datasets'])}")


# The paper's settings (lambda 1.2, tau 0.07, K 32, learnable similarity) fill what a variant omits.
DCL_DEFAULTS = {"loss_weight": 1.2, "temperature": 0.07, "num_samples": 32, "with_projection": True}


def variant_settings(v):
    return {**DCL_DEFAULTS, **v} if v["dcl"] else v


def variant_name(v):
    """'baseline' or e.g. 'dcl_w1.2_t0.07_k32' (+ '_noproj' without learnable similarity)."""
    if not v["dcl"]:
        return "baseline"
    name = f"dcl_w{v['loss_weight']:g}_t{v['temperature']:g}_k{v['num_samples']}"
    return name if v["with_projection"] else name + "_noproj"


VARIANTS = {variant_name(v): v for v in map(variant_settings, config["variants"])}
if len(VARIANTS) != len(config["variants"]):
    _fail("two entries of `variants` have the same settings")
RUNS = [f"{DATASET}/{model}/{variant}" for model in PRESET["models"] for variant in VARIANTS]


def variant_opts(wildcards):
    """detectron2 KEY VALUE overrides of a variant (the baseline keeps the config's heads)."""
    v = VARIANTS[wildcards.variant]
    if not v["dcl"]:
        return []
    return [
        "MODEL.ROI_HEADS.NAME", "ContrastRoIHeads",
        "MODEL.ROI_MASK_HEAD.NAME", "ContrastConvUpsampleHead",
        # yacs refuses an int where the default is a float: `loss_weight: 1` must reach it as 1.0.
        "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT", float(v["loss_weight"]),
        "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.TEMPERATURE", float(v["temperature"]),
        "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.NUM_SAMPLES", v["num_samples"],
        "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.WITH_PROJ", v["with_projection"],
    ]


def split(dataset, name):
    return config["datasets"][dataset][name]


def model_cfg(wildcards):
    return PRESET["models"][wildcards.model]


def model_config_file(wildcards):
    """The framework config of a run's model; a relative path is relative to the repository."""
    return str(REPO / model_cfg(wildcards)["config"])


def train_opts(wildcards):
    """Every override of a run, as one shell-quoted string."""
    from shlex import quote

    m = model_cfg(wildcards)
    d = wildcards.dataset
    opts = ["DATASETS.TRAIN", f"('{d}_train',)", "DATASETS.TEST", f"('{d}_val',)"]
    if m.get("weights"):
        opts += ["MODEL.WEIGHTS", m["weights"]]
    opts += [str(o) for o in PRESET.get("opts", [])] + [str(o) for o in variant_opts(wildcards)]
    return " ".join(quote(str(o)) for o in opts)


def dataset_args(wildcards):
    from shlex import quote

    d = wildcards.dataset
    specs = (f"--dataset={d}_{s}={split(d, s)['json']}:{split(d, s)['images']}" for s in ("train", "val"))
    return " ".join(quote(spec) for spec in specs)
