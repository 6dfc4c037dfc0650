"""The training and prediction scripts refuse arguments that would destroy an input or crash
late: one line on stderr, inputs untouched, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
D2_CONFIG = REPO / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml"
MMDET_DIR = REPO / "baselines" / "mmdet"
MMDET_CONFIG = MMDET_DIR / "configs" / "embedded" / "refinemask_r18_fpn.py"


def _tiny_coco(folder: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (32, 32)).save(folder / "a.png")
    gt = folder / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "height": 32, "width": 32}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 16, 16],
                         "area": 256, "iscrowd": 0,
                         "segmentation": [[4, 4, 20, 4, 20, 20, 4, 20]]}]}))
    return gt


def _run(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(MMDET_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_train_net_refuses_predictions_over_the_ground_truth(tmp_path):
    pytest.importorskip("detectron2")
    gt = _tiny_coco(tmp_path)
    before = gt.read_bytes()
    result = _run(REPO / "baselines/detectron2/train_net.py", "--eval-only", "--config-file",
                  D2_CONFIG, f"--dataset=tiny_val={gt}:{tmp_path}", "--predictions-out",
                  tmp_path / "." / "gt.json", "DATASETS.TEST", "('tiny_val',)",
                  "OUTPUT_DIR", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --predictions-out {tmp_path / '.' / 'gt.json'} is an input of this run ({gt}); "
        "write the predictions to another file")
    assert gt.read_bytes() == before


def test_mmdet_predict_refuses_predictions_over_the_ground_truth(tmp_path):
    pytest.importorskip("mmcv")
    import torch

    gt = _tiny_coco(tmp_path)
    before = gt.read_bytes()
    checkpoint = tmp_path / "model.pth"
    torch.save({"state_dict": {}, "meta": {}}, checkpoint)
    result = _run(MMDET_DIR / "predict.py", MMDET_CONFIG, checkpoint, "--val-data",
                  f"{gt}:{tmp_path}", "--predictions-out", gt)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --predictions-out {gt} is an input of this run ({gt}); write the predictions "
        "to another file")
    assert gt.read_bytes() == before


def test_mmdet_train_refuses_a_work_dir_that_is_a_file(tmp_path):
    pytest.importorskip("mmcv")
    gt = _tiny_coco(tmp_path)
    work = tmp_path / "work"
    work.write_text("a file")
    result = _run(MMDET_DIR / "train.py", MMDET_CONFIG, "--work-dir", work, "--train-data",
                  f"{gt}:{tmp_path}")
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
    gt = _tiny_coco(tmp_path)
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

    gt = _tiny_coco(tmp_path)
    predictions = tmp_path / "predictions.json"
    predictions.write_text("[]")
    out = predictions if which == "predictions" else gt
    before = (gt.read_bytes(), predictions.read_bytes())
    assert main([str(predictions), str(gt), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: -o {out} is an input ({out}); write to another file")
    assert (gt.read_bytes(), predictions.read_bytes()) == before


def test_train_net_refuses_an_output_dir_that_is_a_file(tmp_path):
    pytest.importorskip("detectron2")
    out = tmp_path / "out"
    out.write_text("a file")
    result = _run(REPO / "baselines/detectron2/train_net.py", "--config-file", D2_CONFIG,
                  "OUTPUT_DIR", out)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"error: OUTPUT_DIR {out} is a file, not a folder"
    assert out.read_text() == "a file"
