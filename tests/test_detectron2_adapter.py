"""The detectron2 plug-in: registration, config keys, the loss inside a real Mask R-CNN step."""

from pathlib import Path

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402

import dcl_detectron2  # noqa: E402,F401  (registers the heads)
from dcl_core import DCLSettings, DenseContrastiveLoss, parse_loss_option  # noqa: E402
from dcl_detectron2 import add_dcl_config  # noqa: E402
from dcl_detectron2.config import (apply_loss_settings, contrast_loss_node,  # noqa: E402
                                   settings_from_node)
from dcl_detectron2.mask_head import ContrastConvUpsampleHead, gt_masks_at  # noqa: E402
from detectron2_inputs import batch, project_cfg, train_step  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "baselines" / "detectron2" / "configs"
EMBEDDED = CONFIGS / "embedded" / "mask_rcnn_R_18_FPN.yaml"


def make_cfg(*opts, config=EMBEDDED):
    return project_cfg(config, *opts)


DCL = ["MODEL.ROI_HEADS.NAME", "ContrastRoIHeads",
       "MODEL.ROI_MASK_HEAD.NAME", "ContrastConvUpsampleHead"]


def test_add_dcl_config_defaults_are_the_authors():
    cfg = add_dcl_config(get_cfg())
    node = cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
    assert (node.LOSS_WEIGHT, node.NUM_SAMPLES, node.TEMPERATURE) == (1.2, 32, 0.07)
    assert node.WITH_PROJ is True and node.MAX_INSTANCES == 100 and node.ROI_SELECTION == "first"


def test_the_loss_option_writes_the_authors_keys():
    """--loss in neutral words gives the config the authors' keys would (lambda a float)."""
    authors = make_cfg(*DCL, "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT", "1.0",
                       "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.NUM_NEGATIVES", "64")
    neutral = apply_loss_settings(make_cfg(), parse_loss_option(
        ["dcl", "loss_weight=1", "num_negatives=64"]))
    assert neutral.dump() == authors.dump()
    node = neutral.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
    assert type(node.LOSS_WEIGHT) is float and settings_from_node(node) == DCLSettings(
        loss_weight=1.0, num_negatives=64)
    # The baseline only zeroes lambda, so even a config with the contrast heads builds no loss.
    base = apply_loss_settings(make_cfg(*DCL), None)
    assert base.dump() == make_cfg(*DCL, "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT",
                                   "0.0").dump()
    with pytest.raises(ValueError, match="max_rois=None"):
        apply_loss_settings(make_cfg(), DCLSettings(max_rois=None))
    other = make_cfg("MODEL.META_ARCHITECTURE", "RetinaNet")
    with pytest.raises(ValueError, match="RetinaNet"):
        apply_loss_settings(other, DCLSettings())


def test_the_loss_option_reaches_sparseinsts_node():
    sparse = CONFIGS / "embedded" / "sparseinst_R_18.yaml"
    keys = "MODEL.SPARSE_INST.CONTRAST_LOSS."
    neutral = apply_loss_settings(make_cfg(config=sparse), DCLSettings(loss_weight=0.1))
    assert neutral.dump() == make_cfg(keys + "LOSS_WEIGHT", "0.1", config=sparse).dump()
    assert make_cfg(config=sparse).MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT == 0.0
    assert apply_loss_settings(make_cfg(config=sparse), None).dump() == \
        make_cfg(config=sparse).dump()


def test_contrast_loss_node_is_dcl_cores_defaults():
    assert settings_from_node(contrast_loss_node()) == DCLSettings()
    assert settings_from_node(add_dcl_config(get_cfg()).MODEL.ROI_MASK_HEAD.CONTRAST_LOSS) == \
        DCLSettings()


def test_setup_writes_the_loss_option_between_the_file_and_the_overrides(tmp_path):
    from detectron2.engine import default_argument_parser

    from dcl_detectron2.engine import add_run_arguments, setup

    parser = add_run_arguments(default_argument_parser())
    # No data here: setup refuses dataset names nobody registered, so the splits are emptied.
    args = parser.parse_args(["--loss", "dcl", "loss_weight=0.5", "--config-file", str(EMBEDDED),
                              "OUTPUT_DIR", str(tmp_path), "DATASETS.TRAIN", "()",
                              "DATASETS.TEST", "()",
                              "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.NUM_SAMPLES", "16"])
    cfg = setup(args)
    node = cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
    assert (node.LOSS_WEIGHT, node.NUM_SAMPLES) == (0.5, 16)
    assert cfg.MODEL.ROI_MASK_HEAD.NAME == "ContrastConvUpsampleHead"
    bad = parser.parse_args(["--loss", "dcl", "lambda=1", "--config-file", str(EMBEDDED)])
    with pytest.raises(SystemExit, match=r"^error: --loss: unknown key\(s\) \['lambda'\]"):
        setup(bad)


def test_setup_writes_the_seed_option_before_the_overrides(tmp_path):
    from detectron2.engine import default_argument_parser

    from dcl_detectron2.engine import add_run_arguments, setup

    parser = add_run_arguments(default_argument_parser())
    # No datasets registered here: setup refuses names nobody registered.
    base = ["--config-file", str(EMBEDDED), "DATASETS.TRAIN", "()", "DATASETS.TEST", "()"]
    assert setup(parser.parse_args([*base, "OUTPUT_DIR", str(tmp_path / "a")])).SEED == 0
    assert setup(parser.parse_args(["--seed", "3", *base,
                                    "OUTPUT_DIR", str(tmp_path / "b")])).SEED == 3
    assert setup(parser.parse_args(["--seed", "3", *base, "OUTPUT_DIR", str(tmp_path / "c"),
                                    "SEED", "5"])).SEED == 5


def test_authors_command_line_names_build_the_contrast_heads():
    torch.manual_seed(0)
    model = build_model(make_cfg(*DCL, "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.NUM_SAMPLES", "16"))
    head = model.roi_heads.mask_head
    assert type(model.roi_heads).__name__ == "ContrastRoIHeads"
    assert isinstance(head, ContrastConvUpsampleHead)
    assert isinstance(head.contrast_loss, DenseContrastiveLoss)
    assert head.contrast_loss.num_samples == 16
    # The projection lives beside the predictor, not inside the Sequential's forward path.
    assert list(dict(head.named_children()))[-2:] == ["predictor", "contrast_loss"]


def test_unequal_sample_counts_reach_the_loss():
    """The supplementary study's |A|, |P|, |N|: 0 keeps K, a count overrides it."""
    keys = "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS."
    model = build_model(make_cfg(*DCL, keys + "NUM_ANCHORS", "16", keys + "NUM_NEGATIVES", "64"))
    loss = model.roi_heads.mask_head.contrast_loss
    assert (loss.num_anchors, loss.num_positives, loss.num_negatives) == (16, 32, 64)


def test_train_step_produces_finite_contrast_loss_with_gradients():
    torch.manual_seed(0)
    model = build_model(make_cfg(*DCL)).train()
    losses, storage = train_step(model, batch())
    assert "loss_contrast" in losses and "loss_mask" in losses
    assert torch.isfinite(losses["loss_contrast"]) and losses["loss_contrast"] > 0
    head = model.roi_heads.mask_head
    for name, p in head.contrast_loss.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # The loss reaches the mask head's convolutions (the features it supervises).
    assert head.deconv.weight.grad.abs().sum() > 0
    latest = storage.latest()
    assert latest["contrast/num_rois"][0] >= latest["contrast/num_valid_rois"][0] >= 1


def test_contrast_loss_sees_the_predictor_input_and_matched_crops():
    torch.manual_seed(0)
    model = build_model(make_cfg(*DCL)).train()
    head = model.roi_heads.mask_head
    seen = {}

    def spy(module, args):
        seen["features"], seen["masks"] = args

    head.contrast_loss.register_forward_pre_hook(spy)
    train_step(model, batch())
    feats, masks = seen["features"], seen["masks"]
    assert feats.shape[1:] == (128, 28, 28)  # CONV_DIM of the embedded config, 28 x 28
    assert masks.dtype == torch.bool and masks.shape == (feats.shape[0], 28, 28)
    # The features are exactly what the predictor consumes: the predictor applied to them
    # reproduces the head's logits for the same RoI features.
    x = torch.randn(3, 128, 14, 14)
    assert torch.allclose(head.layers(x), head.predictor(head.mask_features(x)))


def test_gt_masks_at_crops_each_proposal_from_its_matched_instance():
    inst = Instances((64, 64))
    full = torch.zeros(1, 64, 64, dtype=torch.bool)
    full[0, 0:32, :] = True  # top half
    inst.gt_masks = BitMasks(full)
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 64.0, 64.0]]))
    crop = gt_masks_at([inst], 28, torch.device("cpu"))
    assert crop.shape == (1, 28, 28) and crop.dtype == torch.bool
    assert crop[0, :13].all() and not crop[0, 15:].any()
    assert gt_masks_at([], 28, torch.device("cpu")).shape == (0, 28, 28)


def test_lambda_zero_is_exactly_the_baseline():
    torch.manual_seed(0)
    base = build_model(make_cfg()).train()
    torch.manual_seed(0)
    zero = build_model(make_cfg(*DCL, "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT", "0.0")).train()
    assert zero.roi_heads.mask_head.contrast_loss is None
    assert sum(p.numel() for p in base.parameters()) == sum(p.numel() for p in zero.parameters())
    torch.manual_seed(1)
    base_losses, _ = train_step(base, batch())
    torch.manual_seed(1)
    zero_losses, _ = train_step(zero, batch())
    assert set(base_losses) == set(zero_losses)
    for k in base_losses:
        assert torch.equal(base_losses[k], zero_losses[k]), k


def test_inference_is_unchanged_and_skips_the_loss():
    torch.manual_seed(0)
    model = build_model(make_cfg(*DCL)).eval()
    calls = []
    model.roi_heads.mask_head.contrast_loss.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        out = model([{k: v for k, v in x.items() if k != "instances"} for x in batch(1)])
    assert calls == []
    assert out[0]["instances"].has("pred_masks") or len(out[0]["instances"]) == 0


def test_contrast_roi_heads_require_the_contrast_mask_head():
    with pytest.raises(ValueError, match="ContrastConvUpsampleHead"):
        build_model(make_cfg("MODEL.ROI_HEADS.NAME", "ContrastRoIHeads"))


@pytest.mark.parametrize("config", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads(config):
    cfg = make_cfg(config=config)
    assert cfg.MODEL.MASK_ON


# ---------------------------------------------------------------------------------------------
# Several losses at once: DCL + ContrastMask's (the same-baseline comparison, issue 16)
# ---------------------------------------------------------------------------------------------

SMALL_CM = ["contrastmask", "detach_features=False", "ramp_epochs=0", "num_encoder_convs=1",
            "embed_channels=16"]


def test_the_loss_option_writes_dcl_and_contrastmask_nodes():
    from dcl_core import ContrastMaskSettings, parse_losses
    from dcl_detectron2.config import extra_settings_from_node

    both = apply_loss_settings(make_cfg(), parse_losses(["dcl", "loss_weight=1", "+", *SMALL_CM]))
    head = both.MODEL.ROI_MASK_HEAD
    assert head.NAME == "ContrastConvUpsampleHead" and both.MODEL.ROI_HEADS.NAME == "ContrastRoIHeads"
    assert head.CONTRAST_LOSS.LOSS_WEIGHT == 1.0 and head.CONTRASTMASK_LOSS.ENABLED
    assert extra_settings_from_node("contrastmask", head.CONTRASTMASK_LOSS) == ContrastMaskSettings(
        detach_features=False, ramp_epochs=0, num_encoder_convs=1, embed_channels=16)
    alone = apply_loss_settings(make_cfg(), parse_losses(SMALL_CM)).MODEL.ROI_MASK_HEAD
    assert alone.CONTRAST_LOSS.LOSS_WEIGHT == 0.0 and alone.CONTRASTMASK_LOSS.ENABLED
    # The defaults node is dcl_core's, off; DCL alone leaves it so (the config dump is the same).
    default = make_cfg().MODEL.ROI_MASK_HEAD.CONTRASTMASK_LOSS
    assert not default.ENABLED and extra_settings_from_node("contrastmask", default) == \
        ContrastMaskSettings()
    with pytest.raises(ValueError, match="ramp_epochs=4: detectron2 trains by iterations"):
        apply_loss_settings(make_cfg(), parse_losses(["contrastmask"]))
    sparse = CONFIGS / "embedded" / "sparseinst_R_18.yaml"
    with pytest.raises(ValueError, match="contrastmask: not wired for SparseInst"):
        apply_loss_settings(make_cfg(config=sparse), parse_losses(SMALL_CM))


def test_setup_takes_several_losses_and_refuses_bad_combinations(tmp_path):
    from detectron2.engine import default_argument_parser

    from dcl_detectron2.engine import add_run_arguments, setup

    parser = add_run_arguments(default_argument_parser())
    base = ["--config-file", str(EMBEDDED), "DATASETS.TRAIN", "()", "DATASETS.TEST", "()"]
    cfg = setup(parser.parse_args(["--loss", "dcl", "+", *SMALL_CM, *base,
                                   "OUTPUT_DIR", str(tmp_path / "a")]))
    assert cfg.MODEL.ROI_MASK_HEAD.CONTRASTMASK_LOSS.EMBED_CHANNELS == 16
    assert cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.LOSS_WEIGHT == 1.2
    for words, message in ((["dcl", "+", "dcl"], "dcl given twice"),
                           (["dcl", "+"], "stand on each side"),
                           (["none", "+", "dcl"], "no other loss")):
        with pytest.raises(SystemExit, match=f"^error: --loss: .*{message}"):
            setup(parser.parse_args(["--loss", *words, *base]))


def test_train_step_with_both_losses_gives_both_keys_finite_with_gradients():
    from dcl_core import ContrastMaskLoss, parse_losses

    torch.manual_seed(0)
    cfg = apply_loss_settings(make_cfg(), parse_losses(["dcl", "num_samples=16", "+", *SMALL_CM]))
    model = build_model(cfg).train()
    head = model.roi_heads.mask_head
    assert isinstance(head.contrast_loss, DenseContrastiveLoss)
    assert isinstance(head.extra_losses["contrastmask"], ContrastMaskLoss)
    assert list(dict(head.named_children()))[-3:] == ["predictor", "contrast_loss", "extra_losses"]
    losses, storage = train_step(model, batch())
    for key in ("loss_mask", "loss_contrast", "loss_contrastmask"):
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    for name, p in head.named_parameters():
        if name.startswith(("contrast_loss.", "extra_losses.")):
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    cm_grads = [p.grad.abs().sum() for p in head.extra_losses.parameters()]
    assert all(g > 0 for g in cm_grads[:2])  # the encoder conv's weight and bias
    latest = storage.latest()
    assert latest["contrastmask/num_rois"][0] >= latest["contrastmask/num_valid_rois"][0] >= 1
    assert latest["contrast/num_valid_rois"][0] >= 1


def test_contrastmask_alone_reaches_the_mask_head_and_dcl_runs_keep_their_keys():
    from dcl_core import parse_losses

    torch.manual_seed(0)
    model = build_model(apply_loss_settings(make_cfg(), parse_losses(SMALL_CM))).train()
    head = model.roi_heads.mask_head
    assert head.contrast_loss is None
    seen = {}
    head.extra_losses["contrastmask"].register_forward_pre_hook(
        lambda module, args: seen.update(n=len(args)))
    from detectron2.utils.events import EventStorage

    with EventStorage(0):
        losses = model(batch())
    assert set(losses) >= {"loss_mask", "loss_contrastmask"} and "loss_contrast" not in losses
    assert seen["n"] == 2  # features and gt masks: ContrastMask takes no mask logits
    # not detached: its gradient alone reaches the mask head's convolutions
    losses["loss_contrastmask"].backward()
    assert head.deconv.weight.grad.abs().sum() > 0
    # A DCL model's state_dict keys are those of before the multi-loss head (old checkpoints load).
    dcl = build_model(make_cfg(*DCL)).roi_heads.mask_head
    assert dcl.extra_losses is None
    assert not any(k.startswith("extra_losses") for k in dcl.state_dict())


def test_mask_logits_reach_a_loss_that_asks_for_them():
    from dcl_detectron2.mask_head import roi_mask_logits

    torch.manual_seed(0)
    model = build_model(make_cfg(*DCL)).train()
    head = model.roi_heads.mask_head
    seen = {}

    class Spy(torch.nn.Module):
        uses_mask_logits = True

        def forward(self, features, gt_masks, mask_logits=None):
            seen["logits"] = mask_logits
            return features.sum() * 0.0

    head.extra_losses = torch.nn.ModuleDict({"spy": Spy()})
    losses, _ = train_step(model, batch())
    assert "loss_spy" in losses
    logits = seen["logits"]
    assert logits is not None and logits.shape[1:] == (28, 28)
    # class-specific logits: each RoI's channel of its gt class
    inst = Instances((8, 8))
    inst.gt_classes = torch.tensor([1, 0])
    full = torch.arange(2 * 2 * 4).float().reshape(2, 2, 2, 2)
    assert torch.equal(roi_mask_logits(full, [inst]), torch.stack([full[0, 1], full[1, 0]]))
