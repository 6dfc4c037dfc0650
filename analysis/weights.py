"""Weights files read without running code, and why one is refused, in one line.

torch's weights-only loading (the default of ``torch.load`` since torch 2.6) covers ``.pth``
checkpoints; detectron2 reads its model-zoo ``.pkl`` weights with plain ``pickle.load``, which
runs whatever a crafted file asks. :func:`check_plain_pickle` reads such a file with only numpy
arrays, scalars, dtypes and ``OrderedDict`` allowed, so callers can refuse it before detectron2
unpickles it. Used by the detectron2 and mmdetection adapters alike.
"""

from __future__ import annotations

import codecs
import collections
import os
import pickle
from typing import Any, Dict

__all__ = ["UNREADABLE", "check_plain_pickle", "numpy_globals", "refusal_reason"]

# What loading raises on a truncated, empty, garbled, vanished or code-carrying weights file.
UNREADABLE = (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError)


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
