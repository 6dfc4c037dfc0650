"""Exceptions raised by :mod:`dcl_data`.

Every message is a single line that names the offending file and the entry or key, so a
workflow log shows the cause without a traceback.
"""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset or annotation file is missing, malformed or inconsistent.

    Raised before any training or evaluation starts. ``str(err)`` is one line of the form
    ``"<file>: <entry or key>: <what is wrong>"``.
    """

    def __init__(self, message: str) -> None:
        # Multi-line messages defeat "one clear line in the log": fold them.
        super().__init__(" ".join(str(message).split()))


class DownloadError(RuntimeError):
    """A pinned source archive could not be fetched from the package registry, or its
    sha256 differs from the pinned value. ``str(err)`` is one line naming the package."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
