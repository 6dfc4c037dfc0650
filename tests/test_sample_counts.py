"""Sample counts that no RoI can satisfy are refused when the model is built (one line from the
scripts), and a run whose RoIs stay all invalid says so."""

from __future__ import annotations

import itertools
import logging
import sys

import pytest
import torch

from bad_inputs import MMDET_DIR, REPO, run_script, tiny_coco
from dcl_core.monitor import ValidRoIWatch
from dcl_core.sampling import InfeasibleSamplingError, check_counts_fit, sample_pixels

D2_CONFIGS = REPO / "baselines" / "detectron2" / "configs"
K = "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS."
DCL = ["MODEL.ROI_HEADS.NAME", "ContrastRoIHeads",
       "MODEL.ROI_MASK_HEAD.NAME", "ContrastConvUpsampleHead"]


# ------------------------------------------------------------------------- the rule (dcl_core)
@pytest.mark.parametrize("height, width", [(1, 3), (2, 2), (3, 3), (2, 5)])
def test_the_feasibility_rule_agrees_with_the_validity_rule_exhaustively(height, width):
    hw = height * width
    # Every foreground size a RoI can have at this resolution.
    masks = torch.arange(hw).expand(hw + 1, hw) < torch.arange(hw + 1)[:, None]
    masks = masks.reshape(hw + 1, height, width)
    for a, p, n in itertools.product(range(1, hw + 1), repeat=3):
        some_valid = bool(sample_pixels(masks, 1, num_anchors=a, num_positives=p,
                                        num_negatives=n).valid.any())
        if some_valid:
            check_counts_fit(a, p, n, height, width)
        else:
            with pytest.raises(InfeasibleSamplingError):
                check_counts_fit(a, p, n, height, width)


def test_k_400_at_28x28_is_refused_in_one_line_naming_the_limit():
    check_counts_fit(391, 391, 391, 28, 28)  # |fg| = 392 is valid
    with pytest.raises(InfeasibleSamplingError) as err:
        check_counts_fit(400, 400, 400, 28, 28)
    assert str(err.value) == (
        "K=400 leaves no valid RoI at 28x28: a RoI needs max(|A|, |P|) < |fg| < H*W - |N|, so "
        "max(|A|, |P|) + |N| must be <= 782 (K <= 391)")
    with pytest.raises(InfeasibleSamplingError, match=r"^\|A\|=16, \|P\|=16, \|N\|=767 leaves"):
        check_counts_fit(16, 16, 767, 28, 28)
    check_counts_fit(16, 16, 766, 28, 28)
    assert issubclass(InfeasibleSamplingError, ValueError)


def test_the_watch_warns_after_many_all_invalid_iterations_and_then_rarely(caplog):
    watch = ValidRoIWatch(patience=3)
    with caplog.at_level(logging.WARNING, logger="dcl_core.monitor"):
        said = [watch.update(5, torch.tensor(0)) for _ in range(13)]
    assert [i + 1 for i, m in enumerate(said) if m] == [3, 6, 12]  # then at each doubling
    assert len(caplog.records) == 3 and "\n" not in caplog.records[0].getMessage()
    assert caplog.records[0].getMessage().startswith(
        "loss_contrast: no valid RoI for 3 iterations in a row")
    # A batch without RoIs neither extends nor ends the streak; one valid RoI ends it.
    assert watch.update(0, 0) is None and watch.streak == 13
    assert watch.update(5, 1) is None and watch.streak == 0
    assert [watch.update(5, 0) for _ in range(3)][-1] is not None  # patience again, not 24
    with pytest.raises(ValueError, match="patience"):
        ValidRoIWatch(patience=0)


# ------------------------------------------------------------------------- detectron2
def _d2_cfg(config, *opts):
    pytest.importorskip("detectron2")
    from detectron2_inputs import project_cfg

    return project_cfg(config, *opts)


def test_mask_rcnn_refuses_counts_its_28x28_head_cannot_satisfy_at_build():
    from detectron2.modeling import build_model

    import dcl_detectron2  # noqa: F401  (registers the heads)

    mask_rcnn = D2_CONFIGS / "embedded" / "mask_rcnn_R_18_FPN.yaml"
    with pytest.raises(InfeasibleSamplingError, match=r"^K=400 leaves no valid RoI at 28x28"):
        build_model(_d2_cfg(mask_rcnn, *DCL, K + "NUM_SAMPLES", "400"))
    with pytest.raises(InfeasibleSamplingError, match=r"\|N\|=760 leaves no valid RoI at 28x28"):
        build_model(_d2_cfg(mask_rcnn, *DCL, K + "NUM_NEGATIVES", "760"))
    # A smaller pooler halves the side the loss sees.
    with pytest.raises(InfeasibleSamplingError, match="at 14x14"):
        build_model(_d2_cfg(mask_rcnn, *DCL, K + "NUM_SAMPLES", "100",
                            "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", "7"))
    # lambda = 0 builds no loss, so nothing to check.
    build_model(_d2_cfg(mask_rcnn, *DCL, K + "NUM_SAMPLES", "400", K + "LOSS_WEIGHT", "0.0"))


def test_sparseinst_refuses_counts_its_roi_pooler_cannot_satisfy_at_build():
    from detectron2.modeling import build_model

    import dcl_detectron2  # noqa: F401

    sparseinst = D2_CONFIGS / "embedded" / "sparseinst_R_18.yaml"
    node = "MODEL.SPARSE_INST.CONTRAST_LOSS."
    with pytest.raises(InfeasibleSamplingError, match=r"^K=200 leaves no valid RoI at 14x14"):
        build_model(_d2_cfg(sparseinst, node + "LOSS_WEIGHT", "1.0", node + "NUM_SAMPLES", "200",
                            node + "POOLER_RESOLUTION", "14"))


def test_a_mask_rcnn_whose_rois_are_never_valid_warns(caplog):
    from detectron2.modeling import build_model

    import dcl_detectron2  # noqa: F401
    from detectron2_inputs import batch, train_step

    torch.manual_seed(0)
    # K = 391 fits 28 x 28 only for |fg| = 392 exactly: the synthetic RoIs are all invalid.
    model = build_model(_d2_cfg(D2_CONFIGS / "embedded" / "mask_rcnn_R_18_FPN.yaml", *DCL,
                                K + "NUM_SAMPLES", "391"))
    model.roi_heads.valid_roi_watch = ValidRoIWatch(patience=1)
    with caplog.at_level(logging.WARNING, logger="dcl_core.monitor"):
        _, storage = train_step(model, batch(num_images=1))
    assert storage.latest()["contrast/num_valid_rois"][0] == 0
    assert any("no valid RoI for 1 iterations" in r.getMessage() for r in caplog.records)


def test_train_net_refuses_k_400_in_one_line_before_training(tmp_path):
    pytest.importorskip("detectron2")
    result = run_script(REPO / "baselines/detectron2/train_net.py", "--config-file",
                        D2_CONFIGS / "embedded" / "mask_rcnn_R_18_FPN_dcl.yaml",
                        K + "NUM_SAMPLES", "400", "DATASETS.TRAIN", "()", "DATASETS.TEST", "()",
                        "OUTPUT_DIR", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: K=400 leaves no valid RoI at 28x28")
    assert not list((tmp_path / "out").glob("*.pth"))


# ------------------------------------------------------------------------- mmdetection
def test_refinemask_refuses_counts_its_first_stage_cannot_satisfy_at_build():
    pytest.importorskip("mmcv")
    sys.path.insert(0, str(MMDET_DIR))
    from dcl_mmdet.refinemask_head import RefineMaskHead

    small = dict(num_classes=2, in_channels=32, instance_channels=32, semantic_channels=16,
                 num_convs_semantic=1)
    with pytest.raises(InfeasibleSamplingError, match=r"^K=400 leaves no valid RoI at 28x28"):
        RefineMaskHead(**small, loss_contrast=dict(loss_weight=1.0, num_samples=400))
    with pytest.raises(InfeasibleSamplingError, match="at 56x56"):
        RefineMaskHead(**small, stage_sizes=(28, 56, 112), stage_loss_weights=(0.5, 0.75, 1.0),
                       loss_contrast=dict(loss_weight=1.0, num_samples=1600))
    RefineMaskHead(**small, loss_contrast=dict(loss_weight=0.0, num_samples=400))


def test_mmdet_train_refuses_k_400_in_one_line(tmp_path):
    pytest.importorskip("mmcv")
    work = tmp_path / "work"
    result = run_script(MMDET_DIR / "train.py", MMDET_DIR / "configs/embedded/refinemask_r18_fpn_dcl.py",
                        "--work-dir", work, "--train-data", f"{tiny_coco(tmp_path)}:{tmp_path}",
                        "--cfg-options", "model.roi_head.mask_head.loss_contrast.num_samples=400")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: K=400 leaves no valid RoI at 28x28")
    assert not list(work.glob("*.pth"))
