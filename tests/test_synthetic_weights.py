"""Stand-in pretrained files (dcl_detectron2.synthetic_weights) are in the real formats (the
real loaders read them strictly, through the paper configs) and behave like trained weights
under FrozenBN: every stage's output stays normalised, where random weights with default
statistics blow up with depth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from dcl_detectron2.checkpoint import enforce_strict_loading  # noqa: E402
from dcl_data.preflight_sets import sample_images  # noqa: E402
from dcl_detectron2.synthetic_weights import write  # noqa: E402
from detectron2_inputs import project_cfg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "baselines" / "detectron2" / "configs"
TOOLS = REPO / "baselines" / "detectron2" / "tools"
torch.set_num_threads(1)


def _load(config, path, *opts):
    cfg = project_cfg(config, *opts)
    model = build_model(cfg)
    enforce_strict_loading(DetectionCheckpointer(model), cfg).load(str(path))
    return cfg, model


@torch.no_grad()
def _stage_std(model, cfg):
    """Std of every ResNet stage's output on two images the preflight could train on (drawn as
    its generated datasets draw theirs, another seed than the estimation's)."""
    rgb = torch.from_numpy(sample_images(2, 480, 640, seed=11)).permute(0, 3, 1, 2).float()
    image = rgb if cfg.INPUT.FORMAT == "RGB" else rgb.flip(1)
    x = (image - model.pixel_mean.cpu()[None]) / model.pixel_std.cpu()[None]
    bottom_up = getattr(model.backbone, "bottom_up", model.backbone)
    return {k: float(v.std()) for k, v in bottom_up(x).items()}


# A trained ResNet keeps every stage's output near unit scale on its own kind of images. Stand-ins
# estimated on i.i.d. pixel noise (the first version) measured res5 std 8.4 on these images.
_NORMALISED = (0.2, 4.0)


def test_msra_stand_in_loads_into_mask_rcnn_and_keeps_every_stage_normalised(tmp_path):
    path = write("detectron2_msra_pkl", tmp_path / "R-50.pkl")
    cfg, model = _load(CONFIGS / "cityscapes/mask_rcnn_R_50_FPN.yaml", path)
    std = _stage_std(model, cfg)
    assert set(std) == {"res2", "res3", "res4", "res5"}
    assert all(_NORMALISED[0] < s < _NORMALISED[1] for s in std.values()), std
    # The same architecture with its default statistics (mean 0, var 1): activations explode.
    fresh = build_model(cfg)
    assert _stage_std(fresh, cfg)["res5"] > 100 * std["res5"]


def test_torchvision_stand_in_converts_and_loads_into_sparseinst(tmp_path):
    src = write("torchvision_pth", tmp_path / "resnet50-test.pth")
    assert not any(k.endswith("num_batches_tracked") for k in torch.load(src, weights_only=True))
    out = tmp_path / "r50_d2.pth"
    subprocess.run([sys.executable, str(TOOLS / "convert_torchvision_resnet.py"), str(src), str(out)],
                   check=True, capture_output=True, timeout=300)
    cfg, model = _load(CONFIGS / "coco/sparseinst_R_50.yaml", out)
    std = _stage_std(model, cfg)
    assert all(_NORMALISED[0] < s < _NORMALISED[1] for s in std.values()), std


def test_coco_stand_in_starts_table5s_coco_init_rows(tmp_path):
    path = write("detectron2_pkl", tmp_path / "model_final_f10217.pkl")
    _load(CONFIGS / "cityscapes/mask_rcnn_R_50_FPN_coco_init.yaml", path,
          "MODEL.ROI_HEADS.NUM_CLASSES", "8")


def test_swin_stand_in_converts_and_loads(tmp_path):
    src = write("torchvision_pth", tmp_path / "swin_t-test.pth", arch="swin_t")
    out = tmp_path / "swin_t_d2.pth"
    subprocess.run([sys.executable, str(TOOLS / "convert_torchvision_swin.py"), str(src), str(out)],
                   check=True, capture_output=True, timeout=300)
    _load(CONFIGS / "coco/mask_rcnn_swin_T_FPN_1x.yaml", out)


def test_unknown_format_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dcl_detectron2.synthetic_weights",
                             "torchvision_pth", str(tmp_path / "x.pth"), "--arch", "vgg16"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    # (detectron2's import prints torch's deprecation warnings first)
    assert result.stderr.splitlines()[-1] == "error: torchvision_pth stand-ins: resnet50 or swin_t, not 'vgg16'"
