"""The project's detectron2 checkpointer: durable writes, a resume past a bad file, no weights
file that would run code, and strict loading (``MODEL.WEIGHTS_CHECK``).

Durable and resumable. detectron2 (fvcore) writes ``model_*.pth`` and the ``last_checkpoint``
tag in place, and a resume trusts the tag: a power loss mid-write leaves a truncated checkpoint
or an empty tag, and every later ``--resume`` then fails with the same traceback.
:class:`ResumableCheckpointer` writes both through :func:`analysis.io.atomic_path` (temp file,
fsync, ``os.replace``), and on resume takes the newest checkpoint that loads, saying in one
warning line what it skipped. ``.pth`` files are read by torch's weights-only loading (fvcore's
``torch.load``); detectron2 reads ``.pkl`` weights with plain ``pickle.load``, so they are first
checked to hold plain data only (:func:`dcl_data.weights.check_plain_pickle`).

Strict. detectron2's ``DetectionCheckpointer`` loads with ``strict=False``: a checkpoint whose
keys do not fit the model is logged and training starts from partly random weights. Given the
config, :class:`ResumableCheckpointer` checks the incompatible keys it reports after loading
with :func:`dcl_data.weights.check_fit` (:func:`enforce_strict_loading`):

- a checkpoint written by a trainer (it has ``"iteration"`` and no ``"__author__"``: a resumed
  run, a run's ``model_final.pth`` at evaluation) must fit exactly;
- initial weights (``MODEL.WEIGHTS``: an ImageNet backbone, a COCO detector) must fill every
  model key under ``MODEL.WEIGHTS_CHECK.SCOPE`` and bring no key the model lacks, except what
  ``MODEL.WEIGHTS_CHECK.DROPPED`` lists (e.g. the 80-class predictors of a COCO model on
  Cityscapes) and the DCL modules this project adds (:data:`PROJECT_NEW`); those drops are
  listed in the log.

ImageNet ResNet weights must also match the config's input convention
(:func:`check_resnet_convention`: MSRA's BGR Caffe2 file vs torchvision's RGB one). A mismatch
stops the process with one line naming the first missing and unexpected key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Dict, Optional

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode as CN

from analysis.io import atomic_path
from dcl_data.weights import (UNREADABLE, CheckpointMismatch, check_fit, check_plain_pickle,
                              refusal_reason, resume_candidates)

__all__ = ["PROJECT_NEW", "ResumableCheckpointer", "add_weights_check_config",
           "check_resnet_convention", "enforce_strict_loading"]

TAG = "last_checkpoint"  # fvcore's name for the file naming the newest checkpoint

#: Modules of this project that no pretrained file has (the dense contrastive loss's projection).
PROJECT_NEW = ("roi_heads.mask_head.contrast_loss.",)
_HINT = "declare keys the recipe drops on purpose in MODEL.WEIGHTS_CHECK.DROPPED"


def add_weights_check_config(cfg: CN) -> CN:
    """Add ``MODEL.WEIGHTS_CHECK`` and return ``cfg``.

    - ``SCOPE`` (str): key prefix that ``MODEL.WEIGHTS`` must fill completely; ``""`` (default)
      the whole model, ``"backbone.bottom_up."`` an ImageNet backbone under an FPN.
    - ``DROPPED`` (list of str): key prefixes the recipe drops on purpose (not loaded, logged).
    """
    cfg.MODEL.WEIGHTS_CHECK = CN()
    cfg.MODEL.WEIGHTS_CHECK.SCOPE = ""
    cfg.MODEL.WEIGHTS_CHECK.DROPPED = []
    return cfg


def check_resnet_convention(checkpoint: dict, cfg, source: str) -> None:
    """Refuse ImageNet ResNet weights of the other convention than the config's.

    MSRA's Caffe2 R-50 (detectron2 reads it with ``__author__ == "Caffe2"``) was trained on BGR
    input with the stride in the 1x1 conv; torchvision's (``__author__`` starting with
    ``torchvision``, tools/convert_torchvision_resnet.py) on RGB with the stride in the 3x3
    conv. The keys fit either way, so only this tells a SparseInst config given MSRA's file.

    Raises:
        CheckpointMismatch: naming the file, the convention and the config's values.
    """
    if "resnet" not in cfg.MODEL.BACKBONE.NAME:
        return
    author = str(checkpoint.get("__author__", ""))
    fmt, stride_in_1x1 = cfg.INPUT.FORMAT, cfg.MODEL.RESNETS.STRIDE_IN_1X1
    if author == "Caffe2":
        wanted, name = ("BGR", True), "MSRA's Caffe2 ResNet"
    elif author.startswith("torchvision"):
        wanted, name = ("RGB", False), "torchvision's ResNet"
    else:
        return
    if (fmt, bool(stride_in_1x1)) != wanted:
        raise CheckpointMismatch(
            f"{source}: {name} weights need INPUT.FORMAT {wanted[0]} and "
            f"MODEL.RESNETS.STRIDE_IN_1X1 {wanted[1]}, but this config has {fmt} and "
            f"{stride_in_1x1}: declare the model's own weights in config.yaml")


def _check(incompatible, checkpoint: dict, cfg, source: str, logger) -> None:
    # A trainer's own checkpoint records its iteration; published files name an author.
    own = "iteration" in checkpoint and "__author__" not in checkpoint
    scope = "" if own else cfg.MODEL.WEIGHTS_CHECK.SCOPE
    dropped = () if own else (*cfg.MODEL.WEIGHTS_CHECK.DROPPED, *PROJECT_NEW)
    shapes = {k: (tuple(a), tuple(b)) for k, a, b in incompatible.incorrect_shapes}
    report = check_fit(incompatible.missing_keys, incompatible.unexpected_keys, shapes,
                       scope=scope, dropped=dropped, source=source,
                       hint="" if own else _HINT)
    for line in report.log_lines(source, scope):
        logger.info(line)


def enforce_strict_loading(checkpointer, cfg, logger=None):
    """Make ``checkpointer`` (a ``DetectionCheckpointer`` or subclass) check every model load.

    Wraps the instance's ``load`` (to know the file's name) and ``_load_model`` (whose
    ``_IncompatibleKeys`` result is checked), so it composes with whatever checkpointer class
    the trainer builds. Returns ``checkpointer``.

    Raises (at load time):
        SystemExit: ``"error: <file> does not fit the model: missing ..., unexpected ..."``.
    """
    logger = logger or logging.getLogger("dcl_detectron2.checkpoint")
    load, load_model = checkpointer.load, checkpointer._load_model
    current = {"path": "checkpoint"}

    def checked_load(path, *args, **kwargs):
        current["path"] = str(path)
        return load(path, *args, **kwargs)

    def checked_load_model(checkpoint):
        try:
            check_resnet_convention(checkpoint, cfg, current["path"])
            incompatible = load_model(checkpoint)
            if incompatible is not None:
                _check(incompatible, checkpoint, cfg, current["path"], logger)
        except CheckpointMismatch as err:
            raise SystemExit(f"error: {err}") from None
        return incompatible

    checkpointer.load = checked_load
    checkpointer._load_model = checked_load_model
    return checkpointer


class _AtomicWrites:
    """A PathManager whose write-mode ``open`` goes through :func:`analysis.io.atomic_path`.

    fvcore writes checkpoints and the tag as ``with path_manager.open(file, "wb") as f:``, so
    the file appears complete at the end of the ``with`` block, or not at all. Everything else
    is the wrapped PathManager's.
    """

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def open(self, path: str, mode: str = "r", **kwargs):
        if not any(c in mode for c in "wax+"):
            return self._inner.open(path, mode, **kwargs)
        return self._atomic_open(path, mode)

    @staticmethod
    @contextlib.contextmanager
    def _atomic_open(path: str, mode: str):
        with atomic_path(path) as tmp, open(tmp, mode) as f:
            yield f


class ResumableCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` with atomic, fsync'ed writes and a resume that falls back.

    Saving: each ``model_*.pth`` and the ``last_checkpoint`` tag are written to a temp file,
    fsync'ed and renamed (:func:`analysis.io.atomic_path`), the checkpoint before the tag, so
    after a power loss the tag names a complete file or the previous one.

    Resuming (``resume_or_load(path, resume=True)``): the checkpoint the tag names is tried
    first, then every other ``*.pth`` of ``save_dir``, newest first; the first that loads is
    resumed from. If any was skipped (truncated, 0 bytes, missing, unreadable, or the tag empty)
    one warning line names it and the one used; if none loads, training starts from ``path``
    (``MODEL.WEIGHTS``) at iteration 0, again with one warning line. ``has_checkpoint()``
    then says whether a checkpoint was resumed from, which ``DefaultTrainer.resume_or_load``
    uses to set the start iteration.

    Loading a ``.pkl`` that holds anything but plain data (numpy arrays, containers), or a
    ``.pth`` that torch's weights-only loading refuses, raises ``pickle.UnpicklingError``
    with one line naming the file, before anything in it runs.

    Given ``cfg`` (keyword), every model load (``MODEL.WEIGHTS``, a resumed checkpoint, a run's
    weights at evaluation) is also checked strictly against ``cfg.MODEL.WEIGHTS_CHECK``
    (:func:`enforce_strict_loading`): a mismatch exits with one ``error:`` line.
    """

    def __init__(self, *args, cfg=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path_manager = _AtomicWrites(self.path_manager)
        self._resumed: Optional[bool] = None
        self._preloaded: Optional[tuple] = None
        if cfg is not None:
            enforce_strict_loading(self, cfg)

    @classmethod
    def like(cls, other: DetectionCheckpointer, cfg=None) -> "ResumableCheckpointer":
        """The same model, folder and checkpointables as ``other`` (e.g. the one
        ``DefaultTrainer`` builds), with this class's saving, resuming and (given ``cfg``)
        strict loading."""
        return cls(other.model, other.save_dir, save_to_disk=other.save_to_disk, cfg=cfg,
                   **other.checkpointables)

    def has_checkpoint(self) -> bool:
        if self._resumed is not None:
            return self._resumed
        return super().has_checkpoint()

    def _tagged(self) -> tuple[Optional[str], str]:
        """(the path the tag names or None, why it is unusable or "")."""
        tag = Path(self.save_dir) / TAG
        try:
            name = tag.read_text().strip()
        except OSError:
            return None, "" if not tag.exists() else f"{TAG} is unreadable"
        if not name:
            return None, f"{TAG} is empty"
        return os.path.join(self.save_dir, name), ""

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        if not resume:
            return super().resume_or_load(path, resume=False)
        tagged, problem = self._tagged()
        skipped = [problem] if problem else []
        for candidate in resume_candidates(self.save_dir, tagged):
            try:
                checkpoint = self._load_file(candidate)
            except UNREADABLE as e:
                reason = " ".join(f"{type(e).__name__}: {e}".split())[:160]
                skipped.append(f"{os.path.basename(candidate)} ({reason})")
                continue
            if skipped:
                self.logger.warning(f"resume: skipped {'; '.join(skipped)}; resuming from "
                                    f"{candidate}")
            self._resumed = True
            self._preloaded = (candidate, checkpoint)
            return self.load(candidate)
        self._resumed = False
        if skipped:
            self.logger.warning(f"resume: no checkpoint in {self.save_dir} loads "
                                f"({'; '.join(skipped)}); starting from "
                                f"{path or 'scratch'} at iteration 0")
        return self.load(path, checkpointables=[])

    def _load_file(self, filename: str) -> Dict[str, Any]:
        if self._preloaded is not None and self._preloaded[0] == filename:
            checkpoint, self._preloaded = self._preloaded[1], None
            return checkpoint
        try:
            if filename.endswith(".pkl"):  # detectron2 would unpickle it with pickle.load
                check_plain_pickle(filename)
            return super()._load_file(filename)
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"{filename} refused: {refusal_reason(e)}") from None
