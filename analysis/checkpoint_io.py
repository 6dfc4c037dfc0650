"""Weight files from elsewhere: read them safely and rename their keys (the converters in
``baselines/*/tools``).

- :func:`load_state_dict`: a tensor-only checkpoint (``torch.load(weights_only=True)``, so no
  pickled code runs), unwrapped from ``"model"`` (detectron2) or ``"state_dict"`` (mmengine):
  the project's one reader, :func:`dcl_data.weights.read_state_dict`, with the converters'
  error type.
- :func:`rename_state_dict`: apply a table of full-match regex rules; a key no rule places is an
  error, never a silent skip (a framework that loads non-strictly would otherwise leave those
  layers at their random init).
- :func:`save_checkpoint`: ``torch.save`` through :func:`analysis.io.atomic_path`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

from analysis.io import atomic_path
from dcl_data.weights import WeightsFileError, read_state_dict

__all__ = ["ConversionError", "RenameRule", "load_state_dict", "rename_state_dict",
           "save_checkpoint"]

#: (pattern, replacement): the pattern must match the whole key; the replacement is a
#: ``re.Match.expand`` template, a function of the match returning the new key, or None to drop
#: the key on purpose (a tensor known to have no counterpart and no effect).
RenameRule = Tuple[str, Union[str, Callable[[re.Match], str], None]]


class ConversionError(ValueError):
    """The input is not a checkpoint of the expected model (message: one line)."""


def load_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """A state dict from ``path`` (a plain state dict, or one under ``"model"``/``"state_dict"``),
    read by :func:`dcl_data.weights.read_state_dict` (tensor-only, ``weights_only=True``).

    Raises:
        ConversionError: the file is missing, unreadable as a tensor-only checkpoint, or holds
            no dict of tensors (the reader's one-line message).
    """
    try:
        return read_state_dict(path)
    except WeightsFileError as err:
        raise ConversionError(str(err)) from None


def rename_state_dict(state: Mapping[str, torch.Tensor], rules: Sequence[RenameRule],
                      what: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """Rename every key of ``state`` by the first rule whose pattern matches it whole.

    Args:
        state: ``{name: tensor}``.
        rules: :data:`RenameRule` pairs, tried in order.
        what: the kind of checkpoint, for the error message.

    Returns:
        ``{new name: tensor}`` (tensors detached and cloned), without the dropped keys.

    Raises:
        ConversionError: a key no rule matches, a rule's function refusing a key (it raises
            ConversionError itself), or two keys renamed to the same name.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out: Dict[str, torch.Tensor] = {}
    source: Dict[str, str] = {}
    for key, value in state.items():
        new: Optional[str] = None
        for pattern, repl in compiled:
            match = pattern.fullmatch(key)
            if match is None:
                continue
            if repl is None:
                break
            new = repl(match) if callable(repl) else match.expand(repl)
            break
        else:
            raise ConversionError(f"cannot place {key} {tuple(value.shape)}: not a key of a "
                                  f"{what}")
        if new is None:
            continue
        if new in out:
            raise ConversionError(f"{key} and {source[new]} both map to {new}")
        out[new], source[new] = value.detach().clone(), key
    return out


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """``torch.save(obj, path)``, atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
