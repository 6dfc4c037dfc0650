"""Fixtures shared by the model tests that train through baselines/detectron2/train_net.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_thread():
    """Torch at one thread for the test (deterministic sums, fair to the 2 shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def embedded_dataset(tmp_path_factory) -> Path:
    """The embedded dataset, built once per session from the shared registry cache."""
    from dcl_data.embedded import build_embedded_dataset

    downloads = Path(os.environ.get("DCL_DATA_DOWNLOADS", REPO / "resources" / "downloads"))
    out = tmp_path_factory.mktemp("embedded_data") / "embedded"
    build_embedded_dataset(downloads, out)
    return out


@pytest.fixture
def train_net():
    """Run train_net.py with ``args`` at one thread; fails the test, with the output's tail, on
    a non-zero exit. Returns the CompletedProcess."""

    def run(*args, timeout=600):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        result = subprocess.run(
            [sys.executable, str(REPO / "baselines/detectron2/train_net.py"), *args],
            env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    return run


@pytest.fixture
def train_resume_predict(embedded_dataset, train_net, tmp_path):
    """``run(config, *opts)``: train ``config`` with ``opts`` (and DCL's on) on the embedded
    data at 160 px for 4 iterations, resume as if killed right after the checkpoint at
    iteration 3 into a schedule of 6, then predict the val split. Asserts the resume, the
    cost file, a finite logged ``loss_contrast`` and a valid predictions file; returns the
    predictions (list of COCO result dicts) and the val ground-truth path."""
    from analysis.coco_format import load_ground_truth, load_results

    data = embedded_dataset
    run_dir = tmp_path / "run"
    gt_file = data / "annotations" / "instances_val.json"

    def run(config, *opts):
        flags = ["--config-file", str(config),
                 f"--dataset=emb_train={data}/annotations/instances_train.json:{data}/train",
                 f"--dataset=emb_val={gt_file}:{data}/val"]
        opts = ["DATASETS.TRAIN", "('emb_train',)", "DATASETS.TEST", "('emb_val',)",
                "OUTPUT_DIR", str(run_dir), "SOLVER.IMS_PER_BATCH", "2",
                "INPUT.MIN_SIZE_TRAIN", "(160,)", "INPUT.MAX_SIZE_TRAIN", "224",
                "INPUT.MIN_SIZE_TEST", "160", "INPUT.MAX_SIZE_TEST", "224",
                "SOLVER.WARMUP_ITERS", "2", "SOLVER.STEPS", "(3,)",
                "SOLVER.CHECKPOINT_PERIOD", "3", *opts]
        train_net(*flags, "--resume", *opts, "SOLVER.MAX_ITER", "4")
        (run_dir / "model_final.pth").unlink()
        (run_dir / "last_checkpoint").write_text("model_0000002.pth")
        log = train_net(*flags, "--resume", *opts, "SOLVER.MAX_ITER", "6")
        assert "Starting training from iteration 3" in log.stdout + log.stderr
        assert (run_dir / "model_final.pth").is_file()
        # TEST.EVAL_PERIOD 0: no inference inside training (the predict step below does it).
        assert not list(run_dir.glob("predictions_*.json")), "the trainer evaluated at the end"
        cost = json.loads((run_dir / "train_cost.json").read_text())
        assert cost["framework"] == "detectron2" and cost["max_iter"] == 6
        events = [json.loads(line)
                  for line in (run_dir / "train_metrics.json").read_text().splitlines()]
        assert any("loss_contrast" in e for e in events)
        assert all(math.isfinite(e["total_loss"]) for e in events if "total_loss" in e)

        out = tmp_path / "predictions.json"
        train_net(*flags, "--eval-only", "--predictions-out", str(out), *opts,
                  "MODEL.WEIGHTS", str(run_dir / "model_final.pth"))
        results = json.loads(out.read_text())
        assert results, "no predictions"
        load_results(results, load_ground_truth(gt_file))  # ids, sizes, RLE: all valid
        return results, gt_file

    return run
