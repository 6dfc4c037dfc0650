"""Checkpoints and their tag are written atomically and durably, and a resume survives a damaged
last checkpoint (truncated, 0 bytes, missing, empty tag) by taking the newest one that loads."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from analysis.io import atomic_path
from bad_inputs import DAMAGES, damage


def test_atomic_path_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(
        f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))),
                                                    real_replace(a, b))[1])
    target = tmp_path / "out.bin"
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(b"data")
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(tmp_path / ".out.bin.")) and events[1][1] == str(target)
    assert events[2][1] == str(tmp_path)
    assert target.read_bytes() == b"data"


# ------------------------------------------------------------------------- detectron2
def _checkpointer(folder: Path, seed: int = 0):
    pytest.importorskip("detectron2")
    from dcl_detectron2.checkpoint import ResumableCheckpointer

    torch.manual_seed(seed)
    return ResumableCheckpointer(nn.Linear(3, 2), str(folder))


def _saved_run(folder: Path):
    """model_0000001.pth (weights of seed 1), then model_0000003.pth (seed 3, tagged)."""
    for seed in (1, 3):
        ck = _checkpointer(folder, seed)
        ck.save(f"model_{seed:07d}", iteration=seed)
        os.utime(folder / f"model_{seed:07d}.pth", ns=(seed * 10**9, seed * 10**9))
    return {seed: _checkpointer(folder, seed).model.weight.detach().clone() for seed in (1, 3)}


def test_saves_leave_no_temp_files_and_a_failed_save_keeps_the_old_checkpoint(tmp_path):
    _saved_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last_checkpoint", "model_0000001.pth", "model_0000003.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    before = (tmp_path / "model_0000003.pth").read_bytes()

    class Exploding:
        def state_dict(self):
            return {"x": _Unpicklable()}

    ck = _checkpointer(tmp_path)
    ck.add_checkpointable("bad", Exploding())
    with pytest.raises(Exception):
        ck.save("model_0000003", iteration=3)
    assert (tmp_path / "model_0000003.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last_checkpoint", "model_0000001.pth", "model_0000003.pth"]


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


@pytest.mark.parametrize("how", DAMAGES)
def test_resume_falls_back_to_the_newest_loadable_checkpoint_with_one_warning(
        tmp_path, caplog, how):
    weights = _saved_run(tmp_path)
    damage(tmp_path / "model_0000003.pth", how)
    if how == "empty_tag":
        weights[1] = weights[3]  # the newest file is intact: it is the one to resume from
    ck = _checkpointer(tmp_path, seed=7)
    with caplog.at_level(logging.WARNING):
        extra = ck.resume_or_load("", resume=True)
    expected = 3 if how == "empty_tag" else 1
    assert extra["iteration"] == expected and ck.has_checkpoint()
    torch.testing.assert_close(ck.model.weight, weights[1])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert warnings[0].startswith("resume: skipped ")
    assert warnings[0].endswith(f"resuming from {tmp_path / f'model_{expected:07d}.pth'}")


def test_resume_with_no_loadable_checkpoint_starts_over_with_one_warning(tmp_path, caplog):
    _saved_run(tmp_path)
    for p in tmp_path.glob("*.pth"):
        p.write_bytes(b"garbage")
    ck = _checkpointer(tmp_path, seed=7)
    before = ck.model.weight.detach().clone()
    with caplog.at_level(logging.WARNING):
        assert ck.resume_or_load("", resume=True) == {}
    assert not ck.has_checkpoint()  # so the trainer starts at iteration 0
    torch.testing.assert_close(ck.model.weight, before)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no checkpoint in" in warnings[0] and "iteration 0" in warnings[0]


def test_an_intact_run_resumes_from_the_tag_silently(tmp_path, caplog):
    weights = _saved_run(tmp_path)
    ck = _checkpointer(tmp_path, seed=7)
    with caplog.at_level(logging.WARNING):
        assert ck.resume_or_load("", resume=True)["iteration"] == 3
    torch.testing.assert_close(ck.model.weight, weights[3])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.slow
def test_train_net_resumes_past_a_truncated_last_checkpoint(tmp_path, embedded_dataset, train_net):
    pytest.importorskip("detectron2")
    data, run = embedded_dataset, tmp_path / "run"
    args = ["--config-file",
            str(Path(__file__).resolve().parents[1]
                / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN_dcl.yaml"),
            f"--dataset=emb_train={data}/annotations/instances_train.json:{data}/train",
            "--resume", "DATASETS.TRAIN", "('emb_train',)", "DATASETS.TEST", "()",
            "OUTPUT_DIR", str(run), "SOLVER.IMS_PER_BATCH", "1", "INPUT.MIN_SIZE_TRAIN", "(128,)",
            "INPUT.MAX_SIZE_TRAIN", "160", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "(3,)",
            "SOLVER.CHECKPOINT_PERIOD", "3"]
    train_net(*args, "SOLVER.MAX_ITER", "4")
    assert (run / "last_checkpoint").read_text() == "model_final.pth"
    final = run / "model_final.pth"
    final.write_bytes(final.read_bytes()[:1000])  # as a power loss mid-write would leave it
    log = train_net(*args, "SOLVER.MAX_ITER", "6")
    out = log.stdout + log.stderr
    assert "Starting training from iteration 3" in out
    warnings = [line for line in out.splitlines() if "resume: skipped model_final.pth" in line]
    assert len(warnings) == 1 and warnings[0].endswith(f"resuming from {run / 'model_0000002.pth'}")
    assert (run / "last_checkpoint").read_text() == "model_final.pth"
    assert torch.load(final, map_location="cpu", weights_only=False)["iteration"] == 5
