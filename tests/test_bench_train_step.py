"""bench/bench_train_step.py and the synthetic inputs it trains on."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from dcl_detectron2.synthetic import synthetic_batch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "baselines" / "detectron2" / "configs" / "embedded"


def test_synthetic_batch_targets_follow_the_painted_ellipses():
    batch = synthetic_batch(3, 64, 96, num_classes=5, instances_per_image=4, seed=1)
    assert len(batch) == 3
    for x in batch:
        inst = x["instances"]
        assert x["image"].shape == (3, 64, 96) and x["image"].dtype == torch.float32
        assert (x["height"], x["width"]) == (64, 96) and inst.image_size == (64, 96)
        masks = inst.gt_masks.tensor
        assert masks.shape == (4, 64, 96) and masks.dtype == torch.bool and masks.any((1, 2)).all()
        assert inst.gt_classes.dtype == torch.int64 and inst.gt_classes.max() < 5
        painted = (x["image"] == 200.0).all(0)
        assert torch.equal(painted, masks.any(0))  # noise stays below 60
        for m, (x0, y0, x1, y1) in zip(masks, inst.gt_boxes.tensor.tolist()):
            ys, xs = np.nonzero(m.numpy())
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    again = synthetic_batch(3, 64, 96, num_classes=5, instances_per_image=4, seed=1)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(batch, again))
    other = synthetic_batch(3, 64, 96, num_classes=5, instances_per_image=4, seed=2)
    assert not torch.equal(batch[0]["instances"].gt_masks.tensor,
                           other[0]["instances"].gt_masks.tensor)


def test_synthetic_batch_fixed_ellipses_and_bad_arguments():
    fixed = synthetic_batch(2, 50, ellipses=[(25, 25, 10, 5, 1)])
    for x in fixed:
        assert x["instances"].gt_classes.tolist() == [1]
        assert x["instances"].gt_boxes.tensor.tolist() == [[20.0, 15.0, 31.0, 36.0]]
    with pytest.raises(ValueError, match="class must be in"):
        synthetic_batch(1, 50, ellipses=[(25, 25, 10, 5, 2)], num_classes=2)
    with pytest.raises(ValueError, match="instances_per_image"):
        synthetic_batch(1, 50, instances_per_image=0)
    with pytest.raises(ValueError, match=">= 1"):
        synthetic_batch(0, 50)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train_step",
                                                  REPO / "bench" / "bench_train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("config", ["mask_rcnn_R_18_FPN.yaml", "mask_rcnn_swin_T_FPN.yaml",
                                    "sparseinst_R_18.yaml"])
def test_bench_times_each_detectron2_model_with_and_without_dcl(bench, config, tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main(["--config", str(CONFIGS / config), "--device", "cpu", "--images", "1",
                       "--size", "96", "128", "--warmup", "1", "--iters", "1", "--threads", "1",
                       "--lambda", "1.0", "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    base, dcl = summary["baseline"], summary["dcl"]
    assert "loss_contrast" in dcl["losses"] and "loss_contrast" not in base["losses"]
    assert base["steps"] == dcl["steps"] == 1
    assert base["peak_mem_kind"] == "cpu_peak_rss" and summary["gpu"] is None
    for key in ("step_time_ratio", "peak_mem_ratio"):
        assert math.isfinite(summary[key]) and summary[key] > 0
