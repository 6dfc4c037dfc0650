"""Partially-supervised COCO data for mmdetection 3: instances carry ``is_novel``.

The official code (huiserwang/ContrastMask ``ilib/dataset/cocops.py``, ``pipelines.py``) adds a
per-instance ``is_novel`` flag (label not in the base set) and passes it to the RoI head
through the image metas. Here the flag travels as an instance field, as mmdet 3 carries boxes
and labels:

- :class:`CocoPartialDataset` (DATASETS): ``CocoDataset`` whose instances get
  ``is_novel`` from the novel split (``novel='voc'`` or ``'nonvoc'``, by class name,
  :mod:`dcl_data.voc_split`);
- :class:`LoadPartialAnnotations` (TRANSFORMS): ``LoadAnnotations`` that also loads
  ``gt_is_novel`` (bool ``[N]``, instance order);
- :class:`PackPartialInputs` (TRANSFORMS): ``PackDetInputs`` that packs it as
  ``gt_instances.is_novel`` (bool ``[N]``; ignored instances keep theirs apart, like labels).

Masks are loaded for every instance, novel ones included, as in the official code: the RoI head
decides what sees them (:class:`~dcl_mmdet.contrastmask.ContrastMaskRoIHead`: only base
ground-truth-box RoIs are trained on masks; novel RoIs use CAM pseudo masks).
Transforms that drop instances (e.g. ``FilterAnnotations``) do not know ``gt_is_novel``: keep
them out of these pipelines (the packer refuses a length mismatch).
"""

from __future__ import annotations

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
from mmdet.registry import DATASETS, TRANSFORMS

from dcl_data.voc_split import novel_flags

__all__ = ["CocoPartialDataset", "LoadPartialAnnotations", "PackPartialInputs"]


@DATASETS.register_module()
class CocoPartialDataset(CocoDataset):
    """``CocoDataset`` for partially-supervised training and evaluation.

    Args:
        novel: the novel split: ``'voc'`` (the setting nonvoc -> voc: the 20 VOC classes are
            novel, the official configs' choice) or ``'nonvoc'`` (voc -> nonvoc); every
            other class is base.
        **kwargs: ``CocoDataset``'s.

    Each instance of ``data_info['instances']`` gets ``is_novel`` (bool).

    Raises:
        ValueError: an unknown split, or one that leaves no novel or no base class in the
            dataset's classes (one line naming the split).
    """

    def __init__(self, *args, novel: str = "voc", **kwargs) -> None:
        self.novel = novel
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        # The classes are final here (metainfo given or read from the file).
        self._novel_flags = novel_flags(self.novel, list(self.metainfo["classes"]))
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict):
        data_info = super().parse_data_info(raw_data_info)
        for instance in data_info["instances"]:
            instance["is_novel"] = bool(self._novel_flags[instance["bbox_label"]])
        return data_info

    @property
    def novel_labels(self) -> list:
        """The 0-based labels of the novel classes."""
        return [i for i, flag in enumerate(self._novel_flags) if flag]


@TRANSFORMS.register_module()
class LoadPartialAnnotations(LoadAnnotations):
    """``LoadAnnotations`` that also loads ``gt_is_novel`` (bool ``[N]``) from the instances.

    Raises:
        KeyError: an instance without ``is_novel`` (the dataset is not a
            :class:`CocoPartialDataset`), naming the field.
    """

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        instances = results.get("instances", [])
        if any("is_novel" not in inst for inst in instances):
            raise KeyError("instances have no 'is_novel': use the CocoPartialDataset dataset")
        results["gt_is_novel"] = np.array([bool(inst["is_novel"]) for inst in instances],
                                          dtype=bool)
        return results


@TRANSFORMS.register_module()
class PackPartialInputs(PackDetInputs):
    """``PackDetInputs`` that also packs ``gt_is_novel`` as ``gt_instances.is_novel``.

    Raises:
        ValueError: ``gt_is_novel`` and the labels differ in length (a transform dropped
            instances without it).
    """

    mapping_table = {**PackDetInputs.mapping_table, "gt_is_novel": "is_novel"}

    def transform(self, results: dict) -> dict:
        if "gt_is_novel" in results and "gt_bboxes_labels" in results and \
                len(results["gt_is_novel"]) != len(results["gt_bboxes_labels"]):
            raise ValueError(f"gt_is_novel has {len(results['gt_is_novel'])} entries for "
                             f"{len(results['gt_bboxes_labels'])} instances: a transform "
                             "dropped instances without it")
        return super().transform(results)
