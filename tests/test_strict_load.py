"""Strict loading: a checkpoint whose keys do not fit the model stops with one line naming the
first missing and unexpected key, except what the recipe drops on purpose (listed in the log).
The rule (dcl_data.weights), detectron2's checkpointer wrapped by dcl_detectron2.checkpoint on
the paper configs' real models, the torchvision ResNet converter, and dcl_mmdet's pre-check."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcl_data.weights import CheckpointMismatch, check_fit, compare_state_dicts

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "baselines" / "detectron2" / "configs"
RESNET_TOOL = REPO / "baselines" / "detectron2" / "tools" / "convert_torchvision_resnet.py"
torch.set_num_threads(1)


# --- the rule ---------------------------------------------------------------------------------

def test_missing_in_scope_and_unexpected_are_named_in_one_line():
    with pytest.raises(CheckpointMismatch) as err:
        check_fit(["backbone.bottom_up.res2.0.conv1.weight", "backbone.bottom_up.stem.conv1.weight",
                   "roi_heads.box_head.fc1.weight"], ["fc1000.weight"], {},
                  scope="backbone.bottom_up.", source="R-50.pkl", hint="declare drops")
    assert str(err.value) == ("R-50.pkl does not fit the model: missing "
                              "'backbone.bottom_up.res2.0.conv1.weight' (+1 more); unexpected "
                              "'fc1000.weight' (declare drops)")


def test_drops_and_fresh_keys_are_reported_not_raised():
    shapes = {"roi_heads.box_predictor.cls_score.weight": ((81, 1024), (9, 1024))}
    report = check_fit(["roi_heads.box_predictor.cls_score.weight", "backbone.fpn_output2.weight"],
                       [], shapes, scope="backbone.bottom_up.",
                       dropped=["roi_heads.box_predictor."])
    assert report.dropped == ("roi_heads.box_predictor.cls_score.weight",) and report.fresh == 1
    assert "1 tensors dropped on purpose" in report.log_lines("coco.pkl", "")[0]


def test_shape_mismatch_outside_the_drops_is_an_error():
    with pytest.raises(CheckpointMismatch, match=r"shape of 'a\.weight': \(3,\) in the checkpoint, "
                                                 r"\(4,\) in the model$"):
        check_fit(["a.weight"], [], {"a.weight": ((3,), (4,))})


def test_compare_state_dicts_ignores_the_given_substrings():
    missing, unexpected, mismatch = compare_state_dicts(
        {"a": (1,), "bn.num_batches_tracked": (), "c": (2,)}, {"a": (2,), "fc.weight": (3,), "c": (2,)},
        ignore=("num_batches_tracked",))
    assert (missing, unexpected, mismatch) == ([], ["fc.weight"], {"a": ((2,), (1,))})


# --- detectron2 -------------------------------------------------------------------------------

d2 = pytest.importorskip("detectron2")
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from dcl_detectron2.checkpoint import enforce_strict_loading  # noqa: E402
from detectron2_inputs import project_cfg  # noqa: E402


def _model(config, *opts):
    cfg = project_cfg(config, *opts)
    return cfg, build_model(cfg)


def _load(cfg, model, path):
    checkpointer = enforce_strict_loading(DetectionCheckpointer(model), cfg)
    return checkpointer.load(str(path))


def test_coco_init_drops_the_class_specific_predictors_and_logs_them(tmp_path, caplog):
    # A "COCO model": the same architecture with 80 classes, saved as a model-zoo file would be.
    _, coco = _model(CONFIGS / "cityscapes/mask_rcnn_R_50_FPN.yaml", "MODEL.ROI_HEADS.NUM_CLASSES", "80")
    state = coco.state_dict()
    # (a published detector may record its iteration; its author marks it as not ours)
    torch.save({"model": state, "__author__": "test", "iteration": 269999}, tmp_path / "coco.pth")
    cfg, model = _model(CONFIGS / "cityscapes/mask_rcnn_R_50_FPN_coco_init_dcl.yaml",
                        "MODEL.ROI_HEADS.NUM_CLASSES", "8")
    with caplog.at_level(logging.INFO, logger="dcl_detectron2.checkpoint"):
        _load(cfg, model, tmp_path / "coco.pth")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "roi_heads.box_predictor.cls_score.weight" in logged
    assert "roi_heads.mask_head.predictor.weight" in logged
    assert "roi_heads.mask_head.contrast_loss." in logged  # DCL's projection starts fresh
    assert torch.equal(model.state_dict()["roi_heads.box_head.fc1.weight"],
                       state["roi_heads.box_head.fc1.weight"])

    # A backbone tensor gone from the file: one line naming it.
    del state["backbone.bottom_up.res3.0.conv2.weight"]
    state["roi_heads.extra.weight"] = torch.zeros(1)
    torch.save({"model": state, "__author__": "test"}, tmp_path / "broken.pth")
    with pytest.raises(SystemExit) as err:
        _load(cfg, model, tmp_path / "broken.pth")
    assert str(err.value) == (
        f"error: {tmp_path / 'broken.pth'} does not fit the model: missing "
        "'backbone.bottom_up.res3.0.conv2.weight'; unexpected 'roi_heads.extra.weight' "
        "(declare keys the recipe drops on purpose in MODEL.WEIGHTS_CHECK.DROPPED)")


def test_a_trained_checkpoint_must_fit_exactly(tmp_path):
    cfg, model = _model(CONFIGS / "cityscapes/mask_rcnn_R_50_FPN_coco_init.yaml",
                        "MODEL.ROI_HEADS.NUM_CLASSES", "8")
    state = model.state_dict()
    torch.save({"model": state, "iteration": 9}, tmp_path / "model_final.pth")
    _load(cfg, model, tmp_path / "model_final.pth")
    # The COCO-init drops do not excuse an incomplete model_final.pth.
    del state["roi_heads.box_predictor.cls_score.weight"]
    torch.save({"model": state, "iteration": 9}, tmp_path / "model_final.pth")
    with pytest.raises(SystemExit, match="missing 'roi_heads.box_predictor.cls_score.weight'"):
        _load(cfg, model, tmp_path / "model_final.pth")


def test_converted_torchvision_resnet_fills_sparseinsts_backbone(tmp_path):
    import torchvision

    src = tmp_path / "resnet50-test.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), src)
    out = tmp_path / "r50_d2.pth"
    result = subprocess.run([sys.executable, str(RESNET_TOOL), str(src), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    cfg, model = _model(CONFIGS / "coco/sparseinst_R_50.yaml")
    _load(cfg, model, out)  # scope "backbone.": every ResNet tensor is there
    ckpt = torch.load(out, weights_only=True)["model"]
    assert torch.equal(model.state_dict()["backbone.res4.5.conv3.norm.running_var"],
                       ckpt["backbone.res4.5.conv3.norm.running_var"])
    # The same file under the Mask R-CNN FPN's prefix does not fit SparseInst.
    out2 = tmp_path / "fpn_prefix.pth"
    subprocess.run([sys.executable, str(RESNET_TOOL), str(src), str(out2), "--prefix",
                    "backbone.bottom_up."], check=True, capture_output=True, timeout=300)
    with pytest.raises(SystemExit, match=r"missing 'backbone\.res2\.0\.conv1\.norm\.bias' .*"
                                         r"unexpected 'backbone\.bottom_up\."):
        _load(cfg, model, out2)


def test_resnet_converter_refuses_a_wrong_architecture(tmp_path):
    import torchvision

    src = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), src)
    result = subprocess.run([sys.executable, str(RESNET_TOOL), str(src), str(tmp_path / "o.pth")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and not (tmp_path / "o.pth").exists()
    assert result.stderr.startswith("error: not a torchvision resnet50 state dict")
    assert result.stderr.count("\n") == 1


# --- mmdetection ------------------------------------------------------------------------------

def _mmdet_backbone(checkpoint):
    return dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True, style="pytorch",
                init_cfg=dict(type="Pretrained", checkpoint=str(checkpoint)))


def test_mmdet_pretrained_backbone_is_checked_before_training(tmp_path):
    pytest.importorskip("mmdet")
    import torchvision

    from dcl_mmdet.checkpoint import check_weights_fit
    from dcl_mmdet.runner_setup import CliError

    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, tmp_path / "r18.pth")
    lines = check_weights_fit({"backbone": _mmdet_backbone(tmp_path / "r18.pth")})
    assert len(lines) == 1 and "fc.bias, fc.weight" in lines[0]  # the classifier, dropped
    del state["layer2.0.downsample.1.running_mean"]
    state["layer9.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CliError, match=r"bad\.pth \(model\.backbone\.init_cfg\) does not fit the "
                                       r"model: missing 'layer2\.0\.downsample\.1\.running_mean'; "
                                       r"unexpected 'layer9\.weight'$"):
        check_weights_fit({"backbone": _mmdet_backbone(tmp_path / "bad.pth")})


def test_msra_caffe2_weights_are_refused_for_sparseinsts_rgb_resnet(tmp_path):
    import pickle

    import numpy as np

    # MSRA's R-50.pkl is a Caffe2 blob dict; its names fit any detectron2 ResNet after
    # detectron2's renaming, so only the convention check tells SparseInst was given it.
    with open(tmp_path / "R-50.pkl", "wb") as fh:
        pickle.dump({"conv1_w": np.zeros((64, 3, 7, 7), np.float32)}, fh)
    cfg, model = _model(CONFIGS / "coco/sparseinst_R_50.yaml")
    with pytest.raises(SystemExit, match=r"R-50\.pkl: MSRA's Caffe2 ResNet weights need "
                                         r"INPUT\.FORMAT BGR and MODEL\.RESNETS\.STRIDE_IN_1X1 "
                                         r"True, but this config has RGB and False"):
        _load(cfg, model, tmp_path / "R-50.pkl")
