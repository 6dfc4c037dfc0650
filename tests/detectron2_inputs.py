"""Synthetic detectron2 inputs shared by the model tests (Mask R-CNN, Swin, SparseInst)."""

from __future__ import annotations

from detectron2.config import get_cfg
from detectron2.utils.events import EventStorage

from dcl_detectron2 import add_project_config
from dcl_detectron2.synthetic import synthetic_batch

#: Two large ellipses (classes 0 and 1), so every gt RoI has at least K = 32 foreground and
#: 32 background pixels in its 28 x 28 crop.
TWO_ELLIPSES = ((40, 40, 26.0, 30.0, 0), (85, 80, 26.0, 30.0, 1))


def project_cfg(config, *opts):
    """``config`` with every project key, on the CPU, 2 classes, then ``opts`` merged."""
    cfg = add_project_config(get_cfg())
    cfg.merge_from_file(str(config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "2", *opts])
    return cfg


def batch(num_images=2, size=128, seed=0):
    """``num_images`` images of ``size`` x ``size`` with :data:`TWO_ELLIPSES`."""
    return synthetic_batch(num_images, size, ellipses=TWO_ELLIPSES, seed=seed)


def train_step(model, inputs):
    """One forward and backward in training mode; returns (loss dict, the EventStorage)."""
    model.train()
    with EventStorage(0) as storage:
        losses = model(inputs)
        sum(losses.values()).backward()
    return losses, storage
