"""The partially-supervised category split: the 20 PASCAL VOC classes against all others.

Partially-supervised instance segmentation (ContrastMask, Wang et al., CVPR 2022, and the
works it compares with) trains box heads on every class but masks on the *base* classes only,
and scores mask AP on the *novel* ones. On COCO the two sets are the 20 classes PASCAL VOC also
has ("voc") and the other 60 ("nonvoc"); ``voc -> nonvoc`` means masks of the VOC classes are
seen and the non-VOC classes are scored, ``nonvoc -> voc`` the reverse.

The official code (huiserwang/ContrastMask ``ilib/dataset/cocops.py``) lists the VOC set as
mmdet's contiguous COCO labels (0, 1, 2, 3, 4, 5, 6, 8, 14, 15, 16, 17, 18, 19, 39, 56, 57, 58,
60, 62). Here the set is held by class NAME (:data:`VOC_CLASSES`, COCO's spelling, with VOC's
own spelling of six of them as synonyms), so the same rule splits any COCO-format dataset:

- COCO: exactly the official 20 (category ids 1-7, 9, 16-21, 44, 62-64, 67, 72);
- the embedded dataset (``dcl_data.embedded``): voc = person, bottle, chair, dining table,
  sofa, bus, car; nonvoc = truck, the eight ARC2017 items and nucleus. Its val split has
  instances of person, bottle (voc) and nucleus (nonvoc) only, so embedded ``voc -> nonvoc``
  scores nucleus masks learnt without a single nucleus mask, and ``nonvoc -> voc`` scores three
  instances (too few for a useful number: the workflow runs the first direction only).

Names are compared case-insensitively with spaces, ``-`` and ``_`` removed ("diningtable",
"dining table" and "dining_table" are one class).
"""

from __future__ import annotations

import re
from typing import List, Sequence

__all__ = ["SPLITS", "VOC_CLASSES", "is_voc_class", "novel_classes", "novel_flags", "split_classes"]

#: The 20 VOC classes in COCO's names, in COCO's category order.
VOC_CLASSES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "boat",
               "bird", "cat", "dog", "horse", "sheep", "cow", "bottle", "chair", "couch",
               "potted plant", "dining table", "tv")
#: VOC's own names of the classes COCO spells differently.
_VOC_SYNONYMS = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
                 "pottedplant": "potted plant", "diningtable": "dining table",
                 "tvmonitor": "tv"}
#: The names a novel (or base) set may take.
SPLITS = ("voc", "nonvoc")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).lower())


_VOC_KEYS = {_key(n) for n in VOC_CLASSES} | {_key(n) for n in _VOC_SYNONYMS}


def is_voc_class(name: str) -> bool:
    """Whether a class name is one of the 20 VOC classes (COCO or VOC spelling)."""
    return _key(name) in _VOC_KEYS


def split_classes(split: str, classes: Sequence[str]) -> List[str]:
    """The classes of ``classes`` (a dataset's names, in its order) that ``split`` holds.

    Args:
        split: ``"voc"`` or ``"nonvoc"``.
        classes: the dataset's category names.

    Returns:
        The names in ``split``, in the dataset's order (possibly empty).

    Raises:
        ValueError: ``split`` is not one of :data:`SPLITS`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown category split {split!r}: expected one of {list(SPLITS)}")
    want_voc = split == "voc"
    return [c for c in classes if is_voc_class(c) == want_voc]


def novel_classes(novel: str, classes: Sequence[str]) -> List[str]:
    """The novel classes of a dataset for the novel split ``novel``; every other class is base.

    Raises:
        ValueError: unknown split, or a split that leaves the dataset no novel or no base
            class (partial supervision then means nothing); one line naming the split.
    """
    names = split_classes(novel, classes)
    if not names:
        raise ValueError(f"novel split {novel!r}: none of the dataset's {len(classes)} classes "
                         "is in it")
    if len(names) == len(classes):
        raise ValueError(f"novel split {novel!r}: every class of the dataset is novel, none "
                         "is left with masks")
    return names


def novel_flags(novel: str, classes: Sequence[str]) -> List[bool]:
    """``is_novel`` per class index of ``classes`` (label order)."""
    names = set(novel_classes(novel, classes))
    return [c in names for c in classes]

