"""The Snakemake workflow: its DAG, config validation, and (slow) real runs at smoke scale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
DOWNLOADS = REPO / "resources" / "downloads"  # shared registry cache of the embedded sources


def workdir(tmp_path: Path, **overrides) -> Path:
    """A working directory holding config.yaml (with `overrides` merged at the top level)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(overrides)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def snakemake(wd: Path, *args, timeout=600, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(SNAKEMAKE + ["--directory", str(wd), *args], env=ENV, cwd=wd,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def planned_jobs(output: str) -> dict[str, int]:
    """Job counts from the 'Job stats' table of a dry run."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    counts = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_embedded_dry_run_plans_baseline_and_dcl(tmp_path):
    out = snakemake(workdir(tmp_path), "-n", "--cores", "2").stdout
    jobs = planned_jobs(out)
    assert jobs["embedded_dataset"] == 1 and jobs["train_detectron2"] == 2
    assert jobs["evaluate"] == 2 and jobs["seg_errors"] == 2 and jobs["table_dcl_vs_baseline"] == 1
    assert jobs["seg_errors_report"] == 1
    assert "embedded/mask_rcnn_r18_fpn/baseline/model_final.pth" in out
    assert "embedded/mask_rcnn_r18_fpn/dcl_w1.2_t0.07_k32/model_final.pth" in out


def test_paper_dry_run_plans_gpu_training_on_configured_data(tmp_path):
    # Paper scale reads existing annotation files; a dry run needs them to exist, not be real.
    data = {}
    for split in ("train", "val"):
        json_file = tmp_path / "cityscapes" / f"{split}.json"
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text("{}")
        data[split] = {"json": str(json_file), "images": str(tmp_path / "cityscapes" / split)}
    wd = workdir(tmp_path, scale="paper", datasets={"cityscapes": data})
    out = snakemake(wd, "-n", "--cores", "8", "--resources", "gpu=4").stdout
    jobs = planned_jobs(out)
    assert jobs["train_detectron2"] == 2 and "embedded_dataset" not in jobs
    assert "gpu=4" in out
    assert "results/paper/cityscapes/mask_rcnn_r50_fpn/dcl_w1.2_t0.07_k32/model_final.pth" in out


@pytest.mark.parametrize("override, needle", [
    ({"scael": "paper"}, "scael"),
    ({"scale": "papr"}, "papr"),
    ({"variants": [{"dcl": True, "temprature": 0.1}]}, "temprature"),
])
def test_config_mistakes_fail_before_any_job_naming_the_key(tmp_path, override, needle):
    result = snakemake(workdir(tmp_path, **override), "-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert needle in result.stdout + result.stderr
    assert "Job stats" not in result.stdout


def _wait_for(predicate, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_smoke_workflow_end_to_end_and_resume_after_kill(tmp_path):
    """The whole DAG on the real embedded data at smoke scale; a training killed after its first
    checkpoint resumes from it when the workflow is re-run, and each output appears once."""
    wd = workdir(tmp_path, scale="smoke", downloads=str(DOWNLOADS))
    run_dir = wd / "results/smoke/embedded/mask_rcnn_r18_fpn/dcl_w1.2_t0.07_k32"
    target = str(run_dir.relative_to(wd) / "model_final.pth")

    # 1. Start the DCL training and interrupt the whole job tree (as Ctrl-C or a scheduler's
    #    time limit would) once a checkpoint exists.
    console = open(tmp_path / "first_run.log", "w")  # a file: an unread pipe could fill up
    proc = subprocess.Popen(SNAKEMAKE + ["--directory", str(wd), "--cores", "2", target],
                            env=ENV, cwd=wd, stdout=console, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        assert _wait_for(lambda: (run_dir / "last_checkpoint").exists(), 300, proc), \
            "no checkpoint appeared"
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        console.close()
    # Read after the kill: the checkpoint a resume must start from is the last one tagged.
    first = (run_dir / "last_checkpoint").read_text().strip()
    assert first != "model_final.pth" and not (run_dir / "model_final.pth").exists()

    # 2. Re-run everything: training continues from that checkpoint, the rest completes.
    snakemake(wd, "--cores", "2", "--rerun-incomplete")
    log = (wd / "logs/smoke/train/embedded/mask_rcnn_r18_fpn/dcl_w1.2_t0.07_k32.log").read_text()
    assert f"Loading from {run_dir.relative_to(wd) / first}" in log, log[-3000:]
    assert "No checkpoint found" not in log
    resumed_at = int(first.split("_")[1].split(".")[0]) + 1
    assert f"Starting training from iteration {resumed_at}" in log, log[-3000:]
    # train_metrics.json is appended to across runs; the resumed run reaches the last iteration.
    events = [json.loads(line) for line in (run_dir / "train_metrics.json").read_text().splitlines()]
    assert max(e["iteration"] for e in events if "iteration" in e) >= 5

    table = (wd / "results/smoke/tables/dcl_vs_baseline.md").read_text()
    assert "| Mask R-CNN + DCL | `dcl_w1.2_t0.07_k32` |" in table and "36.5" in table
    for variant in ("baseline", "dcl_w1.2_t0.07_k32"):
        metrics = json.loads((wd / f"results/smoke/embedded/mask_rcnn_r18_fpn/{variant}/metrics.json").read_text())
        assert set(metrics["segm"]) >= {"AP", "AP50", "AP75"}
        assert metrics["num_predictions"] >= 0
        errors = json.loads((wd / f"results/smoke/embedded/mask_rcnn_r18_fpn/{variant}/seg_errors.json").read_text())
        assert set(errors["delta"]) >= {"fFP", "bFP", "FN"}
    assert (wd / "results/smoke/figures/seg_errors.png").stat().st_size > 0
    assert "FN" in (wd / "results/smoke/tables/seg_errors.md").read_text()
    again = snakemake(wd, "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_train_net_fails_fast_on_a_missing_dataset(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "baselines/detectron2/train_net.py"), "--config-file",
         str(REPO / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml"),
         f"--dataset=x_train={tmp_path}/missing.json:{tmp_path}", "DATASETS.TRAIN", "('x_train',)",
         "OUTPUT_DIR", str(tmp_path / "out")],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "missing.json" in last
    assert "Traceback" not in result.stderr


def test_train_net_fails_fast_on_a_config_key_typo(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "baselines/detectron2/train_net.py"), "--config-file",
         str(REPO / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml"),
         "MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.TEMPERATUR", "0.1", "OUTPUT_DIR", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "TEMPERATUR" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
