"""The workflow through a REAL single-node SLURM (slurmctld + slurmd + munge, one fake GPU),
started by tests/slurm/start_local_slurm.sh, with the test profile profiles/slurm-local.

Skipped only where the cluster cannot be started: not root, or no apt-get and no SLURM installed
(CI runs as root with apt, so there it runs). Every wait is bounded by `timeout -k 10`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from test_workflow import DOWNLOADS, ENV, REPO, SNAKEMAKE, workdir

START = REPO / "tests" / "slurm" / "start_local_slurm.sh"
PROFILE = REPO / "profiles" / "slurm-local"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
RUN = "results/smoke/embedded/mask_rcnn_r18_fpn"

pytestmark = pytest.mark.slow


def _cluster_running() -> bool:
    return subprocess.run(["bash", str(START), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def local_slurm():
    """A running local SLURM; stopped afterwards only if this fixture started it."""
    already = _cluster_running()
    if not already:
        if os.geteuid() != 0:
            pytest.skip("starting a local SLURM needs root (apt-get, munged, slurmd); CI runs as root")
        if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            pytest.skip("no apt-get to install slurmctld/slurmd/slurm-client/munge, and none installed")
        start = subprocess.run(["bash", str(START), "start"], capture_output=True, text=True,
                               timeout=900)
        assert start.returncode == 0, f"local SLURM did not start:\n{start.stdout}\n{start.stderr}"
    yield
    if not already:
        subprocess.run(["bash", str(START), "stop"], capture_output=True, timeout=60)


def _slurmctld_log() -> str:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                            timeout=20, check=True).stdout
    path = re.search(r"^SlurmctldLogFile\s*=\s*(\S+)", config, re.M).group(1)
    return Path(path).read_text(errors="replace")


def _snakemake_via_slurm(wd: Path, *args, limit: int):
    """snakemake --profile profiles/slurm-local under `timeout -k 10 limit`; output and seconds."""
    began = time.monotonic()
    result = subprocess.run(
        ["timeout", "-k", "10", str(limit), *SNAKEMAKE, *args, "--directory", str(wd),
         "--profile", str(PROFILE), "--cores", "2"],
        env=ENV, cwd=wd, capture_output=True, text=True, timeout=limit + 30)
    return result, result.stdout + result.stderr, time.monotonic() - began


@pytest.fixture(scope="module")
def slice_run(local_slurm, tmp_path_factory):
    """The smoke slice (embedded data -> train -> predict -> evaluate, baseline) through sbatch;
    predict asks for one GPU through the `gpu` resource, as paper-scale jobs do."""
    wd = workdir(tmp_path_factory.mktemp("slurm"), scale="smoke", downloads=str(DOWNLOADS))
    result, output, seconds = _snakemake_via_slurm(
        wd, f"{RUN}/baseline/metrics_val.json", "--set-resources", "predict_detectron2:gpu=1",
        limit=400)
    print(f"smoke slice through SLURM: {seconds:.0f} s")
    return wd, result, output


def test_smoke_slice_runs_to_completion_through_sbatch(slice_run):
    wd, result, output = slice_run
    assert result.returncode == 0, output[-5000:]
    assert (wd / f"{RUN}/baseline/metrics_val.json").stat().st_size > 0

    jobs = {re.search(r"rule_(\w+)", log).group(1): (int(job), Path(log))
            for job, log in SUBMITTED.findall(output)}
    assert set(jobs) == {"embedded_dataset", "train_detectron2", "predict_detectron2", "evaluate"}, \
        output[-5000:]
    ctld = _slurmctld_log()
    for rule, (job, log) in jobs.items():
        # The scheduler itself accepted, ran and completed each job ...
        assert f"_slurm_rpc_submit_batch_job: JobId={job} " in ctld, rule
        assert f"_job_complete: JobId={job} WEXITSTATUS 0" in ctld, rule
        # ... and the plugin kept its per-job log under .snakemake/slurm_logs.
        assert log.is_file() and log.parent.is_relative_to(wd / ".snakemake/slurm_logs"), log

    # The `gpu` resource became a GPU allocation (the fake gres/gpu of the test node).
    job = jobs["predict_detectron2"][0]
    shown = subprocess.run(["scontrol", "show", "job", "-d", str(job)], capture_output=True,
                           text=True, timeout=20).stdout
    assert "TresPerJob=gres:gpu:1" in shown and "JOB_GRES=gpu:1" in shown, shown


def test_failing_job_is_reported_not_hung(slice_run):
    """train_net exits non-zero inside the SLURM job (an unknown config key): snakemake reports
    the SLURM job as failed and stops well within the bound."""
    wd, first, _ = slice_run
    assert first.returncode == 0, "the slice run failed; see the other test"
    bad = wd / "bad_opts.yaml"
    bad.write_text(yaml.safe_dump(
        {"presets": {"smoke": {"opts": {"detectron2": ["MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.TEMPERATUR", "0.1"]}}}}))
    result, output, seconds = _snakemake_via_slurm(
        wd, f"{RUN}/dcl_w1.2_t0.07_k32/model_final.pth", "--configfile", "config.yaml", str(bad),
        limit=180)
    assert result.returncode not in (0, 124, 137), output[-5000:]
    job = int(SUBMITTED.search(output).group(1))
    assert f"SLURM-job '{job}' failed" in output, output[-5000:]
    assert f"_job_complete: JobId={job} WEXITSTATUS 1" in _slurmctld_log()
    assert "Non-existent key: MODEL.ROI_MASK_HEAD.CONTRAST_LOSS.TEMPERATUR" in output
    assert seconds < 150
    assert not (wd / f"{RUN}/dcl_w1.2_t0.07_k32/model_final.pth").exists()
