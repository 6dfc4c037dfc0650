"""Datasets for the DCL reproduction: the embedded default dataset built from human-annotated
images inside registry packages, and COCO-format validation run before training and
evaluation.

Public API:

* :func:`validate_coco_instances` / :class:`CocoSummary` / :class:`DatasetError`
  (CLI ``python -m dcl_data.validate FILE.json [--image-root DIR]``)
* :func:`build_embedded_dataset` (CLI ``python -m dcl_data.embedded --downloads DIR --out DIR``)
* :func:`fetch_sources` (CLI ``python -m dcl_data.download --downloads DIR``)

Paper-scale preparation (used by the workflow's data rules), in their own modules:

* ``dcl_data.paper_sets``: layout checks of COCO and Cityscapes trees
* ``dcl_data.cityscapes_convert``: Cityscapes fine -> COCO-format instance JSON
* ``dcl_data.coco_subsets``: COCO-OCC and mini-COCO
"""

from .errors import DatasetError, DownloadError

__all__ = [
    "CocoSummary",
    "DatasetError",
    "DownloadError",
    "build_embedded_dataset",
    "fetch_sources",
    "validate_coco_instances",
]

# Resolved lazily: the CLI modules must not be imported by the package itself (runpy warns
# when ``python -m dcl_data.validate`` finds its module already imported), and the validator
# should not pull in the builder's imports.
_LAZY = {
    "CocoSummary": "validate",
    "validate_coco_instances": "validate",
    "build_embedded_dataset": "embedded",
    "fetch_sources": "download",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dcl_data' has no attribute {name!r}")
