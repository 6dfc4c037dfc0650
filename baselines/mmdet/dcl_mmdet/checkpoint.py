"""mmengine checkpoints and pretrained weights: read without running code, checked to fit the
model before training, written durably, and resumed past a bad one.

- :func:`allow_mmengine_checkpoints`: torch's weights-only loader (the default since torch 2.6)
  refuses mmengine 0.10 checkpoints, which pickle the message hub's ``HistoryBuffer``, numpy
  arrays and ``getattr(HistoryBuffer, "min")``-style references to its statistics. Instead of
  turning weights-only loading off (then any ``.pth`` given as ``load_from``, pretrained
  weights or a checkpoint to predict with could run code), these few globals are allowlisted,
  ``getattr`` only for ``HistoryBuffer``'s public methods.
- :func:`check_weights_fit`: mmengine loads both ``init_cfg=dict(type='Pretrained',
  checkpoint=...)`` and ``load_from`` with ``strict=False`` and only logs what did not fit.
  Each local file is read first (weights-only, with the allowlist above) and compared with the
  module it initialises (:func:`dcl_data.weights.check_fit`):

  - a ``Pretrained`` init of a sub-module (the ImageNet backbone) must fill that module
    completely; the classifier of the ImageNet file (``fc.*``, ``head.*``) is dropped on purpose;
  - ``load_from`` (a whole detector) must fill the whole model, except the key prefixes listed
    in the config's ``load_from_dropped`` (e.g. class-specific predictors from another dataset).

  ``num_batches_tracked`` is ignored on both sides, as mmengine's loader does.
- :class:`DurableCheckpointHook` (HOOKS): mmengine's ``CheckpointHook`` whose checkpoint files
  go through :func:`analysis.io.atomic_path` (temp file, fsync, ``os.replace``) and whose
  ``last_checkpoint`` tag is rewritten the same way right after mmengine writes it in place.
- :func:`resume_checkpoint`: the checkpoint a ``--resume`` should start from: the tagged one if
  it loads, else the newest that does, with one warning line saying what was skipped.
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from analysis.io import atomic_path, write_text_atomic
from dcl_data.weights import (UNREADABLE, CheckpointMismatch, WeightsFileError, check_fit,
                              compare_state_dicts, numpy_globals, read_state_dict,
                              refusal_reason, resume_candidates)

from .runner_setup import CliError

__all__ = ["CLASSIFIER_HEADS", "DURABLE_BACKEND", "DurableCheckpointHook", "FINAL",
           "allow_mmengine_checkpoints", "check_weights_fit", "checkpoint_classes",
           "checkpoint_error", "checkpoint_shapes", "publish_final", "resume_checkpoint",
           "train_and_publish"]

DURABLE_BACKEND = "dcl_durable_local"
TAG = "last_checkpoint"  # mmengine's name for the file naming the newest checkpoint
#: The finished run's weights, published once training reached its last iteration.
FINAL = "model_final.pth"
#: An ImageNet classifier's head: never part of a detection backbone, dropped on purpose.
CLASSIFIER_HEADS = ("fc.", "head.")
_IGNORE = ("num_batches_tracked",)


def _history_buffer_method(obj, name: str):
    """``builtins.getattr`` as mmengine checkpoints need it, and no further: a public method
    of ``HistoryBuffer`` (its statistics, pickled by reference)."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and not name.startswith("_") and callable(getattr(obj, name, None)):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed in a checkpoint")


def allow_mmengine_checkpoints() -> None:
    """Allowlist, for torch's weights-only loader, what mmengine checkpoints hold beyond tensors.

    ``HistoryBuffer``, numpy arrays, scalars and dtypes (under numpy 1 and 2 names), and a
    ``getattr`` restricted to ``HistoryBuffer``'s public methods. Idempotent; affects only what
    weights-only loading accepts (``torch.serialization.add_safe_globals``), never turns it off.
    """
    import torch
    from mmengine.logging import HistoryBuffer

    allowed: List = [HistoryBuffer, (_history_buffer_method, "builtins.getattr")]
    allowed += [(obj, name) for name, obj in numpy_globals().items()]
    torch.serialization.add_safe_globals(allowed)


def checkpoint_error(path: os.PathLike | str) -> Optional[str]:
    """None if ``path`` loads with weights-only loading, else why not, in one line.

    Memory-maps the file, so tensors are not read: cheap even for large checkpoints (a file in
    torch's legacy, non-zip format is read whole).
    """
    import torch

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return "empty file (0 bytes)"
    try:
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap can only be used" not in str(e):
                raise
            torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE as e:
        return refusal_reason(e)
    return None


def resume_checkpoint(work_dir: os.PathLike | str) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint a resumed run in ``work_dir`` should load, and a warning if one is due.

    Tries the file ``last_checkpoint`` names, then every other ``*.pth`` of ``work_dir`` newest
    first (``model_final.pth`` too); the first that loads (:func:`checkpoint_error`) wins.

    Returns:
        (path or None, warning line or None): None and no warning for a fresh folder; None and
        a warning when checkpoints exist but none loads (training then starts over).
    """
    work_dir = Path(work_dir)
    tag = work_dir / TAG
    skipped: List[str] = []
    tagged = None
    if tag.is_file():
        name = tag.read_text().strip()
        if name:  # mmengine writes the path as it joined it; the file lies in work_dir
            tagged = str(work_dir / Path(name).name)
        else:
            skipped.append(f"{TAG} is empty")
    for candidate in resume_candidates(work_dir, tagged):
        error = checkpoint_error(candidate)
        if error is None:
            warning = (f"resume: skipped {'; '.join(skipped)}; resuming from {candidate}"
                       if skipped else None)
            return candidate, warning
        skipped.append(f"{os.path.basename(candidate)} ({error})")
    if skipped:
        return None, (f"resume: no checkpoint in {work_dir} loads ({'; '.join(skipped)}); "
                      "starting over")
    return None, None


def publish_final(work_dir: os.PathLike | str) -> Path:
    """Make ``work_dir/model_final.pth`` the checkpoint named in ``work_dir/last_checkpoint``
    (a hard link, or a copy across file systems), atomically."""
    import shutil

    work_dir = Path(work_dir)
    last = Path((work_dir / TAG).read_text().strip())
    final = work_dir / FINAL
    with atomic_path(final) as tmp:
        os.unlink(tmp)
        try:
            os.link(last, tmp)
        except OSError:  # another file system, or no hard links
            shutil.copyfile(last, tmp)
    return final


def train_and_publish(cfg, work_dir: Path, resume: bool, build_errors: tuple = ()) -> int:
    """Train ``cfg`` with mmengine's Runner and publish ``model_final.pth``; the exit status.

    Without ``resume`` an old ``model_final.pth`` is removed first. torchrun on CPUs gets gloo
    and DDP without device ids (:func:`dcl_mmdet.distributed.setup_cpu_distributed`). An error
    of ``build_errors`` while the model is built, or a weights file that weights-only loading
    refuses while training starts, is one line on stderr (status 2). Once training has reached
    its last iteration the main process publishes the last checkpoint (:func:`publish_final`).
    """
    import sys

    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from .distributed import setup_cpu_distributed

    if not resume:
        (Path(work_dir) / FINAL).unlink(missing_ok=True)
    setup_cpu_distributed(cfg)
    try:
        runner = Runner.from_cfg(cfg)
    except build_errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        runner.train()
    except pickle.UnpicklingError as e:
        print(f"error: {' '.join(str(e).split())[:300]}", file=sys.stderr)
        return 2
    if runner.iter >= runner.max_iters and is_main_process():
        print(f"model_final: {publish_final(work_dir)}")
    return 0


def checkpoint_classes(path: os.PathLike | str) -> Optional[Tuple[str, ...]]:
    """The class names stored in an mmengine checkpoint's meta, or None if it has none.

    Raises:
        CliError: weights-only loading refuses the file (damaged, or carrying code).
    """
    import torch

    if error := checkpoint_error(path):
        raise CliError(f"{path} refused: {error}")
    meta = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("meta", {})
    classes = (meta.get("dataset_meta") or {}).get("classes")
    return tuple(classes) if classes is not None else None


class _DurableLocalBackend(LocalBackend):
    """mmengine's local file backend, writing through :func:`analysis.io.atomic_path`."""

    def put(self, obj: bytes, filepath) -> None:
        with atomic_path(filepath) as tmp:
            Path(tmp).write_bytes(obj)

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        with atomic_path(filepath) as tmp:
            Path(tmp).write_text(obj, encoding=encoding)


register_backend(DURABLE_BACKEND, _DurableLocalBackend, force=True)


@HOOKS.register_module()
class DurableCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose files survive a power loss.

    Checkpoints are written by the ``dcl_durable_local`` backend (temp file, fsync,
    ``os.replace``) unless ``backend_args`` names another; mmengine writes ``last_checkpoint``
    in place, so it is rewritten atomically and durably right after. A power loss in that
    short window can leave the tag empty, which :func:`resume_checkpoint` does not trust.
    """

    def __init__(self, *args, backend_args: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, backend_args=backend_args or {"backend": DURABLE_BACKEND},
                         **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta):
        super()._save_checkpoint_with_step(runner, step, meta)
        tag = Path(runner.work_dir) / TAG
        if tag.is_file():  # the main process wrote it
            write_text_atomic(tag, self.last_ckpt)

def checkpoint_shapes(path: str, prefix: Optional[str] = None) -> dict:
    """``{key: shape}`` of a weights file as mmengine would load it.

    Unwraps ``state_dict``/``model``, strips ``module.`` (mmengine's default revise_keys) and,
    with ``prefix`` (PretrainedInit's option), keeps only the keys under it, prefix removed.

    Raises:
        CliError: missing or unreadable file, a file weights-only loading refuses (beyond
            :func:`allow_mmengine_checkpoints`), or no dict of tensors.
    """
    allow_mmengine_checkpoints()  # an mmengine checkpoint as load_from reads, nothing more
    try:
        data = read_state_dict(path)
    except WeightsFileError as err:
        raise CliError(str(err)) from None
    shapes = {k.removeprefix("module."): tuple(v.shape) for k, v in data.items()}
    if prefix:
        p = prefix if prefix.endswith(".") else prefix + "."
        shapes = {k[len(p):]: s for k, s in shapes.items() if k.startswith(p)}
    return shapes


def _module_shapes(module_cfg: dict) -> dict:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = copy.deepcopy(dict(module_cfg))
    cfg.pop("init_cfg", None)
    module = MODELS.build(cfg)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check(module_cfg: dict, path: str, prefix: Optional[str], dropped: Sequence[str],
           source: str) -> List[str]:
    missing, unexpected, mismatch = compare_state_dicts(
        _module_shapes(module_cfg), checkpoint_shapes(path, prefix), ignore=_IGNORE)
    try:
        report = check_fit(missing, unexpected, mismatch, dropped=dropped, source=source)
    except CheckpointMismatch as err:
        raise CliError(str(err)) from None
    return report.log_lines(source, "")


def check_weights_fit(model_cfg: dict, load_from: Optional[str] = None,
                      load_from_dropped: Sequence[str] = ()) -> List[str]:
    """Check the local files of the model's ``Pretrained`` inits and of ``load_from``.

    Args:
        model_cfg: ``cfg.model``; each direct sub-module config (``backbone``, ``neck``, ...)
            with ``init_cfg.type == 'Pretrained'`` and a local ``checkpoint`` is checked.
        load_from: ``cfg.load_from``, a whole-model checkpoint, or None.
        load_from_dropped: key prefixes of the whole model ``load_from`` may leave out.

    Returns:
        Log lines naming what was dropped on purpose.

    Raises:
        CliError: one line naming the first missing and unexpected key (``check_fit``).
    """
    lines: List[str] = []
    for name, sub in model_cfg.items():
        init = sub.get("init_cfg") if isinstance(sub, dict) else None
        if not (isinstance(init, dict) and init.get("type") == "Pretrained"):
            continue
        ckpt = init.get("checkpoint")
        if not isinstance(ckpt, str) or "://" in ckpt:
            continue  # mmengine's own names (torchvision://...) are left to mmengine
        lines += _check(sub, ckpt, init.get("prefix"), CLASSIFIER_HEADS,
                        f"{ckpt} (model.{name}.init_cfg)")
    if load_from and "://" not in load_from:
        lines += _check(model_cfg, load_from, None, tuple(load_from_dropped),
                        f"{load_from} (load_from)")
    return lines
