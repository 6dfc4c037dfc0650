"""Does a checkpoint fit the model it initialises? One rule for detectron2 and mmdetection.

A pretrained file rarely covers the whole model: an ImageNet classifier fills the backbone only
(the rest starts fresh, by design), and a COCO detector lacks the dataset's class-specific
predictors (the recipe drops them on purpose). Everything else must fit: a missing backbone
tensor, a tensor the model has no place for, or a shape that differs means the wrong file or
the wrong model, which frameworks only log (detectron2's ``DetectionCheckpointer``, mmengine's
``load_checkpoint(strict=False)``) before training from partly random weights.

:func:`check_fit` applies that rule to the incompatible keys a framework reports. The
framework glue is ``dcl_detectron2.checkpoint`` and ``dcl_mmdet.checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Sequence, Tuple

__all__ = ["CheckpointMismatch", "FitReport", "WeightsFileError", "check_fit", "compare_state_dicts",
           "read_state_dict"]

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
    from pathlib import Path

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
