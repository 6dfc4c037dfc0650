# Pretrained weights, declared once in config.yaml `weights`: each is fetched from its public
# address (dcl_data/fetch.py: resumable, sha256-checked before it is accepted) or converted from
# another declared file (baselines/detectron2/tools). A model's `weights` names one; its train
# rule takes the file as an input, so the DAG fetches what the chosen scale needs, nothing else.

WEIGHTS = config.get("weights", {})
# How each framework starts from a file of each format (formats: config.yaml).
_D2_FORMATS = ("detectron2_msra_pkl", "detectron2_pkl", "detectron2_pth")
_MMDET_BACKBONE_FORMATS = ("torchvision_pth",)
_MMSEG_BACKBONE_FORMATS = ("hrnet_pth",)
_FORMATS = {"detectron2": _D2_FORMATS, "mmdet": _MMDET_BACKBONE_FORMATS, "mmseg": _MMSEG_BACKBONE_FORMATS}


def _check_weights_declarations():
    for name, w in WEIGHTS.items():
        source = w.get("convert", {}).get("from")
        if source is not None and source not in WEIGHTS:
            _fail(f"weights.{name}.convert.from: {source!r} is not declared under weights")
    for role, m in PRESET["models"].items():
        name = m.get("weights")
        if name is None:
            continue
        if name not in WEIGHTS:
            _fail(f"presets.{SCALE}.models.{role}.weights: {name!r} is not declared under weights "
                  f"(declared: {sorted(WEIGHTS)})")
        fmt = WEIGHTS[name]["format"]
        usable = _FORMATS[m["framework"]]
        if fmt not in usable:
            _fail(f"presets.{SCALE}.models.{role}: {m['framework']} cannot start from {name} "
                  f"(format {fmt}); it takes {', '.join(usable)}")


_check_weights_declarations()


def weights_file(name):
    return WEIGHTS[name]["file"]


def model_weights(wildcards):
    """The initial weights file of a run's model (an input of its train rule), or none."""
    name = model_cfg(wildcards).get("weights")
    return [weights_file(name)] if name else []


def mmseg_weights_option(name):
    """The --cfg-options entry that starts an mmseg model from declared weights: MSRA's
    ImageNet HRNet initialises the backbone (the segmentor's `pretrained`)."""
    return f"model.pretrained={weights_file(name)}"


def mmdet_weights_option(name):
    """The --cfg-options entry that starts an mmdet model from declared weights: a torchvision
    classifier initialises the backbone (its init_cfg checkpoint)."""
    return f"model.backbone.init_cfg.checkpoint={weights_file(name)}"


for _name, _w in WEIGHTS.items():
    if "url" in _w and PREFLIGHT:
        continue  # workflow/rules/preflight.smk writes a stand-in instead
    if "url" in _w:

        rule:
            """Download one declared file; refuses an UNKNOWN sha256, resumes a broken
            transfer, and accepts the file only once its sha256 matches."""
            name:
                f"fetch_weights_{_name}"
            # On the submitting host: cluster nodes often cannot reach the internet.
            localrule: True
            output:
                _w["file"],
            log:
                f"logs/weights/fetch_{_name}.log",
            conda:
                "../../envs/detectron2.yaml"
            params:
                url=_w["url"],
                sha256=_w["sha256"],
                label=_name,
            shell:
                "python -m dcl_data.fetch {params.url:q} {output:q} --sha256 {params.sha256:q}"
                " --label {params.label:q} 2>&1 | tee {log:q}"

    else:

        rule:
            """Convert one declared file into another framework's key names."""
            name:
                f"convert_weights_{_name}"
            localrule: True
            input:
                WEIGHTS[_w["convert"]["from"]]["file"],
            output:
                _w["file"],
            log:
                f"logs/weights/convert_{_name}.log",
            conda:
                "../../envs/detectron2.yaml"
            params:
                tool=REPO / "baselines/detectron2/tools" / _w["convert"]["tool"],
                args=" ".join(quote(a) for a in _w["convert"].get("args", [])),
            shell:
                "python {params.tool:q} {input:q} {output:q} {params.args} > {log:q} 2>&1"
