"""The Snakemake workflow: its DAG, config validation, and (slow) real runs at smoke scale."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from paper_tables.figures import GAIN_FAMILIES

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


def test_embedded_dry_run_plans_every_table_of_the_matrix(tmp_path):
    from paper_tables.experiments import expand

    wd = workdir(tmp_path)
    out = snakemake(wd, "-n", "--cores", "2").stdout
    jobs = planned_jobs(out)
    plan = expand(yaml.safe_load((wd / "config.yaml").read_text()), "embedded")
    # Four models, with and without DCL, the Mask R-CNN sweep points of Tables 1-4 + supp., the
    # same-baseline runs (ContrastMask's loss, DCL + it, CAC's loss), ContrastMask itself
    # (voc -> nonvoc), and CAC's table: the small HRNet with and without CAC (mmseg).
    assert len(plan.runs) == 19
    assert jobs["train_detectron2"] + jobs["train_mmdet"] + jobs["train_mmseg"] == len(plan.runs)
    assert jobs["train_mmseg"] == jobs["predict_mmseg"] == 2 and jobs["embedded_semantic"] == 1
    for run in plan.runs:
        assert f"results/embedded/{run}/model_final.pth" in out, run
    assert jobs["embedded_dataset"] == 1 and jobs["occ_split_embedded"] == 1
    # ContrastMask is scored on val's non-VOC (novel) categories only.
    assert jobs["novel_split_embedded_nonvoc"] == 1
    assert "results/embedded/embedded/contrastmask_r18/baseline/metrics_nonvoc.json" in out
    assert "resampled_matches_nonvoc.npz" in out
    assert jobs["evaluate"] == len(plan.evaluations())
    assert jobs["features"] == 2 and jobs["figure4"] == 1 and jobs["figure2"] == 1
    assert jobs["paper_tables"] == 1 and jobs["report"] == 1


def test_contrastmask_compare_page_plans_its_training_and_novel_scoring(tmp_path):
    out = snakemake(workdir(tmp_path), "-n", "-p", "--cores", "2",
                    "results/embedded/compare/contrastmask_r18.md").stdout
    jobs = planned_jobs(out)
    assert jobs["train_mmdet"] == 1 and jobs["predict_mmdet"] == 1 and jobs["compare_model"] == 1
    # val (every class) and the non-VOC split, each scored; the predictions restricted first.
    assert jobs["evaluate"] == 2 and jobs["predictions_subset"] == 1
    assert "contrastmask_r18_fpn.py --loss none" in out
    assert "python -m dcl_data.coco_subsets novel" in out and "--split nonvoc" in out


def test_seeds_repeat_every_run_beside_the_default_folders(tmp_path):
    """`seeds: [0, 1]` adds one run per run in {variant}_seed1 with SEED 1 (scored, not
    resampled: the intervals are seed 0's); seed 0 keeps the default runs, folders and
    commands."""
    from paper_tables.experiments import expand

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    default = snakemake(workdir(tmp_path / "a"), "-n", "-p", "--cores", "2").stdout
    out = snakemake(workdir(tmp_path / "b", seeds=[0, 1]), "-n", "-p", "--cores", "2").stdout
    plan = expand(yaml.safe_load((REPO / "config.yaml").read_text()), "embedded")
    jobs = planned_jobs(out)
    assert jobs["train_detectron2"] + jobs["train_mmdet"] + jobs["train_mmseg"] == 2 * len(plan.runs)
    for run in plan.runs:
        assert f"results/embedded/{run}/model_final.pth" in default, run
        assert f"results/embedded/{run}_seed1/model_final.pth" in out, run
        if plan.models[run.split("/")[1]]["framework"] == "mmseg":  # scored by its own mIoU
            assert f"results/embedded/{run}_seed1/metrics_miou.json" in out, run
    for run, split in plan.evaluations():  # each on the split its rows score (val, nonvoc...)
        assert f"results/embedded/{run}_seed1/metrics_{split}.json" in out, run
        assert f"results/embedded/{run}_seed1/resampled_matches_{split}.npz" not in out, run
    # An mmseg variant's seed runs the variant's own config file.
    assert re.search(r"mmseg/train\.py \S+/fcn_hr18s_embedded_cac\.py --seed 1 --work-dir "
                     r"results/embedded/embedded_semantic/fcn_hr18s/cac_seed1", out)
    # The run's seed reaches training and prediction as the neutral --seed (the adapters write
    # it into their configs); the default seed adds nothing to the default commands.
    assert "--seed 1 --config-file" in out and "--seed 1 --work-dir" in out
    assert "--seed 1 --predictions-out" in out
    assert not re.search(r"(train_net|train|predict)\.py [^\n]*--seed ", default)
    assert "_seed1/" not in default


@pytest.mark.parametrize("override, needle", [
    ({"scael": "paper"}, "scael"),
    ({"scale": "papr"}, "papr"),
    ({"seeds": [1, 2]}, "seeds"),
    ({"experiments": {"table1": {"model": "mask_rcnn", "dataset": "cityscapes",
                                 "rows": [{"dcl": True, "temprature": 0.1}]}}}, "temprature"),
    ({"experiments": {"table1": {"dataset": "cityscapes", "rows": [{"dcl": False}]}}},
     "needs a dataset and a model"),
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
    # SIGINT back to its default in the child: a shell starting the tests in the background
    # (`cmd &` without job control) leaves it ignored, the ignore is inherited through exec, and
    # Python then installs no KeyboardInterrupt handler, so neither Snakemake nor the training
    # would stop.
    proc = subprocess.Popen(SNAKEMAKE + ["--directory", str(wd), "--cores", "2", target],
                            env=ENV, cwd=wd, stdout=console, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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

    run = "results/smoke/embedded/mask_rcnn_r18_fpn"
    for variant in ("baseline", "dcl_w1.2_t0.07_k32"):
        metrics = json.loads((wd / f"{run}/{variant}/metrics_val.json").read_text())
        assert set(metrics["segm"]) >= {"AP", "AP50", "AP75"} and "AP" in metrics["bbox"]
        assert metrics["num_predictions"] >= 0
        errors = json.loads((wd / f"{run}/{variant}/seg_errors_val.json").read_text())
        assert set(errors["delta"]) >= {"fFP", "bFP", "FN"}
        cost = json.loads((wd / f"{run}/{variant}/train_cost.json").read_text())
        assert cost["memory_kind"] == "cpu_peak_rss" and cost["peak_memory_mib"] > 100
    out = wd / "results/smoke/paper_tables"
    table1 = (out / "table1.md").read_text()
    # The measured row sits beside the paper's number for the same setting (36.5 for lambda 1.2).
    line = next(x for x in table1.splitlines() if "dcl_w1.2_t0.07_k32" in x)
    assert "| 36.5 |" in line and "–" not in line.split("|")[3]
    assert "not run at this scale" in table1 and "\\begin{tabular}" in (out / "table1.tex").read_text()
    tables = json.loads((out / "tables.json").read_text())["tables"]
    assert {t["id"] for t in tables} == {"table1", "table8", "table9"}
    # Every measured AP cell has its bootstrap interval, every AP gain its paired interval and
    # a verdict (issue 14); at smoke scale the runs are real, so the intervals are not empty.
    t1 = next(t for t in tables if t["id"] == "table1")
    measured = [c for r in t1["rows"] if r["run"] and not r["paper_only"]
                for c in r["cells"].values() if c.get("measured") is not None]
    assert measured and all(len(c["ci95"]) == 2 for c in measured)
    gains = [c for g in t1["gains"] if g["unit"] == "AP" for c in g["cells"].values()
             if c.get("measured") is not None]
    assert gains and all(len(c["ci95"]) == 2 for c in gains)
    assert {c["verdict"] for c in gains if c.get("paper") is not None} <= {
        "reproduced", "not reproduced", "inconclusive"}
    figures = ("sweeps", "figure2_seg_errors", "figure4_tsne", *GAIN_FAMILIES)
    for name in figures:
        assert (out / f"figures/{name}.png").stat().st_size > 0
    report = (wd / "results/smoke/report.html").read_text()
    for title in ("Table 1: loss weight lambda", "Table 8", "Table 9", "Figure 2", "Figure 4"):
        assert title in report, title
    assert report.count("data:image/png;base64,") == len(figures)
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


def test_same_baseline_runs_are_planned_with_both_losses_on_the_command_line(tmp_path):
    """The same-baseline comparison adds exactly two trainings per scale (ContrastMask's loss,
    DCL + ContrastMask's), each given its losses as neutral --loss words; its baseline and DCL
    rows are Table 1's runs, and its tables and their inputs are planned."""
    cm = "contrastmask_w0.1_te0.3_th0.7_s0.3_enc1_c64_grad_noramp"
    out = snakemake(workdir(tmp_path), "-n", "-p", "--cores", "2").stdout
    run = "results/embedded/embedded/mask_rcnn_r18_fpn"
    for variant in (cm, f"dcl_w1.2_t0.07_k32+{cm}"):
        assert f"{run}/{variant}/model_final.pth" in out
        assert f"{run}/{variant}/seg_errors_val.json" in out
        assert f"{run}/{variant}/train_cost.json" in out
    words = ("contrastmask loss_weight=0.1 easy_temperature=0.3 hard_temperature=0.7 "
             "sample_ratio=0.3 min_pixels=5 cam_threshold=0.1 num_encoder_convs=1 "
             "num_projector_layers=3 embed_channels=64 detach_features=False")
    assert f"--loss {words}" in out
    assert re.search(r"--loss dcl [^\n]*roi_selection=first \+ " + re.escape(words), out)
    for table in ("same_baseline", "same_baseline_errors", "same_baseline_cost"):
        assert f"results/embedded/paper_tables/{table}.md" in out
    assert "results/embedded/paper_tables/figures/gains_same_baseline.png" in out
