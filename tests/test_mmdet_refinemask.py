"""The mmdetection plug-in dcl_mmdet: RefineMask's parts (BAR, SFM, heads), the dense
contrastive loss inside a real training step, the train/predict scripts on the embedded data,
and the mmcv install script's pure parts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MMDET_DIR = REPO / "baselines" / "mmdet"
CONFIGS = MMDET_DIR / "configs"
EMBEDDED = CONFIGS / "embedded" / "refinemask_r18_fpn.py"
EMBEDDED_DCL = CONFIGS / "embedded" / "refinemask_r18_fpn_dcl.py"

pytest.importorskip("mmcv")

sys.path.insert(0, str(MMDET_DIR))  # dcl_mmdet without an installed copy, as the scripts do
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import dcl_mmdet  # noqa: E402
from dcl_core import DenseContrastiveLoss  # noqa: E402
from dcl_mmdet.bar import bar_stage_losses, boundary_region, merge_boundary  # noqa: E402
from dcl_mmdet.contrast import build_contrast_loss  # noqa: E402
from dcl_mmdet.refinemask_head import RefineMaskHead  # noqa: E402

register_all_modules()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- BAR
def test_boundary_region_of_a_square():
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 3:7, 3:7] = True
    region = boundary_region(mask, 1)[0]
    # 12 outer pixels of the 4x4 square + the 20 background pixels around it
    assert int(region.sum()) == 32
    assert not region[4:6, 4:6].any() and not region[0].any()
    # Paper rule at width 2: the whole 8 x 8 square around it.
    assert int(boundary_region(mask, 2, rule="distance")[0].sum()) == 16 + (8 * 8 - 16)
    # Authors' rule (> 10% = at least 3 of 25 window pixels of the other label): without the
    # three pixels at each outer corner, whose window sees only 1 or 2 of the square's pixels.
    fraction = boundary_region(mask, 2)[0]
    assert int(fraction.sum()) == 64 - 4 * 3
    assert not fraction[1, 1] and not fraction[1, 2] and not fraction[2, 1] and fraction[2, 2]


def test_boundary_rules_agree_at_width_one():
    torch.manual_seed(0)
    masks = torch.rand(6, 12, 12) > 0.5
    assert torch.equal(boundary_region(masks, 1), boundary_region(masks, 1, rule="distance"))
    with pytest.raises(ValueError, match="boundary rule"):
        boundary_region(masks, 1, rule="laplacian")


def test_boundary_region_counts_the_roi_edge_as_background():
    full = torch.ones(1, 5, 5, dtype=torch.bool)
    region = boundary_region(full, 1)[0]
    assert int(region.sum()) == 16 and not region[1:4, 1:4].any()


def test_boundary_region_rejects_bad_input():
    with pytest.raises(ValueError, match="bool"):
        boundary_region(torch.zeros(1, 4, 4), 1)
    with pytest.raises(ValueError, match="width"):
        boundary_region(torch.zeros(1, 4, 4, dtype=torch.bool), 0)


def test_merge_boundary_takes_the_fine_stage_only_on_the_coarse_boundary():
    coarse = torch.full((1, 1, 8, 8), -5.0)
    coarse[0, 0, 2:6, 2:6] = 5.0
    fine = torch.full((1, 1, 16, 16), 42.0)
    merged = merge_boundary(coarse, fine, width=1)
    # As the authors: the non-boundary upsampled bilinearly (align_corners) keeps the coarse.
    inner = ~boundary_region(coarse[:, 0] >= 0, 1)
    keep = torch.nn.functional.interpolate(inner[:, None].float(), size=(16, 16), mode="bilinear",
                                           align_corners=True)[0, 0] >= 0.5
    assert torch.all(merged[0, 0][~keep] == 42.0)
    assert torch.all(merged[0, 0][keep] != 42.0) and keep.any() and (~keep).any()


def test_bar_loss_of_a_high_stage_ignores_pixels_off_the_boundary():
    torch.manual_seed(0)
    sizes = (4, 8, 16)
    target = torch.zeros(1, 16, 16)
    target[0, 4:12, 4:12] = 1.0
    targets = [torch.nn.functional.interpolate(target[None], size=(s, s))[0] for s in sizes]
    logits = [(t * 2 - 1)[:, None] * 3.0 for t in targets]  # correct masks
    base = bar_stage_losses(logits, targets, boundary_width=1, start_stage=1)
    far = [x.clone() for x in logits]
    far[2][0, 0, 7, 7] = -30.0  # deep inside: not in the boundary band
    assert torch.equal(bar_stage_losses(far, targets, 1, 1)[2], base[2])
    near = [x.clone() for x in logits]
    near[2][0, 0, 4, 4] = -30.0  # on the contour
    assert bar_stage_losses(near, targets, 1, 1)[2] > base[2]
    assert bar_stage_losses(far, targets, 1, 1)[1] == base[1]


# ---------------------------------------------------------------- loss config
def test_build_contrast_loss():
    assert build_contrast_loss(None, 64) is None
    assert build_contrast_loss(dict(loss_weight=0.0), 64) is None
    loss = build_contrast_loss(dict(loss_weight=1.4, num_negatives=16), 64)
    assert isinstance(loss, DenseContrastiveLoss)
    assert (loss.loss_weight, loss.num_samples, loss.temperature, loss.max_rois) == (1.4, 32, 0.07, 100)
    assert loss.num_negatives == 16 and loss.projection is not None
    with pytest.raises(ValueError, match="weight_loss"):
        build_contrast_loss(dict(weight_loss=1.0), 64)
    with pytest.raises(ValueError, match="temperature"):
        build_contrast_loss(dict(loss_weight=1.0, temperature=0.0), 64)


def test_loss_option_is_written_into_loss_contrast():
    from dcl_core import DCLSettings
    from dcl_mmdet.runner_setup import CliError, load_config

    def settings(cfg):
        return DCLSettings.from_mapping(cfg.model.roi_head.mask_head.loss_contrast)

    neutral = load_config(str(EMBEDDED), None, ["dcl", "loss_weight=1"])
    assert settings(neutral) == DCLSettings(loss_weight=1.0) == settings(
        load_config(str(EMBEDDED_DCL), None))
    assert not settings(load_config(str(EMBEDDED_DCL), None, ["none"])).enabled
    assert not settings(load_config(str(EMBEDDED), None)).enabled  # the base is the baseline
    # --cfg-options come after --loss, as detectron2's KEY VALUE overrides do.
    key = "model.roi_head.mask_head.loss_contrast.num_samples"
    assert settings(load_config(str(EMBEDDED), {key: 16}, ["dcl"])).num_samples == 16
    with pytest.raises(CliError, match=r"^--loss: unknown key\(s\) \['lambda'\]"):
        load_config(str(EMBEDDED), None, ["dcl", "lambda=1"])


def test_seed_option_is_written_into_randomness_before_the_cfg_options():
    from dcl_mmdet.runner_setup import load_config

    assert load_config(str(EMBEDDED), None).randomness.seed == 0  # the config's own
    assert load_config(str(EMBEDDED), None, None, 3).randomness.seed == 3
    assert load_config(str(EMBEDDED), {"randomness.seed": 5}, None, 3).randomness.seed == 5


# ---------------------------------------------------------------- head shapes
def test_refinemask_head_stage_shapes_and_contrast_features():
    head = RefineMaskHead(num_classes=3, in_channels=32, instance_channels=32, semantic_channels=16,
                          num_convs_semantic=1, loss_contrast=dict(loss_weight=1.0))
    head.init_weights()
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 36.0], [1, 0.0, 8.0, 20.0, 60.0]])
    out = head(torch.randn(2, 32, 14, 14), torch.randn(2, 32, 16, 16), rois, torch.tensor([2, 0]))
    assert [tuple(x.shape) for x in out["stage_logits"]] == [(2, 1, s, s) for s in (14, 28, 56, 112)]
    assert tuple(out["contrast_features"].shape) == (2, 16, 28, 28)
    assert tuple(out["semantic_logits"].shape) == (2, 1, 16, 16)
    assert head.contrast_loss.channels == 16
    assert tuple(head.refine(out["stage_logits"]).shape) == (2, 1, 112, 112)
    with pytest.raises(ValueError, match="double"):
        RefineMaskHead(stage_sizes=(14, 28, 64))
    with pytest.raises(ValueError, match="output_size"):
        head(torch.randn(2, 32, 7, 7), torch.randn(2, 32, 16, 16), rois, torch.tensor([2, 0]))


# ---------------------------------------------------------------- a real training step
def build_model(config=EMBEDDED, num_classes=2):
    cfg = Config.fromfile(str(config))
    cfg.model.roi_head.bbox_head.num_classes = num_classes
    cfg.model.roi_head.mask_head.num_classes = num_classes
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_paper_configs_build_refinemask_with_dcl_on_the_128_channel_first_stage():
    dcl = Config.fromfile(str(CONFIGS / "cityscapes" / "refinemask_r50_fpn_dcl.py"))
    base = Config.fromfile(str(CONFIGS / "cityscapes" / "refinemask_r50_fpn.py"))
    assert dcl.model.backbone.init_cfg.type == "Pretrained"  # a local path, never a URL
    assert "://" not in dcl.model.backbone.init_cfg.checkpoint
    assert dcl.train_dataloader.batch_size == 1 and dcl.randomness.seed == 0
    assert dcl.train_dataloader.dataset.times * dcl.train_cfg.max_epochs == 64
    head = MODELS.build(dcl.model.roi_head.mask_head)
    assert [stage.expand.out_channels + 2 for stage in head.stages] == [128, 64, 32]
    assert head.num_classes == 8 and head.stage_sizes == [14, 28, 56, 112]
    assert head.contrast_loss.channels == 128 and head.contrast_loss.loss_weight == 1.0
    assert (head.contrast_loss.num_samples, head.contrast_loss.temperature) == (32, 0.07)
    assert MODELS.build(base.model.roi_head.mask_head).contrast_loss is None


def synthetic_batch(h=96, w=128):
    """One image with two large discs (valid RoIs for K = 32), gt boxes as proposals."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    img = rng.integers(0, 60, size=(3, h, w)).astype(np.uint8)
    masks, boxes = [], []
    for cy, cx, r in ((35, 40, 24), (60, 92, 26)):
        m = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[:, m] = 200
        ys, xs = np.nonzero(m)
        masks.append(m.astype(np.uint8))
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    sample = DetDataSample(metainfo=dict(img_id=0, img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32), labels=torch.tensor([0, 1]),
        masks=BitmapMasks(np.stack(masks), h, w))
    return dict(inputs=[torch.from_numpy(img)], data_samples=[sample])


def losses_of(model):
    model.train()
    data = model.data_preprocessor(synthetic_batch(), training=True)
    return model(**data, mode="loss")


def test_dcl_loss_in_a_training_step_backpropagates_into_the_first_stage_and_projection():
    model = build_model(EMBEDDED_DCL)
    head = model.roi_head.mask_head
    assert isinstance(head.contrast_loss, DenseContrastiveLoss) and head.contrast_loss.loss_weight == 1.0
    losses = losses_of(model)
    for key in ("loss_mask", "loss_semantic", "loss_contrast"):
        assert key in losses and torch.isfinite(losses[key]), key
    assert float(losses["contrast_valid_rois"]) >= 2  # the two gt boxes at least
    assert float(losses["loss_contrast"]) > 0
    model.zero_grad()
    losses["loss_contrast"].backward()
    first = head.stages[0]
    for name, param in [("stage0.reduce", first.reduce.weight), ("stage0.expand", first.expand.weight),
                        ("projection", head.contrast_loss.projection[0].weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # DCL acts on the first stage's output: later stages get no gradient from it.
    assert head.final_logits.weight.grad is None or head.final_logits.weight.grad.abs().sum() == 0


def test_baseline_builds_no_contrast_loss_and_returns_none():
    model = build_model(EMBEDDED)
    assert model.roi_head.mask_head.contrast_loss is None
    assert not any("contrast" in k for k in model.state_dict())
    losses = losses_of(model)
    assert "loss_contrast" not in losses and "loss_mask" in losses and "loss_semantic" in losses
    total, _ = model.parse_losses(losses)
    total.backward()
    assert model.roi_head.mask_head.final_logits.weight.grad.abs().sum() > 0


def test_prediction_pastes_masks_at_the_original_size():
    model = build_model(EMBEDDED).eval()
    batch = synthetic_batch()
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=False)
        (result,) = model(**data, mode="predict")
    pred = result.pred_instances
    assert pred.masks.dtype == torch.bool and tuple(pred.masks.shape[1:]) == (96, 128)
    assert len(pred.masks) == len(pred.bboxes) == len(pred.scores)


def test_results_writer_keeps_every_instance_of_every_image(tmp_path):
    from mmengine.evaluator import Evaluator
    import pycocotools.mask as mask_util

    out = tmp_path / "results.json"
    evaluator = Evaluator([dcl_mmdet.CocoResultsWriter(str(out), category_ids=[7, 3])])
    samples = []
    for img_id in (11, 12):
        masks = torch.zeros(2, 20, 30, dtype=torch.bool)
        masks[0, 2:5, 3:9] = True
        masks[1, 10:20, 0:4] = True
        sample = DetDataSample(metainfo=dict(img_id=img_id))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([[3.0, 2.0, 9.0, 5.0], [0.0, 10.0, 4.0, 20.0]]),
            scores=torch.tensor([0.9, 0.4]), labels=torch.tensor([1, 0]), masks=masks)
        samples.append(sample)
    evaluator.process(samples)
    assert evaluator.evaluate(2) == {"predictions/count": 4.0}
    results = json.loads(out.read_text())
    assert [(r["image_id"], r["category_id"]) for r in results] == [(11, 3), (11, 7), (12, 3), (12, 7)]
    assert results[0]["bbox"] == [3.0, 2.0, 6.0, 3.0] and results[0]["score"] == pytest.approx(0.9)
    rle = dict(results[1]["segmentation"], counts=results[1]["segmentation"]["counts"].encode())
    assert mask_util.decode(rle).sum() == 40 and results[1]["segmentation"]["size"] == [20, 30]


def test_data_spec_and_categories(tmp_path):
    from PIL import Image

    from dcl_data import DatasetError
    from dcl_mmdet.data import load_categories, parse_data_arg

    assert parse_data_arg("a:b/c.json:imgs") == (Path("a:b/c.json"), Path("imgs"))
    with pytest.raises(ValueError, match="--val-data 'nocolon'"):
        parse_data_arg("nocolon", "--val-data")
    Image.new("RGB", (8, 6)).save(tmp_path / "x.png")
    data = {"images": [{"id": 5, "file_name": "x.png", "height": 6, "width": 8}],
            "categories": [{"id": 9, "name": "cell"}, {"id": 2, "name": "dog"}],
            "annotations": [{"id": 1, "image_id": 5, "category_id": 2, "bbox": [1, 1, 2, 2],
                             "area": 4, "iscrowd": 0,
                             "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    assert load_categories(tmp_path / "a.json", tmp_path) == (("cell", "dog"), [9, 2])
    data["categories"][1]["name"] = "cell"
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="duplicated names"):
        load_categories(tmp_path / "a.json", tmp_path)


# ---------------------------------------------------------------- install script
def _install_module():
    spec = importlib.util.spec_from_file_location("install_mmdet", REPO / "envs/install_mmdet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_install_script_patches_exactly_the_expected_setup(tmp_path):
    inst = _install_module()
    (tmp_path / "setup.py").write_text("a '-std=c++17'\nb '-std=c++17'\nc '-std=c++17'\nd '-std=c++14'\n")
    inst.patch_setup(tmp_path)
    text = (tmp_path / "setup.py").read_text()
    assert text.count("-std=c++20") == 3 and "c++17" not in text and "-std=c++14" in text
    with pytest.raises(SystemExit, match="not the mmcv 2.1.0 setup.py"):
        inst.patch_setup(tmp_path)  # already patched: refuses
    key = inst.wheel_key()
    assert key.startswith("mmcv-2.1.0-torch-") and torch.__version__.split("+")[0] in key
    assert set(inst.pinned_requirements()) >= {"mmengine", "shapely", "terminaltables"}


# ---------------------------------------------------------------- scripts, end to end
def run_script(*args, timeout=600):
    # This checkout's dcl_core too, whichever copy the environment has installed.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(map(str, (MMDET_DIR, REPO)))}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout)


def test_train_metrics_hook_needs_a_positive_interval():
    from dcl_mmdet import TrainMetricsHook

    with pytest.raises(ValueError, match="interval must be >= 1"):
        TrainMetricsHook(interval=0)


def test_schedule_warnings_catch_a_length_override_the_lr_steps_do_not_follow():
    from dcl_mmdet.runner_setup import load_config, schedule_warnings

    assert schedule_warnings(load_config(str(EMBEDDED), None)) == []
    assert schedule_warnings(load_config(str(CONFIGS / "cityscapes" / "refinemask_r50_fpn.py"),
                                         None)) == []
    # The embedded schedule's own length and LR step, so the test follows its trims.
    base = load_config(str(EMBEDDED), None)
    n, (step,) = base.train_cfg.max_iters, base.param_scheduler[1].milestones
    short = step - 5
    longer = schedule_warnings(load_config(str(EMBEDDED), {"train_cfg.max_iters": 400}))
    assert longer == [f"param_scheduler[1] (MultiStepLR) ends at iteration {n}, before "
                      "train_cfg.max_iters=400: the LR stays where it is from there; override "
                      "its end and milestones too"]
    shorter = schedule_warnings(load_config(str(EMBEDDED), {"train_cfg.max_iters": short}))
    assert shorter == [f"param_scheduler[1] (MultiStepLR) ends at iteration {n}, past "
                       f"train_cfg.max_iters={short}: override its end too",
                       f"param_scheduler[1] (MultiStepLR): milestone(s) [{step}] never reached in "
                       f"{short} iterations: override its milestones too"]
    # Overriding the steps with the length is the fix, and silences it.
    fixed = load_config(str(EMBEDDED), {"train_cfg.max_iters": short})
    fixed.param_scheduler[1].update(end=short, milestones=[short * 3 // 4])
    assert schedule_warnings(fixed) == []
    epochs = load_config(str(CONFIGS / "cityscapes" / "refinemask_r50_fpn.py"),
                         {"train_cfg.max_epochs": 4})
    assert [w.split(":")[0] for w in schedule_warnings(epochs)] == [
        "param_scheduler[1] (MultiStepLR) ends at epoch 8, past train_cfg.max_epochs=4",
        "param_scheduler[1] (MultiStepLR)"]


def test_scripts_give_one_line_errors_for_bad_paths(tmp_path):
    bad = run_script(MMDET_DIR / "train.py", EMBEDDED, "--work-dir", tmp_path,
                     "--train-data", f"{tmp_path}/missing.json:{tmp_path}")
    # Library import warnings may precede it; the error itself is the one last line.
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --train-data:") and "missing.json" in last
    bad = run_script(MMDET_DIR / "train.py", EMBEDDED, "--work-dir", tmp_path,
                     "--train-data", f"{tmp_path}/missing.json:{tmp_path}", "--cfg-options",
                     "model.roi_head.mask_head.loss_contrast.weight=1.0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(
        "error: model.roi_head.mask_head.loss_contrast: unknown key(s) ['weight']")
    bad = run_script(MMDET_DIR / "predict.py", EMBEDDED, tmp_path / "none.pth",
                     "--val-data", "nocolon", "--predictions-out", tmp_path / "p.json")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == f"error: checkpoint not found: {tmp_path / 'none.pth'}"


@pytest.mark.slow
def test_train_resume_and_predict_on_the_embedded_data(tmp_path, embedded_dataset):
    train_json = embedded_dataset / "annotations" / "instances_train.json"
    val_json = embedded_dataset / "annotations" / "instances_val.json"
    work = tmp_path / "run"
    common = [MMDET_DIR / "train.py", EMBEDDED_DCL, "--work-dir", work,
              "--train-data", f"{train_json}:{embedded_dataset / 'train'}",
              "--val-data", f"{val_json}:{embedded_dataset / 'val'}"]
    small = ["train_dataloader.batch_size=2", "default_hooks.checkpoint.interval=2"]
    first = run_script(*common, "--cfg-options", "train_cfg.max_iters=2", *small)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / "model_final.pth").is_file()
    # A longer schedule resumes from iteration 2, trains 2 more, republishes the final model.
    second = run_script(*common, "--resume", "--cfg-options", "train_cfg.max_iters=4", *small)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed" in (second.stdout + second.stderr).lower()
    final = torch.load(work / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["meta"]["iter"] == 4
    cost = json.loads((work / "train_cost.json").read_text())
    assert cost["iterations"] == 2 and cost["framework"] == "mmdetection" and cost["max_iter"] == 4
    assert cost["ims_per_batch"] == 2 and cost["seconds_per_iter"] is None  # all in warm-up
    lines = [json.loads(x) for x in (work / "train_metrics.json").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [1, 3]  # the last iteration of each session
    assert all(np.isfinite(x["loss_contrast"]) and x["loss_contrast"] > 0 for x in lines)
    assert all(np.isfinite(x["loss"]) and x["lr"] > 0 and x["time"] > 0 for x in lines)

    out = tmp_path / "predictions.json"
    pred = run_script(MMDET_DIR / "predict.py", EMBEDDED_DCL, work / "model_final.pth",
                      "--val-data", f"{val_json}:{embedded_dataset / 'val'}", "--predictions-out", out)
    assert pred.returncode == 0, pred.stderr[-3000:]
    results = json.loads(out.read_text())
    gt = json.loads(val_json.read_text())
    assert isinstance(results, list)
    image_ids = {im["id"] for im in gt["images"]}
    category_ids = {c["id"] for c in gt["categories"]}
    sizes = {im["id"]: [im["height"], im["width"]] for im in gt["images"]}
    for r in results:
        assert set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"}
        assert r["image_id"] in image_ids and r["category_id"] in category_ids
        assert isinstance(r["segmentation"]["counts"], str)
        assert r["segmentation"]["size"] == sizes[r["image_id"]]
    assert len(results) <= 100 * len(image_ids)
    if results:
        from pycocotools.coco import COCO
        coco = COCO(str(val_json))
        coco.loadRes(results)  # pycocotools accepts the file
