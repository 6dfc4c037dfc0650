"""CAC on mmsegmentation 1.x (baselines/mmseg, dcl_mmseg): the warm-up hook and resume, mIoU
against a hand count, the heads' losses and gradients, the configs' baseline/CAC pairing, the
semantic labels of the embedded set, and a short CPU train, resume and predict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MMSEG = REPO / "baselines/mmseg"
sys.path.insert(0, str(MMSEG))  # dcl_mmseg without the editable install too

pytest.importorskip("mmseg")
import dcl_mmseg  # noqa: E402  (registers the plug-in)
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope, init_default_scope  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

CONFIGS = MMSEG / "configs"


@pytest.fixture(autouse=True)
def _no_mmseg_scope_after_the_test():
    # init_default_scope("mmseg") is process-wide: without this, a later test building from
    # mmdet's registry (tests/test_contrastmask_mmdet.py after this file) looks in mmseg's.
    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


class _Logger:
    def info(self, *args, **kwargs) -> None:
        pass


def _runner(model, iteration):
    return SimpleNamespace(model=model, iter=iteration, logger=_Logger())


def _loss(weight=0.4):
    return dcl_mmseg.CACLoss(loss_weight=weight, temperature=0.1)


# ---------------------------------------------------------------- warm-up hook and resume

def test_warmup_zeroes_a_fresh_run_and_restores_after_start_iter():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), _loss(0.4))
    hook = dcl_mmseg.CACWarmupHook(start_iter=3)
    hook.before_train(_runner(model, 0))
    assert model[1].loss_weight == 0.0
    for it in range(3):  # iterations 0, 1, 2 end at weight 0
        hook.after_train_iter(_runner(model, it), it)
        assert model[1].loss_weight == 0.0
    hook.after_train_iter(_runner(model, 3), 3)  # the official 0-based `iter == start_iter`
    assert model[1].loss_weight == 0.4


@pytest.mark.parametrize("resumed_at", [2, 3, 10])
def test_warmup_never_rezeroes_a_resumed_run_by_default(resumed_at):
    """Official: `before_run` zeroes only at iter 0, so a resumed run (inside the warm-up too,
    the official quirk) trains at its configured weight from the resume point."""
    model = torch.nn.Sequential(_loss(0.6))
    hook = dcl_mmseg.CACWarmupHook(start_iter=3)
    hook.before_train(_runner(model, resumed_at))
    hook.after_train_iter(_runner(model, resumed_at), resumed_at)
    assert model[0].loss_weight == 0.6


def test_zero_resumed_warmup_option_keeps_a_run_resumed_inside_the_warmup_at_zero():
    model = torch.nn.Sequential(_loss(0.6))
    hook = dcl_mmseg.CACWarmupHook(start_iter=3, zero_resumed_warmup=True)
    hook.before_train(_runner(model, 2))
    assert model[0].loss_weight == 0.0
    hook.after_train_iter(_runner(model, 3), 3)
    assert model[0].loss_weight == 0.6
    past = torch.nn.Sequential(_loss(0.6))
    dcl_mmseg.CACWarmupHook(start_iter=3, zero_resumed_warmup=True).before_train(_runner(past, 4))
    assert past[0].loss_weight == 0.6


def test_warmup_hook_refuses_a_model_without_cac_and_a_negative_start():
    with pytest.raises(RuntimeError, match="no CACLoss"):
        dcl_mmseg.CACWarmupHook().before_train(_runner(torch.nn.Conv2d(1, 1, 1), 0))
    with pytest.raises(ValueError, match="start_iter"):
        dcl_mmseg.CACWarmupHook(start_iter=-1)


# ---------------------------------------------------------------- mIoU against a hand count

def test_miou_matches_a_hand_count_on_a_tiny_label_map(tmp_path):
    """Two 2x4 maps, classes a/b/c (0/1/2), 255 ignored; mIoU is the mean over classes of the
    set-wide intersection / union (not a mean of per-image IoUs). Counted by hand, pixels
    numbered row-major 0-7:"""
    gt1 = [[0, 0, 1, 1], [2, 2, 255, 255]]
    pr1 = [[0, 1, 1, 1], [2, 0, 2, 1]]
    gt2 = [[1, 1, 1, 255], [0, 0, 2, 2]]
    pr2 = [[1, 1, 0, 2], [0, 0, 2, 1]]
    # Image 1 (px 6, 7 ignored): a gt {0,1} pred {0,5}: ∩ 1, ∪ 3; b gt {2,3} pred {1,2,3}: ∩ 2,
    # ∪ 3; c gt {4,5} pred {4}: ∩ 1, ∪ 2; 4 of 6 pixels right.
    # Image 2 (px 3 ignored): a gt {4,5} pred {2,4,5}: ∩ 2, ∪ 3; b gt {0,1,2} pred {0,1,7}: ∩ 2,
    # ∪ 4; c gt {6,7} pred {6}: ∩ 1, ∪ 2; 5 of 7 pixels right.
    # Totals: a 3/6, b 4/7, c 2/4 -> mIoU = (1/2 + 4/7 + 1/2) / 3; aAcc = 9/13.
    metric = dcl_mmseg.IoUMetricWriter(outfile=str(tmp_path / "m.json"))
    metric.dataset_meta = {"classes": ("a", "b", "c")}
    samples = [{"pred_sem_seg": {"data": torch.tensor([p])}, "gt_sem_seg": {"data": torch.tensor([g])},
                "img_path": f"img{i}.png"} for i, (g, p) in enumerate([(gt1, pr1), (gt2, pr2)])]
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    out = json.loads((tmp_path / "m.json").read_text())
    assert out["mIoU"] == pytest.approx(100 * (1 / 2 + 4 / 7 + 1 / 2) / 3)
    assert out["per_class"] == pytest.approx({"a": 50.0, "b": 100 * 4 / 7, "c": 50.0})
    assert out["aAcc"] == pytest.approx(100 * 9 / 13) and out["num_images"] == 2
    areas = np.load(tmp_path / "m_areas.npz")
    assert areas["intersect"].tolist() == [[1, 2, 1], [2, 2, 1]]
    assert areas["union"].tolist() == [[3, 3, 2], [3, 4, 2]]


def test_miou_leaves_out_classes_absent_from_both_prediction_and_ground_truth():
    out = dcl_mmseg.miou_from_areas([2, 0, 0], [4, 0, 2], [3, 0, 1], [3, 0, 1], ("a", "b", "c"))
    assert out["per_class"] == {"a": 50.0, "b": None, "c": 0.0}
    assert out["mIoU"] == pytest.approx(25.0)


def test_miou_cells_and_cac_gains_get_paired_image_bootstrap_intervals(tmp_path):
    """The mmseg runs' per-image counts give mIoU intervals (analysis.miou, the same image
    draws for both runs, so the CAC - baseline gain is paired) in paper_tables.uncertainty."""
    from analysis.miou import miou_percent, resampled_miou
    from paper_tables.uncertainty import Bootstrap, add_uncertainty

    rng = np.random.default_rng(0)
    classes = ("a", "b", "c")
    cells = {}
    for run, shift in (("base", 0), ("cac", 3)):
        union = rng.integers(50, 100, (12, 3)).astype(float)
        inter = np.minimum(union, rng.integers(10, 40, (12, 3)) + shift).astype(float)
        inter[:, 2] = union[:, 2] = 0  # a class absent from the whole set
        folder = tmp_path / run
        folder.mkdir()
        np.savez(folder / "metrics_miou_areas.npz", intersect=inter, union=union, pred=union,
                 label=union, images=np.array([f"/data/im{i}.png" for i in range(12)]))
        estimate = dcl_mmseg.miou_from_areas(inter.sum(0), union.sum(0), union.sum(0),
                                             union.sum(0), classes)["mIoU"]
        assert miou_percent(inter.sum(0), union.sum(0)) == pytest.approx(estimate)
        (folder / "metrics_miou.json").write_text(json.dumps({"mIoU": estimate}))
        cells[run] = {"measured": estimate, "paper": None, "source": f"{run}/metrics_miou.json#mIoU"}
    names, values = resampled_miou(tmp_path / "cac/metrics_miou_areas.npz", 200, 0)
    assert names[0] == "im0.png" and values.shape == (200,) and np.isfinite(values).all()
    rows = [{"run": run, "split": "val", "paper_only": False, "cells": {"mIoU_val": dict(c)}}
            for run, c in cells.items()]
    gain = cells["cac"]["measured"] - cells["base"]["measured"]
    table = {"id": "cac_cityscapes", "notes": [], "rows": rows,
             "gains": [{"unit": "mIoU", "run": "cac", "baseline_run": "base",
                                      "split": "val",
                                      "cells": {"mIoU_val": {"measured": gain, "paper": 1.0}}}]}
    add_uncertainty([table], Bootstrap(tmp_path, resamples=200, seed=0))
    for row in rows:
        lo, hi = row["cells"]["mIoU_val"]["ci95"]
        assert lo < row["cells"]["mIoU_val"]["measured"] < hi
    g = table["gains"][0]["cells"]["mIoU_val"]
    assert g["ci95"][0] < gain < g["ci95"][1] and g["verdict"] in ("reproduced", "not reproduced",
                                                                    "inconclusive")


# ---------------------------------------------------------------- heads

def _tiny_model(config: str, num_classes: int = 3):
    init_default_scope("mmseg")
    cfg = Config.fromfile(str(CONFIGS / config))
    heads = cfg.model.decode_head
    for head in heads if isinstance(heads, list) else [heads]:
        head.num_classes = num_classes
        head.norm_cfg = dict(type="BN", requires_grad=True)
        head.pop("sampler", None)
        if "class_weight" in head.loss_decode:  # the 19 Cityscapes weights, for 3 classes here
            head.loss_decode.class_weight = [1.0, 2.0, 0.5]
        if "loss_cac" in head:
            head.loss_cac.threshold = 4  # a few pixels per class at 1/4 of 32x32
    cfg.model.backbone.norm_cfg = dict(type="BN", requires_grad=True)
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = (32, 32)
    return MODELS.build(cfg.model)


def _batch(size=32, classes=3):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    torch.manual_seed(0)
    samples = []
    for _ in range(2):
        label = torch.zeros(1, size, size, dtype=torch.int64)
        label[:, :, size // 3:] = 1
        label[:, size // 2:, :] = classes - 1
        label[:, :2, :2] = 255
        s = SegDataSample(gt_sem_seg=PixelData(data=label))
        s.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size)))
        samples.append(s)
    return torch.rand(2, 3, size, size), samples


@pytest.mark.parametrize("config", ["embedded/fcn_hr18s_embedded_cac.py",
                                    "cityscapes/ocrnet_hr48_4xb2-120k_cityscapes-512x1024_cac.py"])
def test_cac_heads_add_cac_and_the_weight_branch_ce_and_predict_logits_only(config, one_thread):
    model = _tiny_model(config)
    model.train()
    images, samples = _batch()
    losses = model.loss(images, samples)
    prefix = "decode." if "fcn" in config else "decode_1."
    assert {f"{prefix}loss_ce", f"{prefix}loss_ce_weight", f"{prefix}loss_cac"} <= set(losses)
    assert float(losses[f"{prefix}loss_cac"]) > 0
    head = model.decode_head if "fcn" in config else model.decode_head[1]
    # The weight branch sees detached features: its CE trains it and nothing upstream.
    model.zero_grad()
    losses[f"{prefix}loss_ce_weight"].backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.backbone.parameters())
    assert any(p.grad is not None and p.grad.any() for p in head.weight_branch.parameters())
    # CAC reaches the backbone through the projection head (not detached).
    model.zero_grad()
    losses[f"{prefix}loss_cac"].backward()
    assert any(p.grad is not None and p.grad.any() for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        out = model.predict(images, samples)
    assert out[0].seg_logits.data.shape == (3, 32, 32)


def test_the_weight_branch_ce_has_the_main_ces_class_weights_times_the_factor(one_thread):
    init_default_scope("mmseg")
    cfg = Config.fromfile(str(CONFIGS / "embedded/fcn_hr18s_embedded_cac.py")).model.decode_head
    cfg.update(num_classes=3, in_channels=[4, 4, 4, 4], channels=16, weight_branch_factor=2.0,
               norm_cfg=dict(type="BN", requires_grad=True))
    cfg.loss_decode.update(type="PixelMeanCrossEntropyLoss", class_weight=[1.0, 2.0, 0.5])
    head = MODELS.build(cfg)
    _, samples = _batch(8)
    logits = torch.randn(2, 3, 8, 8)
    losses = head._cac_loss_by_feat(logits, logits.clone(), torch.randn(2, 8, 8, 8), samples)
    assert torch.allclose(losses["loss_ce_weight"], 2.0 * losses["loss_ce"])


def test_pixel_mean_ce_is_the_official_class_weighted_mean_over_all_pixels():
    """mmseg 0.28's CE: sum of w_pixel * class_weight[y] * CE over non-ignored pixels, divided
    by every pixel of the batch; mmseg 1.2.2's own CE fails on the same input."""
    from mmseg.models.losses import CrossEntropyLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    label[0, 0, :] = 255
    ohem = (torch.rand(2, 4, 4) > 0.3).float()
    weights = [1.0, 2.0, 0.5]
    loss = dcl_mmseg.PixelMeanCrossEntropyLoss(class_weight=weights, loss_weight=0.4)
    expected = 0.0
    log_p = torch.log_softmax(logits, 1)
    for b, i, j in np.ndindex(2, 4, 4):
        y = int(label[b, i, j])
        if y != 255:
            expected += float(ohem[b, i, j]) * weights[y] * -float(log_p[b, y, i, j])
    assert float(loss(logits, label, weight=ohem)) == pytest.approx(0.4 * expected / 32, rel=1e-5)
    with pytest.raises(IndexError):
        CrossEntropyLoss(class_weight=weights)(logits, label, weight=ohem, ignore_index=255)
    with pytest.raises(ValueError, match="use_sigmoid"):
        dcl_mmseg.PixelMeanCrossEntropyLoss(use_sigmoid=True)


# ---------------------------------------------------------------- configs

def _plain(node):
    """A config node without mmengine's `_scope_` bookkeeping."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != "_scope_"}
    if isinstance(node, (list, tuple)):
        return type(node)(_plain(v) for v in node)
    return node


def _decode(cfg):
    heads = cfg.model.decode_head
    return [_plain(h) for h in (heads if isinstance(heads, list) else [heads])]


CAC_KEYS = {"type", "loss_cac", "proj_channels", "weight_branch_factor"}


@pytest.mark.parametrize("stem", ["fcn_hr48_4xb2-40k", "fcn_hr48_4xb2-120k", "ocrnet_hr48_4xb2-120k"])
def test_each_matched_baseline_differs_from_its_cac_config_by_the_loss_alone(stem):
    base = Config.fromfile(str(CONFIGS / f"cityscapes/{stem}_cityscapes-512x1024_baseline.py"))
    cac = Config.fromfile(str(CONFIGS / f"cityscapes/{stem}_cityscapes-512x1024_cac.py"))
    assert base.get("custom_hooks") in (None, []) and cac.custom_hooks == [
        dict(type="CACWarmupHook", start_iter=5000)]
    for key in set(base) | set(cac):
        if key not in ("model", "custom_hooks"):
            assert base.get(key) == cac.get(key), key
    b_heads, c_heads = _decode(base), _decode(cac)
    assert [h["type"] for h in c_heads][-1] in ("CACFCNHead", "CACOCRHead")
    for b, c in zip(b_heads, c_heads):
        assert {k: v for k, v in b.items() if k != "type"} == \
            {k: v for k, v in c.items() if k not in CAC_KEYS}
        assert len(c["loss_decode"]["class_weight"]) == 19 and c["sampler"]["min_kept"] == 131072
        assert c["loss_decode"]["type"] == "PixelMeanCrossEntropyLoss"
    assert {k: v for k, v in base.model.items() if k != "decode_head"} == \
        {k: v for k, v in cac.model.items() if k != "decode_head"}
    weight = 0.6 if stem.startswith("ocrnet") else 0.4
    assert c_heads[-1]["loss_cac"] == dict(type="CACLoss", loss_weight=weight, temperature=0.1)
    assert c_heads[-1]["weight_branch_factor"] == 1.5
    assert cac.train_dataloader.batch_size == 2 and cac.model.data_preprocessor.size == (512, 1024)
    iters = 40000 if "40k" in stem else 120000
    assert cac.train_cfg.max_iters == iters and cac.param_scheduler[0]["end"] == iters
    assert cac.param_scheduler[0]["eta_min"] == (1e-4 if iters == 40000 else 0)


def test_the_authors_baselines_differ_by_their_known_confounds():
    fcn = Config.fromfile(str(CONFIGS / "cityscapes/fcn_hr48_4xb2-40k_cityscapes-512x1024_baseline_official.py"))
    assert "class_weight" not in fcn.model.decode_head.loss_decode
    assert fcn.model.decode_head.sampler.type == "OHEMPixelSampler"
    ocr = Config.fromfile(str(CONFIGS / "cityscapes/ocrnet_hr48_4xb4-120k_cityscapes-512x1024_baseline_official.py"))
    matched = Config.fromfile(str(CONFIGS / "cityscapes/ocrnet_hr48_4xb2-120k_cityscapes-512x1024_baseline.py"))
    assert ocr.train_dataloader.batch_size == 4
    assert ocr.model == matched.model


# ---------------------------------------------------------------- data

def _coco_set(root: Path, name: str, images: int = 4, size: int = 64) -> tuple[Path, Path]:
    """A tiny COCO instance set: per image a big square (cat 1), a small one on top of it
    (cat 2, smaller area: it wins the overlap) and a crowd corner."""
    from PIL import Image

    folder = root / name
    folder.mkdir(parents=True)
    entries, anns = [], []
    rng = np.random.default_rng(0)
    for i in range(images):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"im{i}.jpg")
        entries.append({"id": i + 1, "file_name": f"im{i}.jpg", "width": size, "height": size})
        big = [4, 4, 44, 4, 44, 44, 4, 44]
        small = [20, 20, 36, 20, 36, 36, 20, 36]
        crowd = [56, 56, 63, 56, 63, 63, 56, 63]
        for j, (poly, cat, area, iscrowd) in enumerate([(big, 1, 1600, 0), (small, 2, 256, 0),
                                                        (crowd, 1, 49, 1)]):
            anns.append({"id": 10 * i + j + 1, "image_id": i + 1, "category_id": cat,
                         "segmentation": [poly], "area": area, "iscrowd": iscrowd,
                         "bbox": [poly[0], poly[1], poly[2] - poly[0], poly[5] - poly[1]]})
    json_file = root / f"{name}.json"
    json_file.write_text(json.dumps({"images": entries, "annotations": anns, "categories": [
        {"id": 1, "name": "thing"}, {"id": 2, "name": "part"}]}))
    return json_file, folder


def test_semantic_labels_follow_the_documented_rule(tmp_path):
    from PIL import Image

    from dcl_data.semantic_labels import build_semantic_set

    meta = build_semantic_set({"train": _coco_set(tmp_path, "train", 1)}, tmp_path / "sem")
    assert meta["classes"] == ["background", "thing", "part"] and meta["ignore_index"] == 255
    labels = np.array(Image.open(tmp_path / "sem/ann_dir/train/im0.png"))
    assert labels[0, 0] == 0 and labels[10, 10] == 1 and labels[28, 28] == 2 and labels[60, 60] == 255
    assert Image.open(tmp_path / "sem/img_dir/train/im0.png").size == (64, 64)


def test_semantic_labels_refuse_a_size_mismatch_in_one_line(tmp_path):
    from dcl_data.errors import DatasetError
    from dcl_data.semantic_labels import build_semantic_set

    json_file, images = _coco_set(tmp_path, "train", 1)
    data = json.loads(json_file.read_text())
    data["images"][0]["width"] = 65
    json_file.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="64x64 pixels, its JSON entry says 65x64"):
        build_semantic_set({"train": (json_file, images)}, tmp_path / "sem")
    assert not (tmp_path / "sem").exists()


# ---------------------------------------------------------------- short CPU train, resume, predict

def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env_path = ":".join([str(REPO), str(REPO / "baselines/mmdet"), str(MMSEG)])
    import os

    env = {**os.environ, "PYTHONPATH": env_path + ":" + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(MMSEG / script), *args], capture_output=True,
                          text=True, timeout=900, env=env, cwd=REPO)


@pytest.mark.slow
def test_short_cpu_train_resume_and_predict(tmp_path):
    """4 iterations of the embedded CAC config on 64x64 crops (warm-up over iterations 0-1),
    stopped after 2 and resumed: the resumed iterations train CAC at full weight (the hook does
    not re-zero a resumed run), and predict.py writes mmseg's mIoU over the set's classes."""
    from dcl_data.semantic_labels import build_semantic_set

    data = tmp_path / "sem"
    build_semantic_set({"train": _coco_set(tmp_path, "train"), "val": _coco_set(tmp_path, "val", 2)}, data)
    config = tmp_path / "tiny_cac.py"
    config.write_text(
        f"_base_ = '{CONFIGS / 'embedded/fcn_hr18s_embedded_cac.py'}'\n"
        "crop_size = (64, 64)\n"
        "model = dict(data_preprocessor=dict(size=crop_size),\n"
        "             decode_head=dict(loss_cac=dict(threshold=4)))\n"
        "train_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),\n"
        "                  dict(type='RandomCrop', crop_size=crop_size), dict(type='PackSegInputs')]\n"
        "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),\n"
        "                 dict(type='PackSegInputs')]\n"
        "train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n"
        "test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n"
        "custom_hooks = [dict(type='CACWarmupHook', start_iter=1)]\n"
        "default_hooks = dict(checkpoint=dict(interval=2), train_metrics=dict(interval=1),\n"
        "                     logger=dict(interval=1))\n")
    work = tmp_path / "run"
    common = ["--work-dir", str(work), "--data", str(data), "--cfg-options",
              "param_scheduler.0.end=4"]
    first = _run("train.py", str(config), *common[:4], "--cfg-options", "train_cfg.max_iters=2",
                 "param_scheduler.0.end=4")
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run("train.py", str(config), *common, "train_cfg.max_iters=4", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "CAC loss weight 0" in first.stdout + first.stderr
    assert "CAC loss weight 0" not in second.stdout + second.stderr  # resumed: not re-zeroed
    lines = [json.loads(line) for line in (work / "train_metrics.json").read_text().splitlines()]
    cac = {r["iteration"]: r["decode.loss_cac"] for r in lines}
    assert sorted(cac) == [0, 1, 2, 3]
    assert cac[0] == cac[1] == 0.0 and cac[2] > 0 and cac[3] > 0
    assert (work / "model_final.pth").is_file() and (work / "train_cost.json").is_file()
    out = tmp_path / "metrics_miou.json"
    pred = _run("predict.py", str(config), str(work / "model_final.pth"), "--data", str(data),
                "--metrics-out", str(out))
    assert pred.returncode == 0, pred.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert list(metrics["per_class"]) == ["background", "thing", "part"]
    assert metrics["num_images"] == 2 and 0 <= metrics["mIoU"] <= 100


def test_train_fails_in_one_line_on_a_folder_that_is_no_semantic_set(tmp_path):
    result = _run("train.py", str(CONFIGS / "embedded/fcn_hr18s_embedded_cac.py"),
                  "--work-dir", str(tmp_path / "w"), "--data", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: --data {tmp_path}: cannot read classes.json")


def test_train_refuses_a_missing_pretrained_file_in_one_line(tmp_path):
    from dcl_data.semantic_labels import build_semantic_set

    data = tmp_path / "sem"
    build_semantic_set({"train": _coco_set(tmp_path, "train", 1)}, data)
    result = _run("train.py", str(CONFIGS / "embedded/fcn_hr18s_embedded_cac.py"),
                  "--work-dir", str(tmp_path / "w"), "--data", str(data),
                  "--cfg-options", f"model.pretrained={tmp_path / 'nope.pth'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: pretrained weights not found: {tmp_path / 'nope.pth'} (put the file there, or "
        "set model.pretrained=None to train from scratch)")
