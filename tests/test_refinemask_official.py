"""RefineMask against the official code (zhanggang001/RefineMask, mmdet 2.3): its numbers and its
checkpoints.

Golden fixtures (``tests/data/official/refinemask_*``; provenance in
``tests/data/official/README.md``): the official files of commit ``633ed2be1b36``
(``refine_mask_head.py``, ``refine_roi_head.py``, ``cross_entropy_loss.py``, ``losses/utils.py``,
``core/mask/structures.py``, ``fcn_mask_head.py``) were exec'd outside this project with only
their import lines rewritten to mmcv 2 / mmdet 3 or to tiny shims (no-op registries, mmdet 3's
``SingleRoIExtractor`` and ``bbox2roi``), CPU, one thread.

- ``refinemask_head_*``: the official ``RefineMaskHead`` at a tiny width (input 8 channels,
  instance 32 -> 16 -> 8 -> 4, semantic 16, 3 classes, stage sizes 7/14/28/56, i.e. half the
  paper's 14..112), official init with ``torch.manual_seed(0)`` then every parameter
  + 0.05 N(0, 1) (generator seed 1); inputs from generator seed 2: RoI features [4, 8, 7, 7],
  P2 [2, 8, 16, 24] (64 x 96 images), 4 positive boxes (3 in image 0), ellipse-with-notch
  ground truths. Expected: the official ``get_targets`` (stage targets, semantic target),
  forward (4 stage logits, semantic logits), ``RefineCrossEntropyLoss`` and
  ``RefineRoIHead.simple_test_mask`` on image 0's boxes (BAR-merged logits, pasted masks).
- ``refinemask_bar.pt``: ``generate_block_target`` (widths 1, 2), ``RefineCrossEntropyLoss``
  and the ``simple_test_mask`` merge on 2 structured masks at the paper's sizes 14..112 with
  logits = (2 target - 1) x 3 + 2.5 N(0, 1) (generator seed 3).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("mmcv")

REPO = Path(__file__).resolve().parents[1]
MMDET_DIR = REPO / "baselines" / "mmdet"
sys.path.insert(0, str(MMDET_DIR))  # dcl_mmdet without an installed copy, as the scripts do

from mmengine.config import Config, ConfigDict  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures.mask import BitmapMasks, mask_target  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

import dcl_mmdet  # noqa: E402,F401
from dcl_mmdet.bar import bar_stage_losses, boundary_region, refine_stages  # noqa: E402
from dcl_mmdet.refinemask_head import RefineMaskHead, _paste  # noqa: E402
from dcl_mmdet.semantic_head import semantic_targets  # noqa: E402

register_all_modules()

DATA = Path(__file__).resolve().parent / "data" / "official"
CONVERTER = MMDET_DIR / "tools" / "convert_official_refinemask.py"
CITYSCAPES = MMDET_DIR / "configs" / "cityscapes" / "refinemask_r50_fpn.py"
SIZES = (7, 14, 28, 56)
TOL = dict(rtol=1e-5, atol=1e-5)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _load(name):
    return torch.load(DATA / name, weights_only=True)


def _converter():
    spec = importlib.util.spec_from_file_location("convert_official_refinemask", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def golden_head():
    head = RefineMaskHead(num_classes=3, in_channels=8, instance_channels=32, num_convs_instance=2,
                          semantic_channels=16, num_convs_semantic=4, stage_sizes=SIZES)
    head.load_state_dict(_load("refinemask_head_weights.pth")["state_dict"], strict=True)
    return head.eval()


def test_golden_stage_and_semantic_logits_equal_the_official_head():
    inputs, expected = _load("refinemask_head_inputs.pt"), _load("refinemask_head_expected.pt")
    with torch.no_grad():
        out = golden_head()(inputs["roi_feats"], inputs["p2"], inputs["rois"], inputs["labels"])
    assert len(out["stage_logits"]) == 4
    for ours, theirs in zip(out["stage_logits"], expected["stage_logits"]):
        torch.testing.assert_close(ours, theirs, **TOL)
    torch.testing.assert_close(out["semantic_logits"], expected["semantic_logits"], **TOL)


def test_golden_targets_and_losses_equal_the_official_head():
    inputs, expected = _load("refinemask_head_inputs.pt"), _load("refinemask_head_expected.pt")
    masks = [BitmapMasks(m.numpy().astype(np.uint8), *m.shape[-2:]) for m in inputs["gt_masks"]]
    for size, theirs in zip(SIZES, expected["stage_targets"]):
        ours = mask_target(inputs["pos_bboxes"], inputs["pos_gt_inds"], masks,
                           ConfigDict(mask_size=size))
        assert torch.equal(ours, theirs.float()), size
    semantic = semantic_targets(masks, tuple(expected["semantic_target"].shape[-2:]), 4,
                                torch.device("cpu"))
    assert torch.equal(semantic, expected["semantic_target"].float())

    head = golden_head()
    out = head(inputs["roi_feats"], inputs["p2"], inputs["rois"], inputs["labels"])
    targets = [t.float() for t in expected["stage_targets"]]
    per_stage = bar_stage_losses(out["stage_logits"], targets, head.boundary_width,
                                 head.start_stage, head.boundary_rule)
    loss_mask = sum(w * loss for w, loss in zip(head.stage_loss_weights, per_stage))
    torch.testing.assert_close(loss_mask, expected["loss_instance"], **TOL)
    loss_semantic = F.binary_cross_entropy_with_logits(out["semantic_logits"][:, 0], semantic)
    torch.testing.assert_close(loss_semantic, expected["loss_semantic"], **TOL)


def test_golden_bar_inference_and_pasted_masks_equal_the_official_roi_head():
    inputs, expected = _load("refinemask_head_inputs.pt"), _load("refinemask_head_expected.pt")
    head = golden_head()
    n = len(inputs["pos_bboxes"][0])
    with torch.no_grad():
        out = head(inputs["roi_feats"][:n], inputs["p2"][:1], inputs["rois"][:n],
                   inputs["labels"][:n])
        final = head.refine(out["stage_logits"])
    torch.testing.assert_close(final, expected["final_logits_image0"], **TOL)
    pasted = _paste(final.sigmoid(), inputs["pos_bboxes"][0], 64, 96, 0.5)
    assert torch.equal(pasted, expected["pasted_masks_image0"])


def test_golden_boundary_rule_loss_and_merge_at_paper_sizes():
    bar = _load("refinemask_bar.pt")
    targets = [t.float() for t in bar["targets"]]
    for width, blocks in bar["block_targets"].items():
        for target, block in zip(targets, blocks):
            region = boundary_region(target >= 0.5, width)  # default: the authors' rule
            assert torch.equal(region, block == 1), (width, target.shape)
    # The paper's distance rule is wider at width 2: it must differ, or the test tells nothing.
    assert not torch.equal(boundary_region(targets[2] >= 0.5, 2, rule="distance"),
                           bar["block_targets"][2][2] == 1)
    losses = bar_stage_losses(bar["logits"], targets, boundary_width=2, start_stage=1)
    total = sum(w * loss for w, loss in zip((0.25, 0.5, 0.75, 1.0), losses))
    torch.testing.assert_close(total, bar["loss_instance"], **TOL)
    assert torch.equal(refine_stages(bar["logits"], start_stage=1, width=1), bar["merged"])


# --- checkpoint conversion ---------------------------------------------------------------------

def _cityscapes_model():
    cfg = Config.fromfile(str(CITYSCAPES))
    return MODELS.build(cfg.model)


def official_state(model):
    """An official Cityscapes checkpoint's names and shapes: the mask head's from instantiating
    the official ``RefineMaskHead`` (fixture); the detector around it from this model, whose
    names mmdet 3 kept from mmdet 2 (backbone, neck, rpn_head, roi_head.bbox_head)."""
    keys = json.loads((DATA / "official_refinemask_cityscapes_mask_head_keys.json").read_text())
    state = {k: torch.zeros(shape) for k, shape in keys.items()}
    state.update({k: torch.zeros_like(v) for k, v in model.state_dict().items()
                  if not k.startswith("roi_head.mask_head.")})
    return state


def test_converted_official_checkpoint_loads_strictly_into_the_cityscapes_model(tmp_path):
    conv = _converter()
    model = _cityscapes_model()
    state = official_state(model)
    src = tmp_path / "official.pth"
    torch.save({"state_dict": state, "meta": {"epoch": 8}}, src)
    out = tmp_path / "ours.pth"
    assert conv.main([str(src), str(out)]) == 0
    converted = torch.load(out, weights_only=True)["state_dict"]
    model.load_state_dict(converted, strict=True)
    head = [k for k in state if k.startswith("roi_head.mask_head.")]
    assert len(head) == 70
    assert sum(k not in converted for k in head) == 60
    assert "roi_head.mask_head.stages.2.fusion.branches.2.conv.weight" in converted


def test_converter_maps_the_dcl_authors_projection_and_names_unplaceable_keys(tmp_path, capsys):
    conv = _converter()
    proj = {f"roi_head.contrast_loss.proj_head.{i}.{p}": torch.zeros(2)
            for i in (0, 2) for p in ("weight", "bias")}
    head = {"roi_head.mask_head.final_instance_logits.weight": torch.zeros(8, 32, 1, 1)}
    converted = conv.convert({**head, **proj})
    assert set(converted) == {"roi_head.mask_head.final_logits.weight"} | {
        f"roi_head.mask_head.contrast_loss.projection.{i}.{p}" for i in (0, 2)
        for p in ("weight", "bias")}
    with pytest.raises(conv.ConversionError, match="cannot place roi_head.mask_head.stages.0.bn"):
        conv.convert({**head, "roi_head.mask_head.stages.0.bn.weight": torch.zeros(1)})
    with pytest.raises(conv.ConversionError, match="not a RefineMask checkpoint"):
        conv.convert({"backbone.conv1.weight": torch.zeros(1)})
    src = tmp_path / "official.pth"
    torch.save({"state_dict": {**head, "roi_head.semantic_head.x": torch.zeros(3)}}, src)
    assert conv.main([str(src), str(tmp_path / "o.pth")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot place roi_head.semantic_head.x (3,)") and err.count("\n") == 1
    assert not (tmp_path / "o.pth").exists()
