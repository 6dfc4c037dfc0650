"""Results files: JSON with ``null`` for undefined numbers, and atomic writes.

Every file the project writes for others to read (predictions, metrics, error analysis, tables,
figures, datasets, checkpoints) goes through :func:`atomic_path`, so a reader or a resumed run
never sees a half-written file: it is absent, the old one, or complete, even after a power loss
(the data is fsync'ed before the rename, and the folder after it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

__all__ = ["atomic_path", "check_outputs", "input_overwritten_by", "read_json", "to_json_safe",
           "write_json_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temp file name beside ``path``; on success it replaces ``path`` (``os.replace``).

    The folder is created if missing. On an exception the temp file is removed and any old
    ``path`` is kept. The file is fsync'ed before ``os.replace`` and the folder after, so the
    rename never reaches the disk before the data, and survives a power loss once done. The temp name keeps ``path``'s extension, so writers that pick a format
    by extension (matplotlib) still work. Permissions follow the umask like a plain ``open``
    (``mkstemp`` alone would leave 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from None
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if tmp in (e.filename, e.filename2):   # name what the user asked for, not the temp file
            raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the data itself was synced
        if not os.path.isdir(path):
            raise
    finally:
        os.close(fd)


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same inode (hard and symbolic links
    included) or, where either is missing, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def input_overwritten_by(out: str | os.PathLike,
                         inputs: "Iterable[str | os.PathLike | None]") -> Optional[str]:
    """The first of ``inputs`` that ``out`` names (so writing ``out`` would destroy it), else
    None. Symbolic links, hard links and ``..`` count as the same file; ``None`` and empty
    inputs (an unset ``MODEL.WEIGHTS``) are skipped. The one such check: :func:`check_outputs`
    and the training scripts use it."""
    return next((str(p) for p in inputs if p and _same_file(Path(out), Path(p))), None)


def check_outputs(outputs: Iterable[Optional[str | os.PathLike]],
                  inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse, before any work, output paths that would destroy an input or cannot be written.

    ``None`` outputs (options not given) are skipped. Folders that do not exist yet are fine
    (:func:`atomic_path` creates them) as long as their nearest existing ancestor is a
    writable folder.

    Raises:
        ValueError: one line naming the output: it is one of ``inputs`` (through a symbolic
            or hard link too), it is given twice, it is a folder, or its folder cannot be
            created or written.
    """
    inputs = list(inputs)
    seen: list[Path] = []
    for out in outputs:
        if out is None:
            continue
        p = Path(out)
        if (i := input_overwritten_by(p, inputs)) is not None:
            raise ValueError(f"{out}: the output is the input {i}; refusing to overwrite it")
        if any(_same_file(p, q) for q in seen):
            raise ValueError(f"{out}: given as two outputs")
        seen.append(p)
        if p.is_dir():
            raise ValueError(f"{out}: the output is a folder")
        folder = Path(os.path.abspath(p)).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ValueError(f"{out}: cannot write there: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{out}: cannot write there: folder {folder} is not writable")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def to_json_safe(obj: Any) -> Any:
    """Copy of ``obj`` with float ``nan``/``inf`` replaced by ``None`` (JSON ``null``).

    pycocotools reports an undefined stat (no ground truth in an area range) as -1, which the
    project carries as ``nan``; JSON has no NaN, so it is written as ``null``.
    """
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: Optional[int] = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically; ``nan``/``inf`` become ``null``.

    Raises:
        TypeError: ``obj`` holds something JSON cannot encode (the old file is kept).
    """
    text = json.dumps(to_json_safe(obj), indent=indent, allow_nan=False) + "\n"
    write_text_atomic(path, text)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file.

    Raises:
        ValueError: the file is not valid JSON (the message names the file and position).
    """
    path = os.fspath(path)
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
