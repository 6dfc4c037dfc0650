"""The training and prediction scripts refuse arguments that would destroy an input or crash
late: one line on stderr, inputs untouched, nothing written."""

from __future__ import annotations

import pytest

from bad_inputs import MMDET_DIR, REPO, run_script, tiny_coco

D2_CONFIG = REPO / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml"
MMDET_CONFIG = MMDET_DIR / "configs" / "embedded" / "refinemask_r18_fpn.py"


@pytest.mark.parametrize("framework", ["detectron2", "mmdet"])
def test_prediction_scripts_refuse_predictions_over_the_ground_truth(tmp_path, framework):
    pytest.importorskip("detectron2" if framework == "detectron2" else "mmcv")
    gt = tiny_coco(tmp_path)
    before = gt.read_bytes()
    out = tmp_path / "." / "gt.json"
    if framework == "detectron2":
        args = [REPO / "baselines/detectron2/train_net.py", "--eval-only", "--config-file",
                D2_CONFIG, f"--dataset=tiny_val={gt}:{tmp_path}", "--predictions-out", out,
                "DATASETS.TEST", "('tiny_val',)", "OUTPUT_DIR", tmp_path / "out"]
    else:
        import torch

        checkpoint = tmp_path / "model.pth"
        torch.save({"state_dict": {}, "meta": {}}, checkpoint)
        args = [MMDET_DIR / "predict.py", MMDET_CONFIG, checkpoint, "--val-data",
                f"{gt}:{tmp_path}", "--predictions-out", out]
    result = run_script(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --predictions-out {out} is an input of this run ({gt}); write to another file")
    assert gt.read_bytes() == before


def test_mmdet_train_refuses_a_work_dir_that_is_a_file(tmp_path):
    pytest.importorskip("mmcv")
    gt = tiny_coco(tmp_path)
    work = tmp_path / "work"
    work.write_text("a file")
    result = run_script(MMDET_DIR / "train.py", MMDET_CONFIG, "--work-dir", work,
                        "--train-data", f"{gt}:{tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"error: --work-dir {work} is a file, not a folder"
    assert work.read_text() == "a file"


@pytest.mark.parametrize("argv, flag", [
    (["occ", "GT", "--out", "GT"], "--out"),
    (["mini", "GT", "OTHER", "--out-train", "OTHER", "--out-val", "v.json"], "--out-train"),
    (["mini", "GT", "OTHER", "--out-train", "t.json", "--out-val", "./GT"], "--out-val"),
])
def test_data_subsets_refuse_an_output_that_is_an_input(tmp_path, capsys, monkeypatch, argv, flag):
    from dcl_data.coco_subsets import main

    monkeypatch.chdir(tmp_path)
    gt = tiny_coco(tmp_path)
    other = tmp_path / "other.json"
    other.write_bytes(gt.read_bytes())
    argv = [{"GT": str(gt), "OTHER": str(other), "./GT": "./gt.json"}.get(a, a) for a in argv]
    before = (gt.read_bytes(), other.read_bytes())
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {flag} ") and "is an input" in err and "\n" not in err
    assert (gt.read_bytes(), other.read_bytes()) == before
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "v.json").exists()


@pytest.mark.parametrize("which", ["predictions", "subset"])
def test_analysis_subset_refuses_an_output_that_is_an_input(tmp_path, capsys, which):
    from analysis.subset import main

    gt = tiny_coco(tmp_path)
    predictions = tmp_path / "predictions.json"
    predictions.write_text("[]")
    out = predictions if which == "predictions" else gt
    before = (gt.read_bytes(), predictions.read_bytes())
    assert main([str(predictions), str(gt), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out}: the output is the input {out}; refusing to overwrite it")
    assert (gt.read_bytes(), predictions.read_bytes()) == before


def test_train_net_refuses_an_output_dir_that_is_a_file(tmp_path):
    pytest.importorskip("detectron2")
    out = tmp_path / "out"
    out.write_text("a file")
    result = run_script(REPO / "baselines/detectron2/train_net.py", "--config-file", D2_CONFIG,
                        "DATASETS.TRAIN", "()", "DATASETS.TEST", "()", "OUTPUT_DIR", out)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"error: OUTPUT_DIR {out} is a file, not a folder"
    assert out.read_text() == "a file"


def test_train_net_refuses_unregistered_dataset_names_before_training(tmp_path):
    pytest.importorskip("detectron2")
    gt = tiny_coco(tmp_path)
    # Without this check the test split's name failed only in the evaluation after training.
    result = run_script(REPO / "baselines/detectron2/train_net.py", "--config-file", D2_CONFIG,
                        f"--dataset=tiny={gt}:{tmp_path}", "DATASETS.TRAIN", "('tiny',)",
                        "DATASETS.TEST", "('tiny_vall',)", "OUTPUT_DIR", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: DATASETS.TRAIN/TEST name unregistered datasets ['tiny_vall']; register each with "
        "--dataset NAME=JSON:IMAGE_ROOT")
    assert not (tmp_path / "out").exists()


def test_dump_features_refuses_to_write_over_the_weights(tmp_path):
    pytest.importorskip("detectron2")
    gt = tiny_coco(tmp_path)
    weights = tmp_path / "model_final.pth"
    weights.write_bytes(b"trained weights")
    result = run_script(REPO / "baselines/detectron2/dump_features.py", "--config-file", D2_CONFIG,
                        f"--dataset=tiny={gt}:{tmp_path}", "--out", weights,
                        "DATASETS.TEST", "('tiny',)", "MODEL.WEIGHTS", weights)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --out {weights} is an input of this run ({weights}); write to another file")
    assert weights.read_bytes() == b"trained weights"
