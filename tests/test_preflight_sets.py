"""Generated stand-ins for Cityscapes and COCO 2017 (dcl_data.preflight_sets) pass the project's
layout checks and the real data steps: Cityscapes -> COCO JSON with cityscapesscripts' labels,
validation against the images, COCO-OCC with at least one image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dcl_data import DatasetError, validate_coco_instances
from dcl_data.cityscapes_convert import coco_categories, write_split
from dcl_data.coco_subsets import occluded_image_ids
from dcl_data.paper_sets import check_cityscapes_layout, check_coco_layout
from dcl_data.preflight_sets import main, make_cityscapes, make_coco


def test_cityscapes_stand_in_converts_with_the_real_label_ids(tmp_path):
    root = tmp_path / "cityscapes"
    written = make_cityscapes(root, {"train": 2, "val": 1}, height=128, width=256, seed=1)
    assert check_cityscapes_layout(root)  # the layout checks of the data rule
    out = tmp_path / "train.json"
    counts = write_split(root, "train", out)
    assert counts["images"] == 2 and counts["annotations"] == written["train"]
    summary = validate_coco_instances(out, root / "leftImg8bit/train")
    assert summary.num_images == 2
    data = json.loads(out.read_text())
    assert data["categories"] == coco_categories()
    assert {a["category_id"] for a in data["annotations"]} <= {24, 25, 26, 27, 28, 31, 32, 33}
    # labelIds, instanceIds and polygons agree: every instance pixel carries its class id.
    gt = next((root / "gtFine/train").rglob("*_gtFine_instanceIds.png"))
    ids = np.asarray(Image.open(gt))
    labels = np.asarray(Image.open(str(gt).replace("instanceIds", "labelIds")))
    inst = ids >= 1000
    assert inst.any() and np.array_equal(labels[inst], ids[inst] // 1000)
    assert set(np.unique(labels[~inst])) <= {0, 7, 11, 23}
    polygons = json.loads(gt.with_name(gt.name.replace("instanceIds.png", "polygons.json")).read_text())
    assert (polygons["imgHeight"], polygons["imgWidth"]) == (128, 256)
    assert [o["label"] for o in polygons["objects"][:3]] == ["sky", "building", "road"]


def test_coco_stand_in_has_the_80_categories_and_an_occlusion_subset(tmp_path):
    root = tmp_path / "coco"
    make_coco(root, {"train": 3, "val": 2}, seed=2)
    assert check_coco_layout(root)
    for split in ("train", "val"):
        summary = validate_coco_instances(root / f"annotations/instances_{split}2017.json",
                                          root / f"{split}2017")
        assert summary.num_images == {"train": 3, "val": 2}[split]
    val = json.loads((root / "annotations/instances_val2017.json").read_text())
    ids = [c["id"] for c in val["categories"]]
    assert len(ids) == 80 and ids[0] == 1 and ids[-1] == 90 and 12 not in ids
    assert val["categories"][0]["name"] == "person" and val["categories"][-1]["name"] == "toothbrush"
    assert occluded_image_ids(val, 0.2) == [im["id"] for im in val["images"]]


def test_a_count_below_one_is_one_line(tmp_path, capsys):
    with pytest.raises(DatasetError, match="train: the number of images must be >= 1, got 0"):
        make_coco(tmp_path, {"train": 0, "val": 1})
    assert main(["coco", str(tmp_path), "--train", "0"]) == 1
    assert capsys.readouterr().err == "error: train: the number of images must be >= 1, got 0\n"


def test_preflight_dry_run_plans_the_paper_matrix_on_stand_ins(tmp_path):
    """scale=preflight: all 33 paper trainings (the same-baseline comparison's 3 included) on one CPU process each, from generated data
    through the real data rules and stand-in weights through the real converters; no fetch."""
    import yaml

    from paper_tables.experiments import expand
    from test_workflow import REPO, planned_jobs, snakemake, workdir

    wd = workdir(tmp_path, scale="preflight")
    out = snakemake(wd, "-n", "-p", "--cores", "2", "all",
                    "resources/coco_occ/instances_val2017_occ.json").stdout
    jobs = planned_jobs(out)
    config = yaml.safe_load((wd / "config.yaml").read_text())
    assert len(expand(config, "preflight").runs) == 33
    assert jobs["train_detectron2"] + jobs["train_mmdet"] == 33
    assert {k: v for k, v in jobs.items() if "weights" in k or "preflight" in k} == {
        "preflight_cityscapes": 1, "preflight_coco": 1, "standin_weights_msra_r50": 1,
        "standin_weights_coco_mask_rcnn_r50_fpn_3x": 1, "standin_weights_torchvision_r50": 1,
        "standin_weights_torchvision_swin_t": 1, "convert_weights_swin_t_d2": 1,
        "convert_weights_torchvision_r50_d2": 1}
    assert jobs["cityscapes_coco_json"] == 1 and jobs["occ_split_coco"] == 1
    # One process each: detectron2's --num-gpus 1, mmdetection's train.py without torchrun
    # (common.smk's train_command launches torch.distributed.run only for more than one GPU).
    assert "--num-gpus 1" in out and "--num-gpus 4" not in out
    assert f"OMP_NUM_THREADS=2 python {REPO}/baselines/mmdet/train.py" in out
    assert "torch.distributed.run" not in out and "--launcher pytorch" not in out
    assert "SOLVER.REFERENCE_WORLD_SIZE 4 SOLVER.MAX_ITER 1" in out
    assert "synthetic_weights detectron2_msra_pkl pretrained/R-50.pkl  >" in out
    assert "synthetic_weights torchvision_pth pretrained/swin_t-704ceda3.pth --arch swin_t" in out
