"""RefineMask + DCL trained by 2 processes on the CPU: `python -m torch.distributed.run
--nproc_per_node=2 baselines/mmdet/train.py ... --launcher pytorch` with gloo (the workflow's
command on a multi-GPU node, minus the GPUs), and the set-up it needs (dcl_mmdet.distributed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mmdet")

from mmengine.config import Config  # noqa: E402

from dcl_mmdet.distributed import setup_cpu_distributed  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "baselines" / "mmdet" / "train.py"
EMBEDDED_DCL = REPO / "baselines" / "mmdet" / "configs" / "embedded" / "refinemask_r18_fpn_dcl.py"


def test_no_launcher_or_a_gpu_changes_nothing(monkeypatch):
    cfg = Config(dict(launcher="none", env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    assert setup_cpu_distributed(cfg) is False and cfg.env_cfg.dist_cfg.backend == "nccl"


def test_pytorch_launcher_outside_torchrun_is_one_clear_error(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    cfg = Config(dict(launcher="pytorch", env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    if __import__("torch").cuda.is_available():
        pytest.skip("CUDA present: the CPU set-up does not apply")
    with pytest.raises(RuntimeError, match=r"needs torchrun's environment \(RANK, WORLD_SIZE, "
                                           r"MASTER_ADDR, MASTER_PORT unset\)"):
        setup_cpu_distributed(cfg)


@pytest.mark.slow
def test_two_cpu_processes_train_refinemask_with_dcl(tmp_path, embedded_dataset):
    data = embedded_dataset
    work = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", str(TRAIN), str(EMBEDDED_DCL), "--work-dir", str(work),
           "--train-data", f"{data / 'annotations/instances_train.json'}:{data / 'train'}",
           "--launcher", "pytorch", "--cfg-options", "train_cfg.max_iters=3",
           "train_dataloader.batch_size=1", "train_dataloader.num_workers=0",
           "train_dataloader.persistent_workers=False", "default_hooks.checkpoint.interval=3",
           "default_hooks.logger.interval=1", "custom_hooks.1.interval=1"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert (work / "model_final.pth").is_file()
    # mmengine's runtime environment block: two processes, gloo.
    assert "dist_cfg: {'backend': 'gloo'}" in out
    assert "Distributed training: True" in out and "GPU number: 2" in out
    lines = [json.loads(x) for x in (work / "train_metrics.json").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [0, 1, 2]
    assert all(x["loss_contrast"] > 0 for x in lines)
