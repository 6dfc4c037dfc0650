"""SparseInst (Cheng et al., CVPR 2022) in the detectron2 plug-in, with and without DCL."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.evaluation.coco_evaluation import instances_to_coco_json  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances, PolygonMasks  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import dcl_detectron2  # noqa: E402,F401  (registers SparseInst)
from dcl_core import DenseContrastiveLoss  # noqa: E402
from dcl_detectron2 import SparseInst, add_dcl_config, add_sparseinst_config  # noqa: E402
from dcl_detectron2.sparseinst.contrast import gt_roi_inputs  # noqa: E402
from dcl_detectron2.sparseinst.inference import mask_boxes, sparseinst_inference  # noqa: E402
from dcl_detectron2.sparseinst.loss import SparseInstCriterion, dice_loss  # noqa: E402
from dcl_detectron2.sparseinst.matcher import HungarianMatcher, matching_cost  # noqa: E402
from detectron2_inputs import batch, project_cfg, train_step  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "baselines" / "detectron2" / "configs"
EMBEDDED = CONFIGS / "embedded" / "sparseinst_R_18.yaml"
COCO = CONFIGS / "coco" / "sparseinst_R_50.yaml"
COCO_DCL = CONFIGS / "coco" / "sparseinst_R_50_dcl.yaml"
COCO_IAM = CONFIGS / "coco" / "sparseinst_R_50_iam.yaml"
SPARSEINST_CONFIGS = [EMBEDDED, COCO, COCO_DCL, COCO_IAM]

# A narrow model so a CPU step takes well under a second.
TINY = ["MODEL.SPARSE_INST.ENCODER.NUM_CHANNELS", "32",
        "MODEL.SPARSE_INST.DECODER.INST.DIM", "32", "MODEL.SPARSE_INST.DECODER.INST.CONVS", "1",
        "MODEL.SPARSE_INST.DECODER.MASK.DIM", "32", "MODEL.SPARSE_INST.DECODER.MASK.CONVS", "1",
        "MODEL.SPARSE_INST.DECODER.NUM_MASKS", "10", "MODEL.SPARSE_INST.DECODER.KERNEL_DIM", "16"]
DCL = ["MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT", "1.0"]
BASE_LOSSES = {"loss_cls", "loss_dice", "loss_mask", "loss_objectness"}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def make_cfg(*opts, config=EMBEDDED):
    return project_cfg(config, *opts)


def tiny_model(*opts, seed=0):
    torch.manual_seed(seed)
    return build_model(make_cfg(*TINY, *opts))


# --- config ------------------------------------------------------------------------------------

def test_config_defaults_follow_the_papers():
    cfg = add_sparseinst_config(get_cfg())
    node = cfg.MODEL.SPARSE_INST
    assert (node.DECODER.NUM_MASKS, node.DECODER.KERNEL_DIM) == (100, 128)
    assert (node.ENCODER.NUM_CHANNELS, node.DECODER.INST.DIM, node.DECODER.MASK.DIM) == (256,) * 3
    assert node.MATCHER.ALPHA == 0.8 and node.MASK_THRESHOLD == 0.45
    loss = node.LOSS
    assert (loss.CLASS_WEIGHT, loss.MASK_DICE_WEIGHT, loss.MASK_PIXEL_WEIGHT,
            loss.OBJECTNESS_WEIGHT) == (2.0, 2.0, 5.0, 1.0)
    c = node.CONTRAST_LOSS
    assert c.LOSS_WEIGHT == 0.0  # the baseline is the default
    assert (c.NUM_SAMPLES, c.TEMPERATURE, c.WITH_PROJ, c.MAX_INSTANCES, c.ROI_SELECTION,
            c.POOLER_RESOLUTION) == (32, 0.07, True, 100, "first", 28)


def test_add_sparseinst_config_leaves_mask_rcnn_unchanged():
    mask_rcnn = CONFIGS / "embedded" / "mask_rcnn_R_18_FPN.yaml"
    plain = get_cfg()
    add_dcl_config(plain)
    plain.merge_from_file(str(mask_rcnn))
    extended = add_sparseinst_config(add_dcl_config(get_cfg()))
    extended.merge_from_file(str(mask_rcnn))
    del extended.MODEL["SPARSE_INST"]
    if "OPTIMIZER" not in plain.SOLVER:
        del extended.SOLVER["OPTIMIZER"]
    assert extended.dump() == plain.dump()
    # Calling it again (a second plug-in, a re-run setup) keeps values already merged.
    extended = make_cfg("SOLVER.OPTIMIZER", "ADAMW")
    add_sparseinst_config(extended)
    assert extended.SOLVER.OPTIMIZER == "ADAMW"


@pytest.mark.parametrize("config", SPARSEINST_CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load(config):
    cfg = make_cfg(config=config)
    assert cfg.MODEL.META_ARCHITECTURE == "SparseInst" and cfg.MODEL.MASK_ON
    assert cfg.MODEL.RESNETS.OUT_FEATURES == ["res3", "res4", "res5"]


def test_coco_configs_are_the_paper_settings():
    base, dcl = make_cfg(config=COCO), make_cfg(config=COCO_DCL)
    assert base.MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT == 0.0
    assert dcl.MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT == 0.1
    assert base.MODEL.RESNETS.DEPTH == 50 and base.SOLVER.IMS_PER_BATCH == 64
    # 73 epochs, half of SparseInst's 270k iterations at batch 64 (= 146 epochs of 118k images).
    assert base.SOLVER.MAX_ITER == 135000
    assert abs(base.SOLVER.MAX_ITER * 64 / 118287 - 73) < 0.1
    assert base.SOLVER.OPTIMIZER == "ADAMW"
    decoder = base.MODEL.SPARSE_INST.DECODER
    assert (decoder.NUM_MASKS, decoder.KERNEL_DIM) == (100, 128)
    # G-IAM, the official default decoder; plain IAM stays selectable.
    assert decoder.GROUPS == 4 and dcl.MODEL.SPARSE_INST.DECODER.GROUPS == 4
    assert make_cfg(config=COCO_IAM).MODEL.SPARSE_INST.DECODER.GROUPS == 1
    dcl.MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT = 0.0
    assert dcl.dump() == base.dump()


def test_mask_on_is_required():
    with pytest.raises(ValueError, match="MASK_ON"):
        build_model(make_cfg(*TINY, "MODEL.MASK_ON", "False"))


# --- training ----------------------------------------------------------------------------------

def test_baseline_train_step_gives_finite_losses_and_no_contrast():
    model = tiny_model()
    assert isinstance(model, SparseInst) and model.contrast is None
    assert not any("contrast" in name for name, _ in model.named_parameters())
    losses, storage = train_step(model, batch())
    assert set(losses) == BASE_LOSSES
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    assert losses["loss_cls"] > 0 and losses["loss_dice"] > 0
    assert "contrast/num_rois" not in storage.latest()
    for name, p in model.named_parameters():
        assert p.grad is not None, name


def test_dcl_train_step_adds_a_finite_contrast_loss_that_trains_the_mask_branch():
    model = tiny_model(*DCL)
    assert isinstance(model.contrast.loss, DenseContrastiveLoss)
    assert model.contrast.loss.channels == 16  # D, the mask features' channels
    losses, storage = train_step(model, batch())
    assert set(losses) == BASE_LOSSES | {"loss_contrast"}
    assert torch.isfinite(losses["loss_contrast"]) and losses["loss_contrast"] > 0
    latest = storage.latest()
    assert latest["contrast/num_rois"][0] == 4 and latest["contrast/num_valid_rois"][0] == 4

    # The contrastive loss alone: its gradient reaches the projection and the mask branch
    # (whose output it supervises), not the instance branch.
    model.zero_grad(set_to_none=True)
    with EventStorage(0):
        model(batch())["loss_contrast"].backward()
    for name, p in model.contrast.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in model.decoder.mask_branch.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.decoder.instance_branch.parameters())


def test_lambda_zero_is_exactly_the_baseline():
    base = tiny_model()
    zero = tiny_model("MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT", "0.0",
                      "MODEL.SPARSE_INST.CONTRAST_LOSS.NUM_SAMPLES", "8")
    assert zero.contrast is None
    base_losses, _ = train_step(base, batch())
    zero_losses, _ = train_step(zero, batch())
    assert set(base_losses) == set(zero_losses)
    for k in base_losses:
        assert torch.equal(base_losses[k], zero_losses[k]), k


def test_polygon_masks_and_an_image_without_instances_train():
    inputs = batch(2)
    # Image 0: its instances as polygons (the default INPUT.MASK_FORMAT); image 1: none.
    inst = inputs[0]["instances"]
    inst.gt_masks = PolygonMasks([[np.array([20, 20, 70, 20, 70, 70, 20, 70], dtype=np.float64)],
                                  [np.array([60, 60, 120, 60, 120, 120], dtype=np.float64)]])
    inst.gt_boxes = Boxes(torch.tensor([[20.0, 20, 70, 70], [60, 60, 120, 120]]))
    empty = Instances((128, 128))
    empty.gt_masks = PolygonMasks([])
    empty.gt_boxes = Boxes(torch.zeros((0, 4)))
    empty.gt_classes = torch.zeros(0, dtype=torch.int64)
    inputs[1]["instances"] = empty
    losses, storage = train_step(tiny_model(*DCL), inputs)
    assert all(torch.isfinite(v) for v in losses.values())
    assert storage.latest()["contrast/num_rois"][0] == 2


def test_a_batch_without_any_instance_gives_zero_mask_losses():
    inputs = batch(1)
    empty = Instances((128, 128))
    empty.gt_masks = BitMasks(torch.zeros((0, 128, 128), dtype=torch.bool))
    empty.gt_boxes = Boxes(torch.zeros((0, 4)))
    empty.gt_classes = torch.zeros(0, dtype=torch.int64)
    inputs[0]["instances"] = empty
    losses, _ = train_step(tiny_model(*DCL), inputs)
    for k in ("loss_dice", "loss_mask", "loss_objectness", "loss_contrast"):
        assert losses[k].item() == 0.0 and losses[k].grad_fn is not None, k
    assert losses["loss_cls"] > 0  # every prediction is trained as background


def test_training_without_instances_fails_clearly():
    model = tiny_model().train()
    with pytest.raises(ValueError, match="instances"):
        with EventStorage(0):
            model([{"image": torch.zeros(3, 64, 64)}])
    no_masks = Instances((64, 64))
    no_masks.gt_boxes = Boxes(torch.tensor([[0.0, 0.0, 9.0, 9.0]]))
    no_masks.gt_classes = torch.tensor([0])
    with pytest.raises(ValueError, match="gt_masks"):
        with EventStorage(0):
            model([{"image": torch.zeros(3, 64, 64), "instances": no_masks}])


# --- DCL inputs --------------------------------------------------------------------------------

def test_gt_roi_inputs_pool_the_mask_features_at_the_gt_boxes():
    # Stride-8 features whose channel 0 is the x coordinate (input pixels) of each cell's centre.
    h = w = 16
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * 8
    features = torch.zeros(2, 3, h, w)
    features[:, 0] = xs.view(1, 1, w)
    full = torch.zeros(1, 128, 128, dtype=torch.bool)
    full[0, 32:64, :] = True  # a band: the top half of the box below
    inst = Instances((128, 128))
    inst.gt_masks = BitMasks(full)
    inst.gt_boxes = Boxes(torch.tensor([[32.0, 32.0, 96.0, 96.0]]))
    none = Instances((128, 128))
    none.gt_masks = BitMasks(torch.zeros((0, 128, 128), dtype=torch.bool))
    none.gt_boxes = Boxes(torch.zeros((0, 4)))
    rois, masks = gt_roi_inputs(features, [none, inst], 28, 8.0)
    assert rois.shape == (1, 3, 28, 28) and masks.shape == (1, 28, 28) and masks.dtype == torch.bool
    # Bin centres of the box [32, 96] in x: 32 + (j + 0.5) * 64 / 28, linear in j.
    expected = 32 + (torch.arange(28) + 0.5) * 64 / 28
    assert torch.allclose(rois[0, 0, 10], expected, atol=1e-3)
    assert masks[0, :13].all() and not masks[0, 15:].any()
    with pytest.raises(ValueError, match="batch"):
        gt_roi_inputs(features, [inst], 28, 8.0)


# --- matcher and losses ------------------------------------------------------------------------

def _logits(masks):
    return torch.where(masks, torch.tensor(10.0), torch.tensor(-10.0))


def test_matcher_assigns_one_to_one_on_a_hand_made_case():
    h = w = 8
    left, right, top = (torch.zeros(h, w, dtype=torch.bool) for _ in range(3))
    left[:, :4], right[:, 4:], top[:4] = True, True, True
    # Predictions: 0 = top, 1 = right, 2 = left. Targets: 0 = left, 1 = right.
    mask_logits = _logits(torch.stack([top, right, left]))[None]
    class_logits = torch.full((1, 3, 2), 2.0)
    targets = [(torch.stack([left, right]).float(), torch.tensor([0, 1]))]
    (src, tgt), = HungarianMatcher(0.8)(mask_logits, class_logits, targets)
    assert src.tolist() == [1, 2] and tgt.tolist() == [1, 0]

    # Same masks twice: the class probability decides between them.
    mask_logits = _logits(torch.stack([left, left]))[None]
    class_logits = torch.tensor([[[-3.0, 0.0], [3.0, 0.0]]])
    targets = [(left[None].float(), torch.tensor([0]))]
    (src, tgt), = HungarianMatcher(0.8)(mask_logits, class_logits, targets)
    assert src.tolist() == [1] and tgt.tolist() == [0]


def test_matcher_maximises_the_total_score_not_greedily():
    torch.manual_seed(3)
    mask_logits = torch.randn(1, 4, 6, 6) * 3
    class_logits = torch.randn(1, 4, 3)
    t_masks = (torch.rand(3, 6, 6) > 0.5).float()
    t_classes = torch.tensor([2, 0, 2])
    (src, tgt), = HungarianMatcher(0.8)(mask_logits, class_logits, [(t_masks, t_classes)])
    cost = matching_cost(mask_logits[0].sigmoid().flatten(1), class_logits[0].sigmoid(),
                         t_masks.flatten(1), t_classes, 0.8)
    best = max(sum(cost[p, t] for t, p in enumerate(perm))
               for perm in itertools.permutations(range(4), 3))
    assert torch.isclose(cost[src, tgt].sum(), best)
    assert sorted(tgt.tolist()) == [0, 1, 2] and len(set(src.tolist())) == 3


def test_matching_cost_is_dice_to_alpha_times_prob_to_one_minus_alpha():
    pred = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    probs = torch.tensor([[0.25, 0.5]])
    dice = 2 * 1 / (2 + 1 + 1e-4)
    cost = matching_cost(pred, probs, target, torch.tensor([1]), alpha=0.8)
    assert torch.isclose(cost[0, 0], torch.tensor(dice ** 0.8 * 0.5 ** 0.2))


def test_matcher_rejects_bad_targets():
    with pytest.raises(ValueError, match="mask size"):
        HungarianMatcher()(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 3),
                           [(torch.zeros(1, 4, 4), torch.tensor([0]))])
    with pytest.raises(ValueError, match="class ids"):
        HungarianMatcher()(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 3),
                           [(torch.zeros(1, 8, 8), torch.tensor([3]))])
    with pytest.raises(FloatingPointError):
        HungarianMatcher()(torch.full((1, 2, 8, 8), float("nan")), torch.zeros(1, 2, 3),
                           [(torch.zeros(1, 8, 8), torch.tensor([0]))])


def test_criterion_on_a_perfect_and_a_wrong_prediction():
    left = torch.zeros(8, 8, dtype=torch.bool)
    left[:, :4] = True
    outputs = {
        # Prediction 0 is the target exactly; prediction 1 is its complement.
        "masks": _logits(torch.stack([left, ~left]))[None],
        "logits": torch.tensor([[[8.0, -8.0], [-8.0, -8.0]]]),
        "objectness": torch.tensor([[[8.0], [-8.0]]]),
    }
    losses, indices = SparseInstCriterion(HungarianMatcher())(
        outputs, [(left[None].float(), torch.tensor([0]))])
    assert indices[0][0].tolist() == [0]
    # Near-zero losses on the matched, correct prediction; the weights are the paper's.
    assert losses["loss_dice"] < 2.0 * 1e-3
    assert losses["loss_mask"] < 5.0 * 1e-3
    assert losses["loss_objectness"] < 1e-2  # objectness target = IoU 1
    assert losses["loss_cls"] < 1e-3
    assert torch.isclose(dice_loss(_logits(~left)[None].flatten(1), left[None].flatten(1).float()),
                         torch.tensor([1.0]), atol=1e-4)


# --- inference ---------------------------------------------------------------------------------

def test_inference_scores_threshold_topk_and_boxes():
    masks = torch.full((1, 3, 8, 8), -10.0)
    masks[0, 0, 2:4, 1:5] = 10.0  # in mask pixels; the input is 4x larger
    masks[0, 1, :, :] = 10.0
    outputs = {
        "masks": masks,
        "logits": torch.tensor([[[2.0, 0.0], [-1.0, 1.0], [-9.0, -9.0]]]),
        "objectness": torch.tensor([[[0.0], [3.0], [-9.0]]]),
    }
    (r,) = sparseinst_inference(outputs, [(32, 32)], [(64, 64)], (32, 32), cls_threshold=0.005,
                                max_detections=2, maskness_rescore=False)
    probs = torch.sigmoid(torch.tensor([2.0, 1.0])) * torch.sigmoid(torch.tensor([0.0, 3.0]))
    expected = probs.sqrt()
    order = expected.argsort(descending=True)
    assert torch.allclose(r.scores, expected[order])
    assert r.pred_classes.tolist() == torch.tensor([0, 1])[order].tolist()
    assert r.image_size == (64, 64) and r.pred_masks.dtype == torch.bool
    assert r.pred_masks.shape == (2, 64, 64)
    i = order.tolist().index(0)
    # Mask rows 2-3, cols 1-4 at 1/8 of the 64x64 output: boxes in output pixels.
    box = r.pred_boxes.tensor[i]
    assert torch.allclose(box, torch.tensor([8.0, 16.0, 40.0, 32.0]), atol=2.0)
    assert torch.equal(r.pred_boxes.tensor[1 - i], torch.tensor([0.0, 0.0, 64.0, 64.0]))

    (r,) = sparseinst_inference(outputs, [(32, 32)], [(64, 64)], (32, 32), cls_threshold=0.7,
                                max_detections=2)
    assert len(r) == 1 and r.pred_masks.shape == (1, 64, 64)


def test_mask_boxes_are_tight_and_zero_for_empty_masks():
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, 3:7, 2:9] = True
    boxes = mask_boxes(masks).tensor
    assert boxes.tolist() == [[2.0, 3.0, 9.0, 7.0], [0.0, 0.0, 0.0, 0.0]]
    assert torch.equal(boxes, BitMasks(masks).get_bounding_boxes().tensor)


def test_eval_forward_returns_instances_the_coco_writer_accepts():
    model = tiny_model(*DCL).eval()
    calls = []
    model.contrast.register_forward_hook(lambda *a: calls.append(1))
    inputs = [{k: v for k, v in x.items() if k != "instances"} for x in batch(2)]
    inputs[1]["height"], inputs[1]["width"] = 200, 160  # output size differs from the input
    with torch.no_grad():
        out = model(inputs)
    assert calls == []  # no contrastive loss (nor projection) at test time
    for x, o in zip(inputs, out):
        inst = o["instances"]
        assert inst.image_size == (x["height"], x["width"])
        for field in ("pred_masks", "pred_boxes", "scores", "pred_classes"):
            assert inst.has(field), field
        assert 0 < len(inst) <= 10
        assert inst.pred_masks.dtype == torch.bool
        assert inst.pred_masks.shape == (len(inst), x["height"], x["width"])
        assert isinstance(inst.pred_boxes, Boxes) and inst.pred_classes.dtype == torch.int64
        assert torch.all(inst.scores[:-1] >= inst.scores[1:])
        results = instances_to_coco_json(inst.to("cpu"), 7)
        assert len(results) == len(inst)
        assert isinstance(results[0]["segmentation"]["counts"], str)


# --- optimizer ---------------------------------------------------------------------------------

def test_trainer_builds_adamw_for_the_coco_config():
    from dcl_detectron2.engine import Trainer as trainer

    coco = make_cfg(config=COCO)
    solver = coco.SOLVER
    assert (solver.OPTIMIZER, solver.BASE_LR, solver.WEIGHT_DECAY) == ("ADAMW", 5e-5, 0.05)
    model = tiny_model()
    cfg = make_cfg(*TINY, "SOLVER.OPTIMIZER", "ADAMW", "SOLVER.BASE_LR", "0.00005",
                   "SOLVER.WEIGHT_DECAY", "0.05")
    opt = trainer.build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.AdamW)
    assert {g["lr"] for g in opt.param_groups} == {5e-5}
    assert {g["weight_decay"] for g in opt.param_groups} == {0.05, 0.0}  # 0: GroupNorm
    sgd = make_cfg(*TINY, "SOLVER.OPTIMIZER", "SGD")
    assert isinstance(trainer.build_optimizer(sgd, model), torch.optim.SGD)


# --- end to end through train_net.py ------------------------------------------------------------

@pytest.mark.slow
def test_train_resume_and_predict_through_train_net(train_resume_predict):
    results, _ = train_resume_predict(EMBEDDED, *DCL)
    first = results[0]
    assert isinstance(first["segmentation"]["counts"], str) and len(first["bbox"]) == 4
    assert 0.0 <= first["score"] <= 1.0
