"""mmdet runs: checkpoints are read with torch's weights-only loading (a crafted .pth is refused in
one line and its command never runs), written durably, and a resume survives a damaged one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("mmcv")

from bad_inputs import DAMAGES, MMDET_DIR, Command, damage, run_script, tiny_coco  # noqa: E402

EMBEDDED = MMDET_DIR / "configs" / "embedded" / "refinemask_r18_fpn.py"
sys.path.insert(0, str(MMDET_DIR))

from mmengine.logging import HistoryBuffer  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402

from dcl_mmdet.checkpoint import (allow_mmengine_checkpoints, checkpoint_error,  # noqa: E402
                                   resume_checkpoint)


class _Reference:
    """Pickles as ``getattr(owner, name)``: the form mmengine's HistoryBuffer needs, abused."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


class _Tiny(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, y=None, mode="tensor"):
        out = self.linear(x).squeeze(-1)
        return {"loss": ((out - y) ** 2).mean()} if mode == "loss" else out


class _Points(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(x=torch.full((2,), float(i)), y=torch.tensor(1.0))


def _mmengine_run(work_dir: Path, max_iters: int = 4, hook: str = "DurableCheckpointHook"):
    """A real mmengine training (toy model) that saves iter_2.pth, iter_4.pth, ..."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import dcl_mmdet  # noqa: F401  (registers the hook)

    # The Runner makes "mmengine" the process-wide default scope; restoring the scopes on exit
    # keeps later tests' mmdet builds (MODELS.build) in their own registry.
    with DefaultScope.overwrite_default_scope("mmengine"):
        runner = Runner(
            model=_Tiny(), work_dir=str(work_dir),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            train_dataloader=dict(dataset=_Points(), batch_size=2,
                                  collate_fn=dict(type="default_collate"),
                                  sampler=dict(type="DefaultSampler", shuffle=False)),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
            default_hooks=dict(checkpoint=dict(type=hook, interval=2, by_epoch=False)),
            default_scope="mmengine")
        runner.train()


@pytest.fixture(scope="module")
def mmengine_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("mmengine_run")
    _mmengine_run(work)
    return work


# ------------------------------------------------------------------------- weights-only loading
def test_mmengine_checkpoints_load_weights_only_with_the_allowlist(mmengine_run):
    allow_mmengine_checkpoints()
    assert checkpoint_error(mmengine_run / "iter_4.pth") is None
    state = torch.load(mmengine_run / "iter_4.pth", map_location="cpu", weights_only=True)
    assert isinstance(state["message_hub"]["log_scalars"]["train/loss"], HistoryBuffer)
    assert state["meta"]["iter"] == 4


@pytest.mark.parametrize("payload", [
    lambda marker: {"state_dict": {}, "meta": Command(marker)},
    # getattr is allowed for HistoryBuffer's statistics only, not to reach anything else.
    lambda marker: {"x": _Reference(HistoryBuffer, "__init__")},
    lambda marker: {"x": _Reference(np.ndarray, "tofile")},
])
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, payload):
    allow_mmengine_checkpoints()
    marker = tmp_path / "marker"
    torch.save(payload(marker), tmp_path / "evil.pth")
    error = checkpoint_error(tmp_path / "evil.pth")
    assert error and error.startswith("UnpicklingError: ") and "\n" not in error
    with pytest.raises(Exception):
        torch.load(tmp_path / "evil.pth", weights_only=True)
    assert not marker.exists()


def test_predict_and_train_refuse_a_crafted_checkpoint_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "meta": Command(marker)}, evil)
    data = f"{tiny_coco(tmp_path)}:{tmp_path}"
    out = tmp_path / "predictions.json"
    result = run_script(MMDET_DIR / "predict.py", EMBEDDED, evil, "--val-data", data,
                     "--predictions-out", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {evil} refused: UnpicklingError: Trying to load unsupported GLOBAL "
        "posix.system whose module posix is blocked.")
    work = tmp_path / "work"
    result = run_script(MMDET_DIR / "train.py", EMBEDDED, "--work-dir", work, "--train-data", data,
                     "--cfg-options", f"load_from={evil}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: load_from {evil} refused: ")
    assert not marker.exists() and not out.exists() and not list(work.glob("*.pth"))


# ------------------------------------------------------------------------- durable writes, resume
def test_the_durable_hook_writes_checkpoints_and_tag_through_temp_files(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append(Path(b).name),
                                                     real_replace(a, b))[1])
    _mmengine_run(tmp_path, max_iters=2)
    assert replaced == ["iter_2.pth", "last_checkpoint"]
    assert Path((tmp_path / "last_checkpoint").read_text()).name == "iter_2.pth"
    assert sorted(p.name for p in tmp_path.glob("*") if p.name.startswith(".")) == []


@pytest.mark.parametrize("how", DAMAGES)
def test_resume_takes_the_newest_checkpoint_that_loads_with_one_warning(tmp_path, how):
    allow_mmengine_checkpoints()
    _mmengine_run(tmp_path, max_iters=4)
    damage(tmp_path / "iter_4.pth", how)
    checkpoint, warning = resume_checkpoint(tmp_path)
    expected = "iter_4.pth" if how == "empty_tag" else "iter_2.pth"
    assert checkpoint == str(tmp_path / expected)
    assert warning.startswith("resume: skipped ") and "\n" not in warning
    assert warning.endswith(f"resuming from {tmp_path / expected}")


def test_resume_with_nothing_loadable_starts_over_with_a_warning(tmp_path):
    allow_mmengine_checkpoints()
    assert resume_checkpoint(tmp_path) == (None, None)
    _mmengine_run(tmp_path, max_iters=2)
    assert resume_checkpoint(tmp_path) == (str(tmp_path / "iter_2.pth"), None)
    (tmp_path / "iter_2.pth").write_bytes(b"garbage")
    checkpoint, warning = resume_checkpoint(tmp_path)
    assert checkpoint is None and warning.endswith("starting over")


@pytest.mark.slow
def test_train_resumes_past_a_truncated_last_checkpoint(tmp_path, embedded_dataset):
    data = embedded_dataset
    work = tmp_path / "run"
    common = [MMDET_DIR / "train.py", MMDET_DIR / "configs/embedded/refinemask_r18_fpn_dcl.py",
              "--work-dir", work, "--train-data",
              f"{data / 'annotations/instances_train.json'}:{data / 'train'}", "--resume",
              "--cfg-options", "train_dataloader.batch_size=1",
              "default_hooks.checkpoint.interval=1"]
    first = run_script(*common, "train_cfg.max_iters=2", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    damage(work / "iter_2.pth", "truncated")  # model_final.pth is a hard link: truncated too
    second = run_script(*common, "train_cfg.max_iters=3", timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    warnings = [line for line in second.stderr.splitlines() if line.startswith("warning: resume:")]
    assert len(warnings) == 1 and "iter_2.pth (RuntimeError: " in warnings[0]
    assert warnings[0].endswith(f"resuming from {work / 'iter_1.pth'}")
    allow_mmengine_checkpoints()
    final = torch.load(work / "model_final.pth", map_location="cpu", weights_only=True)
    assert final["meta"]["iter"] == 3
