"""Does a checkpoint fit the model it initialises? One rule for detectron2 and mmdetection.

A pretrained file rarely covers the whole model: an ImageNet classifier fills the backbone only
(the rest starts fresh, by design), and a COCO detector lacks the dataset's class-specific
predictors (the recipe drops them on purpose). Everything else must fit: a missing backbone
tensor, a tensor the model has no place for, or a shape that differs means the wrong file or
the wrong model, which frameworks only log (detectron2's ``DetectionCheckpointer``, mmengine's
``load_checkpoint(strict=False)``) before training from partly random weights.

:func:`check_fit` applies that rule to the incompatible keys a framework reports. The
framework glue is ``dcl_detectron2.checkpoint`` and ``dcl_mmdet.checkpoint``.

Weights files are also read without running code. torch's weights-only loading (the default of
``torch.load`` since torch 2.6; :func:`read_state_dict`) covers ``.pth`` checkpoints; detectron2
reads its model-zoo ``.pkl`` weights with plain ``pickle.load``, which runs whatever a crafted
file asks. :func:`check_plain_pickle` reads such a file with only numpy arrays, scalars, dtypes
and ``OrderedDict`` allowed, so callers can refuse it before detectron2 unpickles it;
:func:`refusal_reason` keeps torch's refusal to one line.
"""

from __future__ import annotations

import codecs
import collections
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

__all__ = ["CheckpointMismatch", "FitReport", "UNREADABLE", "WeightsFileError", "check_fit",
           "check_plain_pickle", "compare_state_dicts", "numpy_globals", "read_state_dict",
           "refusal_reason", "resume_candidates"]

Shape = Tuple[int, ...]


class CheckpointMismatch(ValueError):
    """The checkpoint's keys or shapes do not fit the model. ``str(err)`` is one line naming
    the first missing, unexpected and mis-shaped key."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class WeightsFileError(ValueError):
    """A weights file is missing, unreadable, or holds no dict of tensors (one line)."""


def read_state_dict(path) -> dict:
    """The ``{name: tensor}`` of a PyTorch weights file: a plain state dict, or one under
    ``"model"`` or ``"state_dict"``. Read with ``weights_only=True``: a weights file needs no
    pickled code, so any is refused.

    Raises:
        WeightsFileError: ``<path>: file not found``, ``<path>: not a readable PyTorch
            checkpoint (...)`` or ``<path>: expected a state dict of tensors``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file; report one line
        raise WeightsFileError(f"{path}: not a readable PyTorch checkpoint "
                               f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if isinstance(data, dict):
        for key in ("model", "state_dict"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsFileError(f"{path}: expected a state dict of tensors")
    return data


@dataclass(frozen=True)
class FitReport:
    """What loading left out on purpose.

    Attributes:
        dropped: keys (model or checkpoint names) matching one of the recipe's ``dropped``
            prefixes: missing, unexpected or mis-shaped, and not loaded.
        fresh: number of model keys outside ``scope`` the checkpoint did not fill; they keep
            the model's own initialisation.
    """

    dropped: Tuple[str, ...]
    fresh: int

    def log_lines(self, source: str, scope: str) -> list:
        lines = []
        if self.dropped:
            lines.append(f"{source}: {len(self.dropped)} tensors dropped on purpose by the "
                         f"recipe (they start fresh): {', '.join(self.dropped)}")
        if self.fresh:
            lines.append(f"{source}: {self.fresh} model tensors outside {scope!r} are not in the "
                         "checkpoint and keep their initialisation")
        return lines


def _first(keys: Sequence[str]) -> str:
    return f"{keys[0]!r}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")


def check_fit(missing: Iterable[str], unexpected: Iterable[str],
              shape_mismatch: Mapping[str, Tuple[Shape, Shape]], *, scope: str = "",
              dropped: Sequence[str] = (), source: str = "checkpoint",
              hint: str = "") -> FitReport:
    """Raise unless every difference between checkpoint and model is intended.

    Args:
        missing: model keys the checkpoint did not fill (shape-mismatched ones may be included:
            they are counted once, as mismatches).
        unexpected: checkpoint keys the model has no place for.
        shape_mismatch: ``{key: (shape in checkpoint, shape in model)}``.
        scope: key prefix the checkpoint must fill completely (``""``: the whole model;
            ``"backbone.bottom_up."``: an ImageNet backbone). Missing keys outside it start
            fresh.
        dropped: key prefixes the recipe drops on purpose (e.g. ``roi_heads.box_predictor.``
            when starting from COCO); any difference there is allowed and reported.
        source: name of the checkpoint in the message.
        hint: appended to the error (where to declare an intended drop).

    Returns:
        A :class:`FitReport` of what was left out on purpose.

    Raises:
        CheckpointMismatch: one line with the first missing (in ``scope``), unexpected and
            mis-shaped key not covered by ``dropped``.
    """
    dropped = tuple(dropped)

    def intended(key: str) -> bool:
        return key.startswith(dropped) if dropped else False

    mismatched = sorted(k for k in shape_mismatch if not intended(k))
    missing = sorted(set(missing) - set(shape_mismatch))
    bad_missing = [k for k in missing if k.startswith(scope) and not intended(k)]
    bad_unexpected = sorted(k for k in unexpected if not intended(k))
    if bad_missing or bad_unexpected or mismatched:
        parts = []
        if bad_missing:
            parts.append(f"missing {_first(bad_missing)}")
        if bad_unexpected:
            parts.append(f"unexpected {_first(bad_unexpected)}")
        if mismatched:
            key = mismatched[0]
            ckpt, model = shape_mismatch[key]
            parts.append(f"shape of {_first(mismatched)}: {tuple(ckpt)} in the checkpoint, "
                         f"{tuple(model)} in the model")
        raise CheckpointMismatch(f"{source} does not fit the model: {'; '.join(parts)}"
                                 + (f" ({hint})" if hint else ""))
    drops = sorted({k for k in (*missing, *unexpected, *shape_mismatch) if intended(k)})
    fresh = sum(1 for k in missing if not k.startswith(scope) and not intended(k))
    return FitReport(dropped=tuple(drops), fresh=fresh)


def compare_state_dicts(model_state: Mapping[str, Shape], ckpt_state: Mapping[str, Shape],
                        ignore: Sequence[str] = ()) -> Tuple[list, list, Dict[str, Tuple[Shape, Shape]]]:
    """(missing, unexpected, shape_mismatch) between two ``{key: shape}`` maps, ignoring keys
    that contain one of ``ignore`` (e.g. ``num_batches_tracked``, which loaders skip)."""

    def keep(key: str) -> bool:
        return not any(s in key for s in ignore)

    missing = sorted(k for k in model_state if k not in ckpt_state and keep(k))
    unexpected = sorted(k for k in ckpt_state if k not in model_state and keep(k))
    mismatch = {k: (tuple(ckpt_state[k]), tuple(model_state[k])) for k in model_state
                if k in ckpt_state and keep(k) and tuple(ckpt_state[k]) != tuple(model_state[k])}
    return missing, unexpected, mismatch

# What loading raises on a truncated, empty, garbled, vanished or code-carrying weights file.
UNREADABLE = (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError)


def resume_candidates(folder: str | os.PathLike, tagged: Optional[str]) -> List[str]:
    """The checkpoints a resumed run tries, in order: ``tagged`` (the file the run's tag names,
    or None), then every other ``*.pth`` of ``folder``, newest first (by modification time).

    One policy for detectron2 (:class:`dcl_detectron2.checkpoint.ResumableCheckpointer`) and
    mmdetection (:func:`dcl_mmdet.checkpoint.resume_checkpoint`); each loads the candidates its
    own way and takes the first that loads.
    """
    others = sorted((p for p in Path(folder).glob("*.pth") if p.is_file()),
                    key=lambda p: p.stat().st_mtime_ns, reverse=True)
    return ([tagged] if tagged else []) + [str(p) for p in others if str(p) != tagged]


def refusal_reason(error: BaseException, limit: int = 200) -> str:
    """``"Type: reason"`` on one line, at most ``limit`` characters.

    torch explains a refused global over several paragraphs (what changed in torch 2.6, the
    options, a link); only the line saying what was refused is kept.
    """
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].split("\n\nCheck the documentation", 1)[0]
    else:
        paragraphs = [p for p in text.split("\n\n") if p.strip() and not p.startswith(
            ("Weights only load failed", "Check the documentation"))]
        reason = (paragraphs or [text])[0]
    return " ".join(f"{type(error).__name__}: {reason}".split())[:limit]


def numpy_globals() -> Dict[str, Any]:
    """The numpy names plain weights files pickle (arrays, scalars, dtypes), by their pickled
    names under numpy 1 and 2, mapped to the objects: the allowlist for unpickling them."""
    import numpy as np

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    numeric = np._core.numeric if hasattr(np, "_core") else np.core.numeric
    for name in ("_reconstruct", "scalar"):
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed[f"{module}.{name}"] = getattr(multiarray, name)
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # arrays, pickle protocol 5
        allowed[f"{module}._frombuffer"] = numeric._frombuffer
    for name in np.dtypes.__all__:
        allowed[f"numpy.dtypes.{name}"] = getattr(np.dtypes, name)
    return allowed


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        # _codecs.encode: how protocol-2 pickles written by Python 3 store bytes.
        allowed = {**numpy_globals(), "collections.OrderedDict": collections.OrderedDict,
                   "_codecs.encode": codecs.encode}
        key = f"{module}.{name}"
        if key not in allowed:
            raise pickle.UnpicklingError(f"global {key} is not allowed in a weights file")
        return allowed[key]


def check_plain_pickle(path: str | os.PathLike) -> None:
    """Read a pickled weights file (detectron2's ``.pkl``) allowing only plain data.

    Containers, numbers, strings, bytes, numpy arrays/scalars/dtypes and ``OrderedDict``: what
    model zoo weights hold. Nothing is imported or called beyond those, so a crafted file is refused
    before any of its code runs.

    Raises:
        pickle.UnpicklingError: the file refers to anything else, or is not a pickle (one line
            naming the file and the global).
        OSError, EOFError: the file is missing, unreadable or truncated.
    """
    with open(path, "rb") as f:
        try:
            _PlainUnpickler(f, encoding="latin1").load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"{path}: {e}") from None
