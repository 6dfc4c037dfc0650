"""Swin Transformer backbone for detectron2 (paper Table 7): stage shapes and strides on odd
image sizes, config keys and errors, freezing, the weight converter, AdamW, a Mask R-CNN Swin
train step with DCL, and (slow) a real train + predict through train_net.py."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling import build_backbone, build_model  # noqa: E402
from detectron2.structures import ImageList  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from dcl_detectron2 import add_swin_config  # noqa: E402
from dcl_detectron2.swin import SwinTransformerBackbone  # noqa: E402

from detectron2_inputs import batch, project_cfg  # noqa: E402
from test_detectron2_adapter import DCL  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "baselines" / "detectron2" / "configs"
EMBEDDED = CONFIGS / "embedded" / "mask_rcnn_swin_T_FPN.yaml"
COCO = CONFIGS / "coco" / "mask_rcnn_swin_T_FPN_1x.yaml"
COCO_DCL = CONFIGS / "coco" / "mask_rcnn_swin_T_FPN_1x_dcl.yaml"
CONVERTER = REPO / "baselines" / "detectron2" / "tools" / "convert_torchvision_swin.py"
# A Swin small enough for quick CPU tests: 1 block per stage.
TINY = ["MODEL.SWIN.DEPTHS", "[1, 1, 1, 1]", "MODEL.SWIN.DROP_PATH_RATE", "0.0"]


def make_cfg(*opts, config=EMBEDDED):
    return project_cfg(config, *opts)


def _load_script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the backbone ------------------------------------------------------------------------------

def test_swin_t_defaults_give_the_papers_strides_and_channels():
    backbone = SwinTransformerBackbone()
    shapes = backbone.output_shape()
    assert {k: (s.channels, s.stride) for k, s in shapes.items()} == {
        "res2": (96, 4), "res3": (192, 8), "res4": (384, 16), "res5": (768, 32)}
    assert backbone.size_divisibility == 32
    # torchvision's swin_t without its classifier (27.5M of its 28.3M parameters) plus the
    # four output norms.
    assert sum(p.numel() for p in backbone.parameters()) == pytest.approx(27.52e6, rel=1e-3)


@pytest.mark.parametrize("height, width", [(97, 131), (33, 65), (64, 64), (5, 3)])
def test_stage_outputs_are_nchw_with_ceil_sizes_for_odd_images(height, width):
    torch.manual_seed(0)
    backbone = SwinTransformerBackbone(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8),
                                       drop_path_rate=0.0).eval()
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, height, width))
    assert list(out) == ["res2", "res3", "res4", "res5"]
    for name, spec in backbone.output_shape().items():
        s = spec.stride
        assert out[name].shape == (2, spec.channels, math.ceil(height / s), math.ceil(width / s))
        assert out[name].is_contiguous() and torch.isfinite(out[name]).all()


def test_fpn_backbone_pads_batches_to_32_and_keeps_exact_strides():
    cfg = make_cfg(*TINY)
    backbone = build_backbone(cfg, ShapeSpec(channels=3)).eval()
    assert backbone.size_divisibility == 32
    images = ImageList.from_tensors([torch.randn(3, 97, 131), torch.randn(3, 70, 50)],
                                    backbone.size_divisibility)
    assert tuple(images.tensor.shape[-2:]) == (128, 160)
    with torch.no_grad():
        out = backbone(images.tensor)
    assert {k: tuple(v.shape[-2:]) for k, v in out.items()} == {
        "p2": (32, 40), "p3": (16, 20), "p4": (8, 10), "p5": (4, 5), "p6": (2, 3)}
    assert all(v.shape[1] == cfg.MODEL.FPN.OUT_CHANNELS for v in out.values())


def test_out_features_subset_and_freeze_at():
    backbone = SwinTransformerBackbone(embed_dim=24, depths=(1, 1, 1), num_heads=(1, 2, 4),
                                       out_features=("res3",), freeze_at=2)
    assert list(backbone.output_shape()) == ["res3"]
    assert backbone.size_divisibility == 16
    out = backbone(torch.randn(1, 3, 40, 40))
    assert list(out) == ["res3"] and out["res3"].shape == (1, 48, 5, 5)
    trainable = [any(p.requires_grad for p in m.parameters()) for m in backbone.features]
    # [patch embedding, res2 blocks, merging, res3 blocks, merging, res4 blocks]
    assert trainable == [False, False, True, True, True, True]
    backbone.train()
    assert [m.training for m in backbone.features] == [False, False, True, True, True, True]
    assert all(p.requires_grad for p in SwinTransformerBackbone(
        embed_dim=24, depths=(1, 1), num_heads=(1, 2), out_features=("res3",)).parameters())


@pytest.mark.parametrize("kwargs, needle", [
    ({"num_heads": (5, 6, 12, 24)}, "96 channels, not divisible by its 5 heads"),
    ({"depths": (2, 2, 2)}, "one entry per stage"),
    ({"out_features": ("res6",)}, "OUT_FEATURES must be a non-empty subset"),
    ({"out_features": ()}, "OUT_FEATURES must be a non-empty subset"),
    ({"freeze_at": 6}, "FREEZE_AT must be in 0..5"),
    ({"drop_path_rate": 1.0}, "DROP_PATH_RATE must be in"),
    ({"window_size": 0}, "sizes must be positive"),
    ({"depths": (1,), "num_heads": (3,), "out_features": ("res2",)}, "at least 2 blocks"),
])
def test_bad_sizes_are_one_line_errors(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        SwinTransformerBackbone(**kwargs)


def test_non_image_input_is_rejected():
    with pytest.raises(ValueError, match=r"expects images \[N, 3, H, W\]"):
        SwinTransformerBackbone(embed_dim=24, depths=(2,), num_heads=(1,),
                                out_features=("res2",))(torch.randn(3, 32, 32))


# --- configs -----------------------------------------------------------------------------------

def test_add_swin_config_defaults_are_swin_t():
    cfg = add_swin_config(get_cfg())
    node = cfg.MODEL.SWIN
    assert (node.EMBED_DIM, node.DEPTHS, node.NUM_HEADS, node.WINDOW_SIZE) == \
        (96, [2, 2, 6, 2], [3, 6, 12, 24], 7)
    assert node.DROP_PATH_RATE == 0.2 and node.OUT_FEATURES == ["res2", "res3", "res4", "res5"]
    assert cfg.SOLVER.OPTIMIZER == "SGD"
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    cfg.MODEL.pop("SWIN")
    assert add_swin_config(cfg).SOLVER.OPTIMIZER == "ADAMW"  # an existing key is kept


def test_coco_configs_follow_the_swin_recipe_and_authors_lambda():
    cfg = make_cfg(config=COCO)
    assert cfg.MODEL.BACKBONE.NAME == "build_swin_t_fpn_backbone"
    solver = cfg.SOLVER
    assert (solver.OPTIMIZER, solver.BASE_LR, solver.WEIGHT_DECAY) == ("ADAMW", 1e-4, 0.05)
    assert (solver.IMS_PER_BATCH, solver.MAX_ITER, solver.STEPS) == (16, 90000, (60000, 80000))
    assert cfg.INPUT.FORMAT == "RGB" and cfg.MODEL.BACKBONE.FREEZE_AT == 0
    dcl = make_cfg(config=COCO_DCL)
    assert dcl.MODEL.ROI_MASK_HEAD.NAME == "ContrastConvUpsampleHead"
    assert dcl.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT == 0.1


def test_coco_swin_t_model_builds_with_swin_t_shapes():
    model = build_model(make_cfg(config=COCO))
    shapes = model.backbone.bottom_up.output_shape()
    assert [s.channels for s in shapes.values()] == [96, 192, 384, 768]


# --- weights -----------------------------------------------------------------------------------

def test_converted_torchvision_weights_load_into_the_backbone(tmp_path):
    import torchvision

    torch.manual_seed(0)
    source = torchvision.models.swin_t(weights=None).state_dict()
    src = tmp_path / "swin_t.pth"
    torch.save(source, src)
    out = tmp_path / "swin_t_d2.pth"
    assert _load_script(CONVERTER, "convert_torchvision_swin").main([str(src), str(out)]) == 0

    torch.manual_seed(1)  # a different init, so equality below comes from loading
    model = build_model(make_cfg("MODEL.WEIGHTS", str(out), config=COCO))
    DetectionCheckpointer(model).resume_or_load(str(out), resume=False)
    loaded = model.backbone.bottom_up.state_dict()
    for key, value in source.items():
        if key.startswith("features."):
            assert torch.equal(loaded[key], value), key
    assert not any(k.startswith(("backbone.bottom_up.norm.", "backbone.bottom_up.head."))
                   for k in torch.load(out, weights_only=True)["model"])


def test_converter_rejects_other_architectures_and_bad_files(tmp_path, capsys):
    import torchvision

    conv = _load_script(CONVERTER, "convert_torchvision_swin")
    small = torchvision.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=48, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
        window_size=[7, 7]).state_dict()
    with pytest.raises(conv.ConversionError, match="shape .* but swin_t has"):
        conv.convert(small)
    with pytest.raises(conv.ConversionError, match="not a torchvision swin_t state dict"):
        conv.convert({k: v for k, v in small.items() if k != "head.bias"})
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    assert conv.main([str(garbage), str(tmp_path / "o.pth")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "garbage.pth: not a readable PyTorch checkpoint" in err
    assert err.count("\n") == 1 and not (tmp_path / "o.pth").exists()


# --- optimizer ---------------------------------------------------------------------------------

def test_adamw_skips_decay_on_norms_and_relative_position_bias():
    from dcl_detectron2.engine import Trainer as trainer

    model = build_model(make_cfg(*TINY))
    opt = trainer.build_optimizer(make_cfg(*TINY), model)
    assert isinstance(opt, torch.optim.AdamW)
    assert {g["lr"] for g in opt.param_groups} == {2e-4}
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    norms = [p for m in model.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm))
             for p in m.parameters()]
    tables = [p for n, p in model.named_parameters() if n.endswith("relative_position_bias_table")]
    assert len(tables) == 4 and len(norms) > 20
    assert all(decay[id(p)] == 0.0 for p in norms + tables)
    others = [p for p in model.parameters() if all(p is not q for q in norms + tables)]
    assert {decay[id(p)] for p in others} == {0.05}
    assert isinstance(trainer.build_optimizer(make_cfg(*TINY, "SOLVER.OPTIMIZER", "SGD"), model),
                      torch.optim.SGD)
    with pytest.raises(SystemExit, match="SOLVER.OPTIMIZER must be SGD or ADAMW"):
        trainer.build_optimizer(make_cfg(*TINY, "SOLVER.OPTIMIZER", "LAMB"), model)


# --- Mask R-CNN Swin + DCL ---------------------------------------------------------------------

def test_train_step_with_dcl_back_propagates_into_the_swin_backbone():
    torch.manual_seed(0)
    model = build_model(make_cfg(*DCL)).train()
    assert type(model.roi_heads).__name__ == "ContrastRoIHeads"
    body = model.backbone.bottom_up.features
    watched = [body[0][0].weight, body[-1][-1].mlp[0].weight]  # patch embedding, last block
    with EventStorage(0) as storage:
        losses = model(batch(2, size=100))  # 100: not a multiple of 32
        contrast = losses["loss_contrast"]
        grads = torch.autograd.grad(contrast, watched, retain_graph=True)
        sum(losses.values()).backward()
    assert torch.isfinite(contrast) and contrast > 0
    assert storage.latest()["contrast/num_valid_rois"][0] >= 1
    # The contrastive loss alone reaches the transformer's first and last stages.
    assert all(g.abs().sum() > 0 for g in grads)
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(p.grad is not None for p in watched)


# --- end to end through train_net.py (slow) ----------------------------------------------------

@pytest.mark.slow
def test_embedded_swin_trains_resumes_and_predicts_through_train_net(train_resume_predict):
    from analysis.coco_eval import evaluate_segm

    results, gt_file = train_resume_predict(EMBEDDED, *DCL)
    assert isinstance(results[0]["segmentation"]["counts"], str) and len(results[0]["bbox"]) == 4
    assert 0.0 <= evaluate_segm(gt_file, results).stats["AP"] <= 100.0
