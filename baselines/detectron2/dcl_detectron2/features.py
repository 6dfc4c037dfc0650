"""Dump mask-head features at foreground and background pixels (paper Figure 4).

The paper's Figure 4 shows a t-SNE of "instance features" of the baseline and of the model
trained with the dense contrastive loss, foreground pixels in red, background in blue. The
feature is the one the loss acts on: the input of the final 1x1 mask predictor, float
``[R, C, 28, 28]`` (``dcl_detectron2.mask_head.mask_features``, for ``ContrastConvUpsampleHead`` and detectron2's
``MaskRCNNConvUpsampleHead`` alike).

So that two models are compared on the same pixels, the RoIs are the GROUND-TRUTH boxes of the
first ``DATASETS.TEST`` split, not each model's detections: the model's FPN features are pooled
at the gt boxes with its own mask pooler and run through its mask head. Each of the S x S
(28 x 28) positions of a RoI is labelled from the gt mask cropped and resized to the box, the
same targets as the mask loss (``gt_masks.crop_and_resize``, see
``dcl_detectron2.mask_head.gt_masks_at``). Per RoI at most ``--pixels-per-roi`` foreground and
as many background positions are drawn without replacement; if more than ``--max-pixels`` are
drawn over the split, a uniform random subset of that size is kept. The draws depend only on
``--seed`` and the ground truth, so dumps of different models hold the same pixels.

Output (``--out FILE.npz``, written atomically), N pixels:

- ``features`` float32 ``[N, C]``: the predictor's input at the pixel (not normalised),
- ``labels`` uint8 ``[N]``: 1 foreground, 0 background,
- ``roi`` int32 ``[N]``: index of the gt RoI in visiting order (images in dataset order,
  instances in annotation order; crowd and empty-box annotations are skipped, as in
  training), unique across the file,
- ``image_id`` int64 ``[N]``: the dataset's image id,
- ``pixel`` int32 ``[N]``: position in the RoI's S x S grid, ``y * S + x``.

The command is ``baselines/detectron2/dump_features.py`` (:func:`main`). Its flags are
``train_net.py``'s (``--config-file``, ``--dataset NAME=JSON:IMAGES``, ``--loss``, trailing
``KEY VALUE`` overrides, ``MODEL.WEIGHTS`` the trained checkpoint), e.g.::

    E=resources/embedded
    python baselines/detectron2/dump_features.py --config-file RUN/config.yaml \\
        --dataset embedded_train=$E/annotations/instances_train.json:$E/train \\
        --dataset embedded_val=$E/annotations/instances_val.json:$E/val \\
        --out RUN/features_val.npz MODEL.WEIGHTS RUN/model_final.pth

detectron2's setup log and the resolved config go to ``OUTPUT_DIR``, by default
``<out folder>/<out stem>_log/``. Bad input exits with status 1 and one ``error: ...`` line.
Uses only APIs that detectron2 v0.5 and v0.6 share (tested on v0.5).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from detectron2.data import DatasetCatalog, DatasetMapper
from detectron2.data import detection_utils
from detectron2.modeling import build_model
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead

from analysis.io import atomic_path

from .engine import add_run_arguments, build_checkpointer, check_not_an_input, setup
from .mask_head import mask_features

__all__ = [
    "FeatureDumpError",
    "PixelSubset",
    "dump_features",
    "main",
    "mask_feature_extractor",
    "roi_features",
    "sample_roi_pixels",
]

DEFAULT_PIXELS_PER_ROI = 32
DEFAULT_MAX_PIXELS = 4000


class FeatureDumpError(ValueError):
    """The model or data cannot give Figure 4 features (message is one line)."""


def mask_feature_extractor(mask_head: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function mapping pooled RoI features to the mask predictor's input.

    Args:
        mask_head: the model's ``roi_heads.mask_head``.

    Returns:
        A function: float ``[R, C_in, P, P]`` (pooler output, P = 14 by default) -> float
        ``[R, C, 2P, 2P]`` (the tensor entering ``predictor``; after deconv and ReLU).

    Raises:
        FeatureDumpError: the head is not a conv-upsample head (``MaskRCNNConvUpsampleHead`` or
            its subclass ``ContrastConvUpsampleHead``), so "the predictor's input" is undefined.
    """
    if isinstance(mask_head, MaskRCNNConvUpsampleHead):  # ContrastConvUpsampleHead too
        return lambda x: mask_features(mask_head, x)
    raise FeatureDumpError(
        f"mask head {type(mask_head).__name__} is not a conv-upsample head "
        "(MaskRCNNConvUpsampleHead or ContrastConvUpsampleHead): its predictor's input is "
        "undefined")


def _check_model(model: nn.Module) -> None:
    for attr in ("preprocess_image", "backbone", "roi_heads"):
        if not hasattr(model, attr):
            raise FeatureDumpError(f"model {type(model).__name__} is not a GeneralizedRCNN "
                                   f"(no {attr}); Figure 4 features need Mask R-CNN")
    heads = model.roi_heads
    if not getattr(heads, "mask_on", False):
        raise FeatureDumpError("the model has no mask branch (MODEL.MASK_ON is False)")
    if getattr(heads, "mask_pooler", None) is None:
        raise FeatureDumpError(f"{type(heads).__name__} has no mask pooler; the mask head "
                               "must take RoI-pooled features")


@torch.no_grad()
def roi_features(model: nn.Module, inputs: dict, extract: Callable[[torch.Tensor], torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-head features and gt labels at the ground-truth boxes of one image.

    Args:
        model: a detectron2 ``GeneralizedRCNN`` with a mask branch, in eval mode.
        inputs: one mapped dataset dict: ``image`` uint8 ``[3, H, W]`` and ``instances`` with
            ``gt_boxes`` (XYXY, pixels of the resized image) and ``gt_masks`` (bit masks or
            polygons).
        extract: from :func:`mask_feature_extractor`.

    Returns:
        ``features`` float32 ``[R, C, S, S]`` on the CPU and ``gt`` bool ``[R, S, S]``: the gt
        mask of each instance cropped and resized to its box at S x S, as the mask loss's
        targets (R = number of gt instances, may be 0).
    """
    heads = model.roi_heads
    boxes = inputs["instances"].gt_boxes
    images = model.preprocess_image([inputs])
    fpn = model.backbone(images.tensor)
    pooled = heads.mask_pooler([fpn[f] for f in heads.mask_in_features], [boxes.to(model.device)])
    features = extract(pooled).float().cpu()
    side = features.shape[-1]
    gt = inputs["instances"].gt_masks.crop_and_resize(boxes.tensor, side).bool().cpu()
    return features, gt


def sample_roi_pixels(gt: torch.Tensor, per_roi: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw up to ``per_roi`` foreground and ``per_roi`` background positions of each RoI.

    Without replacement; a RoI with fewer positions of a class gives all of them. (Not
    ``dcl_core.sample_pixels``, the loss's anchor/positive/negative draws with replacement.)

    Args:
        gt: bool ``[R, S, S]``, the RoIs' cropped gt masks.
        per_roi: positions per class and RoI (>= 1).
        rng: the random generator (advanced; the draw depends only on its state and ``gt``).

    Returns:
        ``roi`` int64 ``[M]`` (index into R), ``pixel`` int64 ``[M]`` (``y * S + x``),
        ``label`` uint8 ``[M]`` (1 foreground, 0 background); per RoI foreground first, each
        class in increasing pixel order.
    """
    if per_roi < 1:
        raise ValueError(f"pixels per RoI must be >= 1, got {per_roi}")
    flat = gt.reshape(gt.shape[0], -1).numpy()
    rois, pixels, labels = [], [], []
    for r, mask in enumerate(flat):
        for label, where in ((1, mask), (0, ~mask)):
            candidates = np.flatnonzero(where)
            if len(candidates) > per_roi:
                candidates = np.sort(rng.choice(candidates, size=per_roi, replace=False))
            rois.append(np.full(len(candidates), r, dtype=np.int64))
            pixels.append(candidates.astype(np.int64))
            labels.append(np.full(len(candidates), label, dtype=np.uint8))
    if not rois:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8))
    return np.concatenate(rois), np.concatenate(pixels), np.concatenate(labels)


class PixelSubset:
    """A uniform random subset of at most ``capacity`` of the pixels offered, in bounded memory.

    Every pixel gets an independent uniform key when offered and the ``capacity`` smallest keys
    are kept (so the subset is uniform over all pixels whatever the order, and memory stays
    ``O(capacity)`` even on a 5,000-image split). :meth:`arrays` returns them in offering order.
    """

    def __init__(self, capacity: int, rng: np.random.Generator):
        if capacity < 1:
            raise ValueError(f"max pixels must be >= 1, got {capacity}")
        self.capacity = capacity
        self.rng = rng
        self.offered = 0
        self._parts: list[dict[str, np.ndarray]] = []
        self._size = 0

    def offer(self, **columns: np.ndarray) -> None:
        """Add pixels: equal-length 1-D or ``[n, ...]`` arrays, one per output key."""
        n = len(next(iter(columns.values())))
        if n == 0:
            return
        part = dict(columns)
        part["_key"] = self.rng.random(n)
        part["_order"] = np.arange(self.offered, self.offered + n, dtype=np.int64)
        self.offered += n
        self._parts.append(part)
        self._size += n
        # Shrink only when well over capacity, so concatenation is amortised.
        if self._size > 2 * self.capacity:
            self._shrink()

    def _merged(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}

    def _shrink(self) -> None:
        merged = self._merged()
        if len(merged["_key"]) > self.capacity:
            keep = np.argpartition(merged["_key"], self.capacity - 1)[: self.capacity]
            merged = {k: v[keep] for k, v in merged.items()}
        self._parts = [merged]
        self._size = len(merged["_key"])

    def arrays(self) -> dict[str, np.ndarray]:
        """The kept pixels, in the order they were offered (empty dict if none)."""
        if not self._parts:
            return {}
        self._shrink()
        merged = self._parts[0]
        order = np.argsort(merged["_order"], kind="stable")
        return {k: v[order] for k, v in merged.items() if not k.startswith("_")}


def _mapped_split(cfg, name: str) -> Iterable[dict]:
    """The split's images with annotations, resized as at test time (no flip, no crop)."""
    # The test-time mapper drops annotations; a mapper in train mode keeps them, and with the
    # test augmentations (resize only) it sees the images exactly as inference does.
    mapper = DatasetMapper(
        is_train=True,
        augmentations=detection_utils.build_augmentation(cfg, is_train=False),
        image_format=cfg.INPUT.FORMAT,
        use_instance_mask=True,
        instance_mask_format=cfg.INPUT.MASK_FORMAT,
    )
    for record in DatasetCatalog.get(name):
        yield mapper(record)


def dump_features(cfg, *, pixels_per_roi: int = DEFAULT_PIXELS_PER_ROI,
                  max_pixels: int = DEFAULT_MAX_PIXELS, seed: int = 0,
                  model: Optional[nn.Module] = None) -> dict[str, np.ndarray]:
    """Sample mask-head features of the first ``DATASETS.TEST`` split at gt RoIs.

    Args:
        cfg: a frozen detectron2 config (:func:`dcl_detectron2.engine.setup`); ``MODEL.WEIGHTS`` is loaded
            unless ``model`` is given.
        pixels_per_roi: at most this many foreground and as many background pixels per RoI.
        max_pixels: at most this many pixels in all (uniform random subset).
        seed: seeds the pixel draws (the same seed and model give the same file).
        model: an already built and loaded model (for tests); put in eval mode here.

    Returns:
        The arrays written to the ``.npz`` (see the module docstring).

    Raises:
        FeatureDumpError: no ``DATASETS.TEST``, a model without a conv-upsample mask head, or
            no pixel sampled (no annotated image).
    """
    if not cfg.DATASETS.TEST:
        raise FeatureDumpError("no DATASETS.TEST: the val split to dump features of")
    if pixels_per_roi < 1 or max_pixels < 1:
        raise FeatureDumpError(
            f"--pixels-per-roi and --max-pixels must be >= 1, got {pixels_per_roi}, {max_pixels}")
    if model is None:
        model = build_model(cfg)
        # Refuses weights that would run code, and weights that do not fit (strict loading).
        build_checkpointer(model, cfg).load(cfg.MODEL.WEIGHTS)
    _check_model(model)
    extract = mask_feature_extractor(model.roi_heads.mask_head)
    model.eval()
    rng = np.random.default_rng(seed)
    subset = PixelSubset(max_pixels, rng)
    num_rois = 0
    for inputs in _mapped_split(cfg, cfg.DATASETS.TEST[0]):
        if len(inputs["instances"]) == 0:
            continue
        features, gt = roi_features(model, inputs, extract)
        roi, pixel, label = sample_roi_pixels(gt, pixels_per_roi, rng)
        flat = features.flatten(2).numpy()  # [R, C, S*S]
        subset.offer(features=flat[roi, :, pixel].astype(np.float32),
                     labels=label,
                     roi=(roi + num_rois).astype(np.int32),
                     image_id=np.full(len(roi), int(inputs["image_id"]), dtype=np.int64),
                     pixel=pixel.astype(np.int32))
        num_rois += len(gt)
    out = subset.arrays()
    if not out:
        raise FeatureDumpError(
            f"no pixel sampled: {cfg.DATASETS.TEST[0]} has no non-crowd annotated instance")
    return out


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (``.npz``, uncompressed) atomically."""
    with atomic_path(path) as tmp:
        # np.savez appends ".npz" to a name without it; the temp name keeps the suffix.
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Mask-head features at fg/bg pixels of gt RoIs (paper Figure 4)")
    parser.add_argument("--config-file", required=True, metavar="FILE", help="detectron2 config")
    add_run_arguments(parser, seed=False)
    parser.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
    parser.add_argument("--pixels-per-roi", type=int, default=DEFAULT_PIXELS_PER_ROI,
                        help="fg and bg pixels per RoI, each (default: %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="pixels in all (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="pixel sampling seed (default: 0)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="KEY VALUE config overrides, e.g. MODEL.WEIGHTS model_final.pth")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, np.ndarray]:
    """Run the command; returns the written arrays. Exits with one ``error:`` line on bad input."""
    args = parse_args(argv)
    out = Path(args.out)
    # default_setup writes its log and config.yaml to OUTPUT_DIR; keep them beside the dump
    # (a later OUTPUT_DIR among the user's overrides wins).
    args.opts = ["OUTPUT_DIR", str(out.parent / f"{out.stem}_log"), *args.opts]
    args.eval_only = True  # default_setup: no cudnn benchmark for a one-pass job
    cfg = setup(args)
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise SystemExit("error: MODEL.WEIGHTS is empty: give the trained model's checkpoint")
    if "://" not in weights and not Path(weights).is_file():
        raise SystemExit(f"error: MODEL.WEIGHTS {weights}: no such file")
    check_not_an_input(out, args, cfg, "--out")
    try:
        arrays = dump_features(cfg, pixels_per_roi=args.pixels_per_roi,
                               max_pixels=args.max_pixels, seed=args.seed)
    except (FeatureDumpError, pickle.UnpicklingError) as e:
        raise SystemExit(f"error: {e}") from None
    write_npz(out, arrays)
    n_fg = int(arrays["labels"].sum())
    print(f"wrote {out}: {len(arrays['labels'])} pixels ({n_fg} fg, "
          f"{len(arrays['labels']) - n_fg} bg) of {len(np.unique(arrays['roi']))} RoIs in "
          f"{len(np.unique(arrays['image_id']))} images, {arrays['features'].shape[1]} channels")
    return arrays
