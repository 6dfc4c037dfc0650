# The paper's datasets, downloaded only when asked: the targets fetch_coco, fetch_cityscapes and
# fetch_datasets (config.yaml `dataset_downloads`; dcl_data/dataset_fetch.py). Their outputs are
# markers under the dataset roots that no other rule takes as input, so a plain run never
# downloads a dataset; the data rules read the unpacked trees as they read hand-placed ones.
from dcl_data.dataset_fetch import marker_path

DATASET_DOWNLOADS = config.get("dataset_downloads", {})
FETCHED_ARCHIVES = f"{DOWNLOADS}/datasets"
# Where the zips unpack: the folder above COCO's annotations/ (detectron2's datasets/coco), and
# the Cityscapes root the data rules convert.
FETCH_ROOTS = {"cityscapes": SOURCES.get("cityscapes", "datasets/cityscapes")}
if "coco" in config["datasets"]:
    FETCH_ROOTS["coco"] = str(Path(split("coco", "train")["json"]).parents[1])


def fetch_markers(dataset):
    """The markers of every declared archive of `dataset` (one rule each)."""
    if dataset == "coco":
        names = [Path(a["url"]).name for a in DATASET_DOWNLOADS.get("coco", {}).values()]
    else:
        names = DATASET_DOWNLOADS.get("cityscapes", [])
    return [str(marker_path(FETCH_ROOTS[dataset], n)) for n in names]


# scale=preflight generates its datasets into the same roots (workflow/rules/preflight.smk).
if not PREFLIGHT and "coco" in FETCH_ROOTS:
    for _name, _a in DATASET_DOWNLOADS.get("coco", {}).items():

        rule:
            """Download one COCO 2017 zip (resumable, sha256-checked) and unpack it."""
            name:
                f"fetch_coco_{_name}"
            # On the submitting host: cluster nodes often cannot reach the internet.
            localrule: True
            output:
                str(marker_path(FETCH_ROOTS["coco"], Path(_a["url"]).name)),
            log:
                f"logs/data/fetch_coco_{_name}.log",
            conda:
                "../../envs/detectron2.yaml"
            params:
                root=FETCH_ROOTS["coco"],
                downloads=f"{FETCHED_ARCHIVES}/coco",
                url=_a["url"],
                sha256=_a["sha256"],
                label=_name,
            shell:
                "python -m dcl_data.dataset_fetch coco {params.root:q} {params.downloads:q}"
                " {params.url:q} {params.sha256:q} --label {params.label:q} > {log:q} 2>&1"

    rule fetch_coco:
        """COCO 2017, every declared zip unpacked; the layout is checked as the data rules do."""
        input:
            fetch_markers("coco"),
        localrule: True
        log:
            "logs/data/fetch_coco.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            root=FETCH_ROOTS["coco"],
        shell:
            "python -m dcl_data.paper_sets coco {params.root:q} > {log:q} 2>&1"


if not PREFLIGHT:
    for _package in DATASET_DOWNLOADS.get("cityscapes", []):

        rule:
            """Download one Cityscapes package with cityscapesScripts' downloader (login from
            CITYSCAPES_USERNAME / CITYSCAPES_PASSWORD; md5-checked) and unpack it."""
            name:
                f"fetch_cityscapes_{Path(_package).stem}"
            localrule: True
            output:
                str(marker_path(FETCH_ROOTS["cityscapes"], _package)),
            log:
                f"logs/data/fetch_cityscapes_{Path(_package).stem}.log",
            conda:
                "../../envs/detectron2.yaml"
            params:
                root=FETCH_ROOTS["cityscapes"],
                downloads=f"{FETCHED_ARCHIVES}/cityscapes",
                package=_package,
            shell:
                "python -m dcl_data.dataset_fetch cityscapes {params.root:q} {params.downloads:q}"
                " {params.package:q} > {log:q} 2>&1"

    rule fetch_cityscapes:
        """Cityscapes fine, every declared package unpacked; the layout is checked."""
        input:
            fetch_markers("cityscapes"),
        localrule: True
        log:
            "logs/data/fetch_cityscapes.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            root=FETCH_ROOTS["cityscapes"],
        shell:
            "python -m dcl_data.paper_sets cityscapes {params.root:q} > {log:q} 2>&1"

    rule fetch_datasets:
        """Every dataset of `dataset_downloads`, each layout checked."""
        input:
            cityscapes=fetch_markers("cityscapes"),
            coco=fetch_markers("coco") if "coco" in FETCH_ROOTS else [],
        localrule: True
        log:
            "logs/data/fetch_datasets.log",
        conda:
            "../../envs/detectron2.yaml"
        params:
            checks=" && ".join(f"python -m dcl_data.paper_sets {d} {quote(r)}"
                               for d, r in FETCH_ROOTS.items()),
        shell:
            "({params.checks}) > {log:q} 2>&1"
