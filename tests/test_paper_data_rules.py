"""The paper-scale data rules in the workflow, on fake dataset trees: the paper dry run through
the cluster profile plans every job with its GPU resources; the conversion rules really run on
the fake trees; missing data stops the workflow at once, naming what is missing."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from dcl_data import validate_coco_instances
from test_dcl_data_paper_sets import FRAMES, VAL, _coco, make_cityscapes, make_coco_tree
from test_workflow import REPO, planned_jobs, snakemake, workdir

OCC = "resources/coco_occ/instances_val2017_occ.json"
MINI = ("resources/mini_coco/instances_train2017_mini.json", "resources/mini_coco/instances_val2017_mini.json")
CITYSCAPES = ("datasets/cityscapes/annotations/instancesonly_filtered_gtFine_train.json",
              "datasets/cityscapes/annotations/instancesonly_filtered_gtFine_val.json")
TRAIN = _coco({i: [([0, 0, 5, 5], 0)] for i in range(1, 9)})


def paper_trees(wd: Path) -> Path:
    """Fake Cityscapes and COCO trees where config.yaml's defaults expect them."""
    make_cityscapes(wd / "datasets/cityscapes", FRAMES)
    make_coco_tree(wd / "datasets/coco", VAL, TRAIN)
    return wd


def job_resources(output: str) -> dict[str, list[str]]:
    """rule name -> the `resources:` line of each planned job (dry-run output)."""
    found: dict[str, list[str]] = {}
    rule = None
    for line in output.splitlines():
        if m := re.match(r"rule (\w+):", line):
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            found.setdefault(rule, []).append(line)
    return found


def test_paper_dry_run_through_the_cluster_profile_plans_every_job_with_gpus(tmp_path):
    import yaml

    from paper_tables.experiments import expand

    wd = paper_trees(workdir(tmp_path, scale="paper"))
    out = snakemake(wd, "-n", "--profile", str(REPO / "profiles/slurm"), "all", OCC, *MINI).stdout
    jobs = planned_jobs(out)
    plan = expand(yaml.safe_load((wd / "config.yaml").read_text()), "paper")
    # Every training of every table: the sweeps of Tables 1-4, Tables 5-7's models, supp., the
    # same-baseline runs (ContrastMask's loss, DCL + it, CAC's loss), ContrastMask's four
    # ResNeXt 3x runs (mmdet), and CAC's table (3 HRNet/OCRNet models: matched baseline and CAC,
    # 2 authors' baselines; mmseg).
    assert len(plan.runs) == 45
    for run in plan.runs:
        assert f"results/paper/{run}/model_final.pth" in out, run
    assert jobs["train_detectron2"] + jobs["train_mmdet"] == 37 and jobs["train_mmdet"] == 6
    assert jobs["train_mmseg"] == 8 and jobs["predict_mmseg"] == 8
    assert jobs["novel_split_coco_voc"] == 1 and jobs["novel_split_coco_nonvoc"] == 1
    for d in ("voc2nonvoc", "nonvoc2voc"):
        assert f"results/paper/coco/contrastmask_x101_fpn_3x_{d}/baseline/model_final.pth" in out
    assert "contrastmask_x101_fpn_3x_voc2nonvoc/baseline/metrics_nonvoc.json" in out
    assert {k: jobs[k] for k in ("cityscapes_coco_json", "cityscapes_train_ids", "occ_split_coco",
                                 "mini_coco", "paper_tables", "figure2", "figure4", "report")} == \
        {"cityscapes_coco_json": 1, "cityscapes_train_ids": 1, "occ_split_coco": 1, "mini_coco": 1,
         "paper_tables": 1, "figure2": 1, "figure4": 1, "report": 1}
    for variant in ("fcn_hr48_4xb2-40k_cityscapes-512x1024_baseline_official.py",
                    "fcn_hr48_4xb2-120k_cityscapes-512x1024_cac.py",
                    "ocrnet_hr48_4xb4-120k_cityscapes-512x1024_baseline_official.py"):
        assert f"baselines/mmseg/train.py {REPO}/baselines/mmseg/configs/cityscapes/{variant}" in out
    assert "--data=datasets/cityscapes" in out
    # Table 5 is scored Cityscapes-style on each of its Cityscapes runs (6 rows, 6 runs).
    assert jobs["evaluate_cityscapes"] == 6
    resources = job_resources(out)
    for line in resources["train_detectron2"] + resources["train_mmdet"]:
        assert "gpu=4" in line and "slurm_partition=gpu" in line and "runtime=720" in line, line
    for line in resources["train_mmseg"]:
        assert "gpu=4" in line and "slurm_partition=gpu" in line and "runtime=1440" in line, line
    for line in resources["predict_detectron2"] + resources["predict_mmdet"] + resources["predict_mmseg"]:
        assert "gpu=1" in line and "slurm_partition=gpu" in line, line
    for rule in ("cityscapes_coco_json", "occ_split_coco", "mini_coco", "evaluate", "seg_errors"):
        assert all("gpu" not in line for line in resources[rule]), rule
    assert "--num-gpus 4" in out and "--nproc_per_node=4" in out


@pytest.mark.slow
def test_cityscapes_rule_converts_the_fake_tree(tmp_path):
    wd = paper_trees(workdir(tmp_path))
    snakemake(wd, "--cores", "1", *CITYSCAPES)
    val = validate_coco_instances(wd / CITYSCAPES[1], wd / "datasets/cityscapes/leftImg8bit/val")
    assert val.num_images == 1 and val.instances_per_category["car"] == 2 and val.crowd_annotations == 1
    assert validate_coco_instances(wd / CITYSCAPES[0]).num_images == 2


@pytest.mark.slow
def test_coco_occ_and_mini_coco_rules_run_on_the_fake_tree(tmp_path):
    wd = paper_trees(workdir(tmp_path, mini_coco={"train_images": 3, "val_images": 2, "seed": 0}))
    snakemake(wd, "--cores", "1", OCC, *MINI)
    assert [im["id"] for im in json.loads((wd / OCC).read_text())["images"]] == [1]
    assert len(json.loads((wd / MINI[0]).read_text())["images"]) == 3
    assert [im["id"] for im in json.loads((wd / MINI[1]).read_text())["images"]] == [1, 2]


def test_a_missing_cityscapes_tree_fails_the_rule_at_once_naming_it(tmp_path):
    wd = workdir(tmp_path)
    began = time.monotonic()
    result = snakemake(wd, "--cores", "1", CITYSCAPES[1], check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # snakemake has made the output folder datasets/cityscapes/annotations by then.
    assert "error: datasets/cityscapes/leftImg8bit/train: missing Cityscapes train images" in output, \
        output[-3000:]
    assert time.monotonic() - began < 60
    assert not (wd / CITYSCAPES[1]).exists()


def test_a_missing_coco_file_stops_the_workflow_before_any_job(tmp_path):
    wd = workdir(tmp_path)
    result = snakemake(wd, "-n", "--cores", "1", OCC, MINI[0], check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Missing input files for rule" in output
    assert "datasets/coco/annotations/instances_val2017.json" in output
    assert "Job stats" not in output
