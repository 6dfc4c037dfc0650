"""SparseInst against the official code (hustvl/SparseInst): its numbers, its checkpoints, its
config files.

Golden fixtures (``tests/data/official/sparseinst_*``; provenance in
``tests/data/official/README.md``): the official code at commit ``a89901534dd8`` was run outside
this project (detectron2 v0.5, CPU, one thread), end to end (preprocessing, encoder, decoder,
Hungarian matcher, criterion, inference), on a tiny configuration: a 3-conv backbone (res3/4/5
at strides 8/16/32 with 8/16/32 channels, defined here and in the generator, because a ResNet
would make the fixture megabytes; detectron2's ResNet is shared code), 16 encoder channels,
6 queries, 3 classes, D = 8, 2 convs of 16 channels per branch; G-IAM (official
``GroupIAMDecoder``) and IAM (``BaseIAMDecoder``). Weights: official init with
``torch.manual_seed(0)``, then every parameter + 0.05 N(0, 1) (generator seed 1). Inputs: two
uint8 RGB images (48 x 72 with 2 instances, output size 60 x 90; 40 x 40 with 1 instance),
random pixels (seed 0) with elliptical instances. The official state dicts were renamed with
``convert_official_sparseinst.py`` into the weight files, which hold this project's names.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("detectron2")

from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.modeling import BACKBONE_REGISTRY, Backbone, build_model  # noqa: E402
from detectron2.structures import BitMasks, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import dcl_detectron2  # noqa: E402,F401  (registers SparseInst)
from dcl_detectron2 import add_project_config  # noqa: E402
from dcl_detectron2.sparseinst.official_config import (  # noqa: E402
    merge_config_file, translate_official_keys, translate_official_opts)
from detectron2.config import get_cfg  # noqa: E402
from detectron2_inputs import project_cfg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "official"
CONFIGS = REPO / "baselines" / "detectron2" / "configs"
COCO = CONFIGS / "coco" / "sparseinst_R_50.yaml"
COCO_IAM = CONFIGS / "coco" / "sparseinst_R_50_iam.yaml"
CONVERTER = REPO / "baselines" / "detectron2" / "tools" / "convert_official_sparseinst.py"
VARIANTS = {"giam": 4, "iam": 1}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _converter():
    spec = importlib.util.spec_from_file_location("convert_official_sparseinst", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the tiny golden model --------------------------------------------------------------------

class TinyBackbone(Backbone):
    """The golden run's backbone: three strided 3x3 convs + ReLU (res3, res4, res5)."""

    def __init__(self):
        super().__init__()
        self.res3 = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.res4 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.res5 = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1)

    def forward(self, x):
        c3 = F.relu(self.res3(x))
        c4 = F.relu(self.res4(c3))
        return {"res3": c3, "res4": c4, "res5": F.relu(self.res5(c4))}

    def output_shape(self):
        return {name: ShapeSpec(channels=c, stride=s)
                for name, c, s in (("res3", 8, 8), ("res4", 16, 16), ("res5", 32, 32))}


def build_tiny_golden_backbone(cfg, input_shape):
    return TinyBackbone()


if "build_tiny_golden_backbone" not in BACKBONE_REGISTRY:
    BACKBONE_REGISTRY.register(build_tiny_golden_backbone)


def golden_model(variant):
    """This project's SparseInst at the golden configuration, with the fixture's weights."""
    cfg = project_cfg(
        COCO, "MODEL.BACKBONE.NAME", "build_tiny_golden_backbone", "MODEL.WEIGHTS", "",
        "MODEL.ROI_HEADS.NUM_CLASSES", "3", "MODEL.SPARSE_INST.ENCODER.NUM_CHANNELS", "16",
        "MODEL.SPARSE_INST.DECODER.NUM_MASKS", "6", "MODEL.SPARSE_INST.DECODER.KERNEL_DIM", "8",
        "MODEL.SPARSE_INST.DECODER.INST.DIM", "16", "MODEL.SPARSE_INST.DECODER.INST.CONVS", "2",
        "MODEL.SPARSE_INST.DECODER.MASK.DIM", "16", "MODEL.SPARSE_INST.DECODER.MASK.CONVS", "2",
        "MODEL.SPARSE_INST.DECODER.GROUPS", str(VARIANTS[variant]))
    model = build_model(cfg)
    weights = torch.load(DATA / f"sparseinst_{variant}_weights.pth", weights_only=True)["model"]
    model.load_state_dict(weights, strict=True)
    return model


def golden_batch():
    inputs = torch.load(DATA / "sparseinst_inputs.pt", weights_only=True)
    batch = []
    for image, (h, w), classes, masks in zip(inputs["images"], inputs["output_sizes"].tolist(),
                                             inputs["gt_classes"], inputs["gt_masks"]):
        inst = Instances(tuple(image.shape[-2:]))
        inst.gt_classes, inst.gt_masks = classes, BitMasks(masks)
        inst.gt_boxes = BitMasks(masks).get_bounding_boxes()
        batch.append({"image": image, "height": h, "width": w, "instances": inst})
    return batch


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden_raw_outputs_equal_the_official_code(variant):
    """Class logits [2, 6, 3], objectness [2, 6, 1] and mask logits [2, 6, 16, 24]."""
    model, batch = golden_model(variant), golden_batch()
    expected = torch.load(DATA / f"sparseinst_{variant}_expected.pt", weights_only=True)
    model.eval()
    with torch.no_grad():
        images = model.preprocess_image(batch)
        out = model.decoder(model.encoder(model.backbone(images.tensor)))
    for ours, theirs in (("logits", "logits"), ("objectness", "objectness"), ("masks", "masks")):
        torch.testing.assert_close(out[ours], expected[theirs], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden_training_losses_equal_the_official_code(variant):
    """Matcher and all four weighted losses (official ``loss_ce`` is ``loss_cls`` here)."""
    model, batch = golden_model(variant), golden_batch()
    expected = torch.load(DATA / f"sparseinst_{variant}_expected.pt", weights_only=True)["losses"]
    model.train()
    with EventStorage(0):
        losses = model(batch)
    names = {"loss_ce": "loss_cls", "loss_dice": "loss_dice", "loss_mask": "loss_mask",
             "loss_objectness": "loss_objectness"}
    assert set(losses) == set(names.values()) and set(expected) == set(names)
    for theirs, ours in names.items():
        torch.testing.assert_close(losses[ours], expected[theirs], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden_inference_equals_the_official_code(variant):
    """Scores, classes and binary masks at the requested output size (60 x 90, 40 x 40).

    The official code keeps the query order; this one sorts by score: compared sorted.
    """
    model, batch = golden_model(variant), golden_batch()
    expected = torch.load(DATA / f"sparseinst_{variant}_expected.pt", weights_only=True)
    model.eval()
    with torch.no_grad():
        results = model(batch)
    for i, result in enumerate(results):
        inst = result["instances"]
        order = torch.argsort(expected["pred_scores"][i], descending=True, stable=True)
        torch.testing.assert_close(inst.scores, expected["pred_scores"][i][order],
                                   rtol=1e-5, atol=1e-6)
        assert torch.equal(inst.pred_classes, expected["pred_classes"][i][order])
        assert inst.pred_masks.shape == expected["pred_masks"][i].shape
        assert torch.equal(inst.pred_masks, expected["pred_masks"][i][order])


# --- checkpoint conversion ---------------------------------------------------------------------

def official_state(variant):
    """Zero tensors with the names and shapes of the official paper-scale model (R-50, 80
    classes), as listed by instantiating the official code (fixture)."""
    keys = json.loads((DATA / f"official_sparseinst_r50_{variant}_keys.json").read_text())
    return {name: torch.zeros(shape) for name, shape in keys.items()}


@pytest.mark.parametrize("variant,config", [("giam", COCO), ("iam", COCO_IAM)])
def test_converted_official_checkpoint_loads_strictly_at_paper_scale(variant, config, tmp_path):
    conv = _converter()
    state = official_state(variant)
    assert len(state) == {"giam": 317, "iam": 315}[variant]
    src = tmp_path / "official.pth"
    torch.save({"model": state, "iteration": 270000}, src)
    out = tmp_path / "ours.pth"
    assert conv.main([str(src), str(out)]) == 0
    converted = torch.load(out, weights_only=True)["model"]
    model = build_model(project_cfg(config, "MODEL.ROI_HEADS.NUM_CLASSES", "80"))
    model.load_state_dict(converted, strict=True)
    renamed = {k for k in state if k not in converted}
    assert len(renamed) == {"giam": 38, "iam": 36}[variant]
    # Coarse-to-fine lists reversed: the official level 0 is res5 (2048 input channels).
    assert converted["encoder.lateral_convs.2.weight"].shape[1] == 2048
    assert converted["encoder.lateral_convs.0.weight"].shape[1] == 512
    assert conv.decoder_settings(state)["GROUPS"] == VARIANTS[variant]


def test_converter_names_the_key_it_cannot_place(tmp_path, capsys):
    conv = _converter()
    state = official_state("giam")
    with pytest.raises(conv.ConversionError, match=r"cannot place backbone\.patch_embed1"):
        conv.convert({**state, "backbone.patch_embed1.proj.weight": torch.zeros(1)})
    with pytest.raises(conv.ConversionError, match="odd index"):
        conv.convert({**state, "decoder.mask_branch.mask_convs.1.weight": torch.zeros(1)})
    with pytest.raises(conv.ConversionError, match="not a SparseInst checkpoint"):
        conv.convert({"backbone.stem.conv1.weight": torch.zeros(1)})
    src = tmp_path / "official.pth"
    torch.save({"model": {**state, "decoder.extra.weight": torch.zeros(2)}}, src)
    assert conv.main([str(src), str(tmp_path / "o.pth")]) == 1
    err = capsys.readouterr().err
    assert err == "error: cannot place decoder.extra.weight (2,): not a key of a SparseInst " \
                  "(hustvl/SparseInst, ResNet backbone)\n"
    assert not (tmp_path / "o.pth").exists()


def test_softmax_bias_of_the_softmax_variant_is_dropped():
    conv = _converter()
    state = official_state("giam")
    converted, settings = conv.convert({**state, "decoder.inst_branch.softmax_bias": torch.ones(1)})
    assert settings == {"GROUPS": 4, "IAM_ACTIVATION": "softmax"}
    assert not any("softmax" in k for k in converted)


# --- official config files ---------------------------------------------------------------------

# The official keys (hustvl/SparseInst sparseinst/config.py and configs/Base-SparseInst.yaml)
# that differ from this project's, with the official values.
OFFICIAL_YAML = """
MODEL:
  META_ARCHITECTURE: "SparseInst"
  SPARSE_INST:
    MAX_DETECTIONS: 100
    DATASET_MAPPER: "SparseInstDatasetMapper"
    ENCODER:
      NAME: "InstanceContextEncoder"
      IN_FEATURES: ["res3", "res4", "res5"]
    DECODER:
      NAME: "GroupIAMDecoder"
      NUM_CLASSES: 80
      OUTPUT_IAM: False
    LOSS:
      NAME: "SparseInstCriterion"
      ITEMS: ("labels", "masks")
    MATCHER:
      NAME: "SparseInstMatcher"
      ALPHA: 0.8
      BETA: 0.2
  PVT:
    NAME: "b1"
SOLVER:
  OPTIMIZER: "ADAMW"
  BACKBONE_MULTIPLIER: 1.0
  AMSGRAD: False
VERSION: 2
"""


def test_official_config_keys_merge_translated(tmp_path):
    path = tmp_path / "official.yaml"
    path.write_text(OFFICIAL_YAML)
    cfg = add_project_config(get_cfg())
    notes = merge_config_file(cfg, str(path))
    node = cfg.MODEL.SPARSE_INST
    assert node.DECODER.GROUPS == 4 and node.DECODER.IAM_ACTIVATION == "sigmoid"
    assert node.IN_FEATURES == ["res3", "res4", "res5"]
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 80
    assert any("DECODER.NAME GroupIAMDecoder -> DECODER.GROUPS 4" in n for n in notes)
    # The project's own files merge exactly as detectron2 merges them.
    plain, ours = add_project_config(get_cfg()), add_project_config(get_cfg())
    plain.merge_from_file(str(COCO))
    assert merge_config_file(ours, str(COCO)) == [] and ours == plain


def test_official_decoder_names_and_overrides():
    tree, _ = translate_official_keys({"MODEL": {"SPARSE_INST": {"DECODER": {
        "NAME": "BaseIAMDecoder", "GROUPS": 4}}}})
    assert tree["MODEL"]["SPARSE_INST"]["DECODER"]["GROUPS"] == 1
    tree, _ = translate_official_keys({"MODEL": {"SPARSE_INST": {"DECODER": {
        "NAME": "GroupIAMSoftDecoder"}}}})
    assert tree["MODEL"]["SPARSE_INST"]["DECODER"] == {"GROUPS": 4, "IAM_ACTIVATION": "softmax"}
    opts, notes = translate_official_opts(["MODEL.SPARSE_INST.DECODER.NAME", "BaseIAMDecoder",
                                           "SOLVER.MAX_ITER", "10"])
    assert opts == ["SOLVER.MAX_ITER", "10", "MODEL.SPARSE_INST.DECODER.GROUPS", "1",
                    "MODEL.SPARSE_INST.DECODER.IAM_ACTIVATION", "sigmoid"]
    assert len(notes) == 1


@pytest.mark.parametrize("key,value,message", [
    ("MODEL.SPARSE_INST.DECODER.NAME", "FancyDecoder", "DECODER.NAME 'FancyDecoder': not one of"),
    ("MODEL.SPARSE_INST.MATCHER.BETA", "0.5", "MATCHER.BETA 0.5: the matching cost here uses"),
    ("SOLVER.AMSGRAD", "True", "SOLVER.AMSGRAD True: only False is implemented"),
    ("MODEL.SPARSE_INST.ENCODER.NAME", "FPNPPMEncoder", "ENCODER.NAME 'FPNPPMEncoder'"),
])
def test_official_values_without_a_counterpart_fail_in_one_line(key, value, message):
    with pytest.raises(ValueError, match=message) as err:
        translate_official_opts([key, value])
    assert "\n" not in str(err.value)


def test_train_net_reads_an_official_config_file_and_override(tmp_path, capsys):
    from detectron2.engine import default_argument_parser

    from dcl_detectron2.engine import add_run_arguments, setup

    parser = add_run_arguments(default_argument_parser())
    path = tmp_path / "official.yaml"
    path.write_text(OFFICIAL_YAML)
    args = parser.parse_args(["--config-file", str(path), "OUTPUT_DIR", str(tmp_path / "out"),
                              "MODEL.SPARSE_INST.DECODER.NAME", "BaseIAMDecoder"])
    cfg = setup(args)
    assert cfg.MODEL.SPARSE_INST.DECODER.GROUPS == 1  # the override's IAM wins over the file
    assert "official SparseInst key: MODEL.SPARSE_INST.DECODER.NAME BaseIAMDecoder" in \
        capsys.readouterr().out
    bad = parser.parse_args(["--config-file", str(path), "SOLVER.AMSGRAD", "True"])
    with pytest.raises(SystemExit, match="error: command-line override: SOLVER.AMSGRAD True"):
        setup(bad)
