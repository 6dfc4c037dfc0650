"""Writing results: JSON with ``null`` for undefined stats, written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

__all__ = ["to_json_safe", "write_json_atomic", "read_json"]


def to_json_safe(obj: Any) -> Any:
    """Copy of ``obj`` with float ``nan``/``inf`` replaced by ``None`` (JSON ``null``)."""
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder + os.replace).

    ``nan`` becomes ``null``. The folder is created if missing. Readers never see a partial
    file; on error the temp file is removed and the old file (if any) is kept.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(to_json_safe(obj), f, indent=indent, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; raises ``ValueError`` naming the file if it is not valid JSON."""
    path = os.fspath(path)
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
