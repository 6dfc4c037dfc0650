"""A detectron2 checkpointer whose files survive a power loss, whose resume survives a bad file,
and which reads no weights file that would run code.

detectron2 (fvcore) writes ``model_*.pth`` and the ``last_checkpoint`` tag in place, and a
resume trusts the tag: a power loss mid-write leaves a truncated checkpoint or an empty tag, and
every later ``--resume`` then fails with the same traceback. :class:`ResumableCheckpointer`
writes both through :func:`analysis.io.atomic_path` (temp file, fsync, ``os.replace``), and on
resume takes the newest checkpoint that loads, saying in one warning line what it skipped.
``.pth`` files are read by torch's weights-only loading (fvcore's ``torch.load``); detectron2
reads ``.pkl`` weights with plain ``pickle.load``, so they are first checked to hold plain data
only (:func:`analysis.weights.check_plain_pickle`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional

from detectron2.checkpoint import DetectionCheckpointer

from analysis.io import atomic_path
from analysis.weights import UNREADABLE, check_plain_pickle, refusal_reason

__all__ = ["ResumableCheckpointer"]

TAG = "last_checkpoint"  # fvcore's name for the file naming the newest checkpoint


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
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path_manager = _AtomicWrites(self.path_manager)
        self._resumed: Optional[bool] = None
        self._preloaded: Optional[tuple] = None

    @classmethod
    def like(cls, other: DetectionCheckpointer) -> "ResumableCheckpointer":
        """The same model, folder and checkpointables as ``other`` (e.g. the one
        ``DefaultTrainer`` builds), with this class's saving and resuming."""
        return cls(other.model, other.save_dir, save_to_disk=other.save_to_disk,
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

    def _candidates(self, tagged: Optional[str]) -> List[str]:
        others = sorted((p for p in Path(self.save_dir).glob("*.pth") if p.is_file()),
                        key=lambda p: p.stat().st_mtime_ns, reverse=True)
        found = [tagged] if tagged else []
        return found + [str(p) for p in others if str(p) != tagged]

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        if not resume:
            return super().resume_or_load(path, resume=False)
        tagged, problem = self._tagged()
        skipped = [problem] if problem else []
        for candidate in self._candidates(tagged):
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
