"""ContrastMask on mmdetection 3 (dcl_mmdet.contrastmask): configs, the partially-supervised data
pipeline, a training step's losses and where their gradients go, the CAM plumbing, the epoch
ramp hook, and (slow) a short CPU train, resume and predict on the embedded data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MMDET_DIR = REPO / "baselines" / "mmdet"
CONFIGS = MMDET_DIR / "configs"
EMBEDDED = CONFIGS / "embedded" / "contrastmask_r18_fpn.py"

pytest.importorskip("mmcv")

sys.path.insert(0, str(MMDET_DIR))  # dcl_mmdet without an installed copy, as the scripts do
from mmengine.config import Config  # noqa: E402
from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

import dcl_mmdet  # noqa: E402,F401  (registers the modules)
from dcl_core import ContrastMaskLoss, ContrastMaskSettings  # noqa: E402
from dcl_mmdet.contrastmask import ContrastMaskHead, ContrastRampHook  # noqa: E402

register_all_modules()


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize("name, novel, epochs, steps, times", [
    ("contrastmask_r50_fpn_1x_nonvoc2voc", "voc", 12, [8, 11], None),
    ("contrastmask_r50_fpn_1x_voc2nonvoc", "nonvoc", 12, [8, 11], None),
    ("contrastmask_r50_fpn_3x_nonvoc2voc", "voc", 12, [9, 11], 3),
    ("contrastmask_r50_fpn_3x_voc2nonvoc", "nonvoc", 12, [9, 11], 3),
    ("contrastmask_x50_fpn_3x_voc2nonvoc", "nonvoc", 12, [9, 11], 3),
    ("contrastmask_x101_fpn_3x_nonvoc2voc", "voc", 12, [9, 11], 3),
])
def test_coco_configs_follow_the_official_schedule_and_split(name, novel, epochs, steps, times):
    cfg = Config.fromfile(str(CONFIGS / "coco" / f"{name}.py"))
    data = cfg.train_dataloader.dataset
    if times:  # the official 3x: RepeatDataset(times=3), 12 runner epochs, steps 9 and 11
        assert data.type == "RepeatDataset" and data.times == times
        data = data.dataset
    assert data.type == "CocoPartialDataset" and data.novel == novel
    assert cfg.train_cfg.max_epochs == epochs and cfg.param_scheduler[1].milestones == steps
    assert cfg.param_scheduler[0].end == 500 and cfg.param_scheduler[0].start_factor == 0.001
    assert cfg.optim_wrapper.optimizer.lr == 0.02 and cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16  # 8 GPUs x 2 images
    assert {"type": "ContrastRampHook", "period": 1, "by_epoch": True} in cfg.custom_hooks
    head = cfg.model.roi_head
    assert head.type == "ContrastMaskRoIHead" and head.mask_train_rois == "base_gt"
    assert head.contrast_roi_extractor.roi_layer.output_size == 28
    assert head.contrast_roi_extractor.roi_layer.sampling_ratio == 0
    assert cfg.model.train_cfg.rcnn.sampler.add_gt_as_proposals
    assert cfg.model.train_cfg.rcnn.sampler.num == 512
    init = cfg.model.backbone.init_cfg
    assert init.type == "Pretrained" and "://" not in init.checkpoint  # a local file
    assert (cfg.model.backbone.type == "ResNeXt") == name.startswith("contrastmask_x")


def test_r50_config_builds_the_official_heads():
    cfg = Config.fromfile(str(CONFIGS / "coco" / "contrastmask_r50_fpn_1x_nonvoc2voc.py"))
    roi = MODELS.build({**cfg.model.roi_head, "train_cfg": cfg.model.train_cfg.rcnn,
                        "test_cfg": cfg.model.test_cfg.rcnn})
    box = roi.bbox_head
    assert (len(box.shared_convs), len(box.cls_convs), len(box.reg_convs)) == (4, 1, 2)
    assert not box.shared_fcs and not box.cls_fcs and box.with_avg_pool
    assert box.fc_cls.in_features == 256 and box.num_classes == 80
    head = roi.mask_head
    assert isinstance(head, ContrastMaskHead) and head.class_agnostic
    assert head.conv_logits.out_channels == 1 and len(head.convs) == 4
    loss = head.contrast_loss
    assert isinstance(loss, ContrastMaskLoss) and loss.settings == ContrastMaskSettings()
    assert loss.channels == 256 and len([m for m in loss.encoder if isinstance(m, torch.nn.Conv2d)]) == 8
    assert (head.fuseconv.in_channels, head.fuseconv.out_channels) == (256, 256)


def test_dcl_is_refused_on_the_contrastmask_head_but_loss_none_is_accepted():
    with pytest.raises(ValueError, match="not wired to this head"):
        ContrastMaskHead(num_classes=2, loss_contrast=dict(loss_weight=1.0))
    head = ContrastMaskHead(num_classes=2, loss_contrast=dict(loss_weight=0.0),
                            loss_contrastmask=dict(embed_channels=16, num_encoder_convs=1))
    assert head.contrast_loss is not None  # --loss none turns DCL off, never ContrastMask's loss
    assert ContrastMaskHead(num_classes=2, loss_contrastmask=dict(loss_weight=0)).contrast_loss is None
    with pytest.raises(ValueError, match="loss_contrastmask: unknown key"):
        ContrastMaskHead(num_classes=2, loss_contrastmask=dict(weight=0.1))


# ---------------------------------------------------------------- data
def test_partial_dataset_flags_novel_instances_through_the_pipeline(tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 24)).save(tmp_path / "a.png")
    square = [[2, 2, 12, 2, 12, 12, 2, 12]]
    coco = {"images": [{"id": 1, "file_name": "a.png", "height": 24, "width": 32}],
            "categories": [{"id": 3, "name": "person"}, {"id": 9, "name": "nucleus"},
                           {"id": 4, "name": "sofa"}],
            "annotations": [
                {"id": i + 1, "image_id": 1, "category_id": c, "segmentation": square,
                 "area": 100.0, "bbox": [2, 2, 10, 10], "iscrowd": 0}
                for i, c in enumerate((9, 3, 4, 9))]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    pipeline = [dict(type="LoadImageFromFile"),
                dict(type="LoadPartialAnnotations", with_bbox=True, with_mask=True),
                dict(type="PackPartialInputs")]
    common = dict(ann_file=str(tmp_path / "a.json"), data_prefix=dict(img=str(tmp_path) + "/"),
                  metainfo=dict(classes=("person", "nucleus", "sofa")), pipeline=pipeline)
    for novel, flags in (("nonvoc", [True, False, False, True]), ("voc", [False, True, True, False])):
        ds = DATASETS.build(dict(type="CocoPartialDataset", novel=novel, **common))
        gt = ds[0]["data_samples"].gt_instances
        assert gt.is_novel.tolist() == flags and gt.labels.tolist() == [1, 0, 2, 1]
        assert ds.novel_labels == [i for i, c in enumerate(("person", "nucleus", "sofa"))
                                   if (c == "nucleus") == (novel == "nonvoc")]
    with pytest.raises(KeyError, match="use the CocoPartialDataset"):
        DATASETS.build(dict(type="CocoDataset", **common))[0]
    with pytest.raises(ValueError, match="unknown category split 'all'"):
        DATASETS.build(dict(type="CocoPartialDataset", novel="all", **common))


# ---------------------------------------------------------------- a training step
def build_model(config=EMBEDDED, num_classes=3, **roi_head):
    cfg = Config.fromfile(str(config))
    cfg.model.roi_head.bbox_head.num_classes = num_classes
    cfg.model.roi_head.mask_head.num_classes = num_classes
    for key, value in roi_head.items():
        if isinstance(value, dict):
            cfg.model.roi_head[key].update(value)
        else:
            cfg.model.roi_head[key] = value
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def synthetic_batch(is_novel=(False, True)):
    """RefineMask's test batch (one image, two bright discs of classes 0 and 1, labelled 0 and
    2 here), its instances flagged as given."""
    from test_mmdet_refinemask import synthetic_batch as discs

    batch = discs()
    gt = batch["data_samples"][0].gt_instances
    gt.labels = torch.tensor([0, 2])
    gt.is_novel = torch.tensor(is_novel)
    return batch


def losses_of(model, batch):
    model.train()
    data = model.data_preprocessor(batch, training=True)
    return model(**data, mode="loss")


def _grad(param):
    return 0.0 if param.grad is None else float(param.grad.abs().sum())


def test_training_step_losses_and_where_their_gradients_go():
    model = build_model()
    losses = losses_of(model, synthetic_batch())
    for key in ("loss_cls", "loss_bbox", "loss_mask", "loss_contrast"):
        assert torch.isfinite(losses[key]) and float(losses[key]) > 0, key
    roi = model.roi_head
    contrast = roi.mask_head.contrast_loss
    assert contrast.last_num_valid >= 1  # the gt-box RoIs at least are kept
    # The contrastive loss reaches its own head only: the RoI features are detached.
    model.zero_grad()
    losses["loss_contrast"].backward(retain_graph=True)
    assert _grad(contrast.encoder[0].weight) > 0 and _grad(contrast.projector[-1].weight) > 0
    assert all(_grad(p) == 0 for p in model.neck.parameters())
    assert all(_grad(p) == 0 for p in model.backbone.parameters())
    assert _grad(roi.mask_head.conv_logits.weight) == 0
    # The mask loss trains the mask head, the fused contrastive branch and, through the CAM,
    # the box head's classification convs, but never the classifier whose weights make the CAM.
    model.zero_grad()
    losses["loss_mask"].backward()
    assert _grad(roi.mask_head.conv_logits.weight) > 0 and _grad(roi.mask_head.fuseconv.weight) > 0
    assert _grad(contrast.encoder[0].weight) > 0
    assert _grad(roi.bbox_head.cls_convs[0].conv.weight) > 0
    assert _grad(roi.bbox_head.fc_cls.weight) == 0
    assert _grad(roi.bbox_head.reg_convs[0].conv.weight) == 0


def test_mask_bce_only_on_base_ground_truth_box_rois():
    all_novel = losses_of(build_model(), synthetic_batch(is_novel=(True, True)))
    assert float(all_novel["loss_mask"]) == 0.0  # novel masks never reach the BCE
    assert float(all_novel["loss_contrast"]) > 0  # novel RoIs still feed the contrastive loss
    base = losses_of(build_model(), synthetic_batch(is_novel=(False, False)))
    one = losses_of(build_model(), synthetic_batch(is_novel=(False, True)))
    assert float(base["loss_mask"]) > 0 and float(one["loss_mask"]) > 0
    # 'base' trains every positive base RoI (more of them than the two gt boxes): another loss.
    every = losses_of(build_model(mask_train_rois="base"), synthetic_batch(is_novel=(False, True)))
    assert float(every["loss_mask"]) != pytest.approx(float(one["loss_mask"]))
    with pytest.raises(ValueError, match="mask_train_rois must be one of"):
        build_model(mask_train_rois="all")


def test_missing_is_novel_is_one_clear_error():
    batch = synthetic_batch()
    del batch["data_samples"][0].gt_instances.is_novel
    with pytest.raises(KeyError, match="gt_instances have no 'is_novel'"):
        losses_of(build_model(), batch)


def test_without_the_contrastive_loss_the_branch_is_not_built():
    model = build_model(mask_head=dict(loss_contrastmask=dict(loss_weight=0)))
    assert model.roi_head.contrast_roi_extractor is None and model.roi_head.mask_head.fuseconv is None
    losses = losses_of(model, synthetic_batch())
    assert "loss_contrast" not in losses and float(losses["loss_mask"]) > 0


# ---------------------------------------------------------------- prediction and the CAM
def test_detections_keep_the_proposal_they_came_from():
    from mmengine.config import ConfigDict

    head = build_model().roi_head.bbox_head
    rois = torch.tensor([[0, 0, 0, 10, 10], [0, 20, 20, 40, 40], [0, 50, 5, 70, 30.0]])
    cls = torch.full((3, 4), -10.0)
    cls[0, 1], cls[2, 2], cls[2, 0], cls[1, 3] = 10.0, 10.0, 9.0, 10.0  # roi 1: background
    reg = torch.zeros(3, 12)
    cfg = ConfigDict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100)
    (res,) = head.predict_by_feat((rois,), (cls,), (reg,), [dict(img_shape=(80, 80))],
                                  rcnn_test_cfg=cfg)
    pairs = sorted(zip(res.roi_index.tolist(), res.labels.tolist()))
    assert pairs == [(0, 1), (2, 0), (2, 2)]
    assert torch.equal(res.bboxes[res.roi_index == 0][0], rois[0, 1:])


def test_prediction_pastes_class_agnostic_masks_at_the_original_size():
    model = build_model().eval()
    with torch.no_grad():
        data = model.data_preprocessor(synthetic_batch(), training=False)
        (result,) = model(**data, mode="predict")
    pred = result.pred_instances
    assert set(pred.keys()) == {"bboxes", "labels", "scores", "masks"}  # no helper fields left
    assert pred.masks.dtype == torch.bool and tuple(pred.masks.shape[1:]) == (96, 128)
    assert len(pred.masks) == len(pred.bboxes) > 0


# ---------------------------------------------------------------- the epoch ramp
def test_ramp_hook_sets_the_official_weights_and_needs_no_state_to_resume():
    model = build_model()
    loss = model.roi_head.mask_head.contrast_loss

    def weight(hook, epoch=0, it=0):
        hook.before_train_iter(SimpleNamespace(model=model, epoch=epoch, iter=it), 0)
        return loss.epoch_weight

    by_epoch = ContrastRampHook()
    assert [weight(by_epoch, e) for e in range(6)] == [0.25, 0.25, 0.5, 0.75, 1.0, 1.0]
    # 3x as 36 plain epochs would ramp on coco_epoch // 3 (period 3).
    assert [weight(ContrastRampHook(period=3), e) for e in (0, 5, 6, 9, 12)] == [0.25, 0.25, 0.5, 0.75, 1.0]
    by_iter = ContrastRampHook(period=16, by_epoch=False)
    assert [weight(by_iter, it=i) for i in (0, 31, 32, 48, 64, 199)] == [0.25, 0.25, 0.5, 0.75, 1.0, 1.0]
    # A resumed run builds a fresh hook and model: the weight follows the restored counters.
    fresh = build_model()
    ContrastRampHook(period=16, by_epoch=False).before_train_iter(
        SimpleNamespace(model=fresh, epoch=0, iter=40), 0)
    assert fresh.roi_head.mask_head.contrast_loss.epoch_weight == 0.5
    with pytest.raises(ValueError, match="period must be an integer >= 1"):
        ContrastRampHook(period=0)
    with pytest.raises(AttributeError, match="not a ContrastMaskHead"):
        ContrastRampHook().before_train_iter(SimpleNamespace(model=torch.nn.Linear(1, 1), epoch=0, iter=0), 0)


# ---------------------------------------------------------------- scripts, end to end
@pytest.mark.slow
def test_train_resume_predict_and_novel_scoring_on_the_embedded_data(tmp_path, embedded_dataset):
    from analysis.coco_eval import evaluate_segm
    from analysis.subset import restrict_to_subset
    from dcl_data.coco_subsets import make_novel_split
    from test_mmdet_refinemask import run_script

    train_json = embedded_dataset / "annotations" / "instances_train.json"
    val_json = embedded_dataset / "annotations" / "instances_val.json"
    work = tmp_path / "run"
    common = [MMDET_DIR / "train.py", EMBEDDED, "--work-dir", work, "--loss", "none",
              "--train-data", f"{train_json}:{embedded_dataset / 'train'}",
              "--val-data", f"{val_json}:{embedded_dataset / 'val'}"]
    small = ["default_hooks.checkpoint.interval=2"]
    first = run_script(*common, "--cfg-options", "train_cfg.max_iters=2", *small)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / "model_final.pth").is_file()
    second = run_script(*common, "--resume", "--cfg-options", "train_cfg.max_iters=4", *small)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed" in (second.stdout + second.stderr).lower()
    final = torch.load(work / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["meta"]["iter"] == 4
    assert any(k.startswith("roi_head.mask_head.contrast_loss.encoder") for k in final["state_dict"])
    lines = [json.loads(x) for x in (work / "train_metrics.json").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [1, 3]
    assert all(np.isfinite(x["loss_contrast"]) and np.isfinite(x["loss_mask"]) for x in lines)

    out = tmp_path / "predictions.json"
    pred = run_script(MMDET_DIR / "predict.py", EMBEDDED, work / "model_final.pth",
                      "--val-data", f"{val_json}:{embedded_dataset / 'val'}",
                      "--predictions-out", out, "--loss", "none")
    assert pred.returncode == 0, pred.stderr[-3000:]
    results = json.loads(out.read_text())
    gt = json.loads(val_json.read_text())
    sizes = {im["id"]: [im["height"], im["width"]] for im in gt["images"]}
    for r in results:
        assert r["segmentation"]["size"] == sizes[r["image_id"]]
    # Scored on the novel (non-VOC) categories of val, as the workflow does.
    make_novel_split(val_json, tmp_path / "nonvoc.json", "nonvoc")
    kept = restrict_to_subset(results, tmp_path / "nonvoc.json")
    stats = evaluate_segm(tmp_path / "nonvoc.json", kept).stats
    assert 0.0 <= stats["AP"] <= 100.0
